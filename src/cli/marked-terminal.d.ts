// marked-terminal ships no types (and @types/marked-terminal pins an old marked): the one function used here.
declare module 'marked-terminal' {
  import type { MarkedExtension } from 'marked';

  /** marked's extension rendering markdown for a terminal; see the package's README for the options. */
  export function markedTerminal(options?: { width?: number; reflowText?: boolean; tab?: number }, highlightOptions?: Record<string, unknown>): MarkedExtension;
}
