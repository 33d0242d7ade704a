/**
 * The parts of an answer every engine shapes alike: file names to MIME types and titles, the cap on
 * outputs per answer, and the cleaning of the model's text (links to sandbox files are attached instead).
 */

/** At most this many charts and files are posted per answer: cited ones first, then the rest the code wrote. */
export const MAX_OUTPUT_FILES = 10;

/** A file the code made that is over the size limit: it is named, not posted. */
export function tooLargeNotice(name: string): string {
  return `**${name}** was created but is too large to attach here.`;
}

/** The files left out past MAX_OUTPUT_FILES, named (the first ten) so the user can ask for them. */
export function moreFilesNotice(names: string[]): string {
  const shown = names.slice(0, 10).join(', ') + (names.length > 10 ? ', …' : '');
  return `The code also created ${names.length} more file${names.length === 1 ? '' : 's'} (${shown}); ask for the ones you want, or for a zip of them.`;
}

/** PNG charts first (they are shown as pictures), then the other files, each in their order. */
export function pngFirst<T extends { mimeType: string }>(outputs: T[]): T[] {
  return [...outputs.filter((o) => o.mimeType === 'image/png'), ...outputs.filter((o) => o.mimeType !== 'image/png')];
}

const MIME_BY_EXT: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  csv: 'text/csv',
  txt: 'text/plain',
  json: 'application/json',
  md: 'text/markdown',
  html: 'text/html',
  pdf: 'application/pdf',
  zip: 'application/zip',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  py: 'text/x-python',
};

export function mimeFor(name: string): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  return MIME_BY_EXT[ext] ?? 'application/octet-stream';
}

/** "revenue_by_month.png" → "Revenue by month" */
export function titleFor(name: string): string {
  const base = name.replace(/^.*\//, '').replace(/\.[^.]+$/, '');
  // Images the code only displayed are named after their container file id (cfile_…).
  if (base === '' || /^cfile_[0-9a-f]+$/i.test(base)) return 'Chart';
  const words = base.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Sandbox links the model writes for its files (they are attached instead): images dropped, others → the name. */
function replaceSandboxLinks(text: string): string {
  return text.replace(/!\[[^\]]*\]\(sandbox:[^)]*\)\n?/g, '').replace(/\[([^\]]+)\]\(sandbox:[^)]*\)/g, '**$1**');
}

export function cleanText(text: string): string {
  return replaceSandboxLinks(text)
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** An unfinished markdown link held back while streaming is released after this many characters. */
const MAX_HELD_CHARS = 400;

/**
 * The same cleaning for streamed text: deltas may end inside a link, so text from an unfinished `[` on is
 * held back until the link is complete (or clearly is not one), then passed on with sandbox links replaced.
 */
export class StreamedTextCleaner {
  private held = '';

  push(delta: string): string {
    const text = this.held + delta;
    const cut = unfinishedLinkStart(text);
    this.held = text.slice(cut);
    return replaceSandboxLinks(text.slice(0, cut));
  }

  /** What is still held at the end of the stream. */
  flush(): string {
    const rest = replaceSandboxLinks(this.held);
    this.held = '';
    return rest;
  }
}

/** Where an unfinished `[text](target)` (or `![…](…)`) starts at the end of `text`; `text.length` if none. */
function unfinishedLinkStart(text: string): number {
  // A trailing "!" may start an image.
  const end = text.endsWith('!') ? text.length - 1 : text.length;
  const open = text.lastIndexOf('[');
  if (open < 0 || text.length - open > MAX_HELD_CHARS) return end;
  const tail = text.slice(open);
  const image = open > 0 && text[open - 1] === '!';
  const mayStillBeLink = /^\[[^\]\n]*$/.test(tail) || /^\[[^\]\n]*\]$/.test(tail) || /^\[[^\]\n]*\]\([^)\s]*$/.test(tail);
  // A finished sandbox image at the very end waits for the next character: its line break goes with it.
  const imageAtEnd = image && /^\[[^\]\n]*\]\(sandbox:[^)]*\)$/.test(tail);
  if (!mayStillBeLink && !imageAtEnd) return end;
  return image ? open - 1 : open;
}
