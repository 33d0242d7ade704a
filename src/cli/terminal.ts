import type { MarkedExtension } from 'marked';
import type { Progress, ProgressSink, Reply } from '../core/index.js';
import { printable } from './text.js';

/** Where the CLI writes: stdout carries the answer only, stderr everything else (progress, saved files, errors). */
export interface Terminal {
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}

/** A terminal a person watches (not a file, a pipe, CI's log or a dumb terminal). */
export function interactive(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && process.env.TERM !== 'dumb' && !('CI' in process.env);
}

/** A reply that is no answer: an error, or a refusal (not allowed, over a budget). It goes to stderr. */
export const failed = (reply: Reply): boolean => reply.kind === 'error' || reply.kind === 'refused';

/** Markdown to terminal text. */
export type Render = (markdown: string) => string;

/**
 * marked with marked-terminal: headings, emphasis, lists, tables and code blocks drawn for a terminal as
 * wide as stdout; undefined when stdout is not a terminal (markdown is then printed as it is). Loaded only
 * for a terminal (it brings a syntax highlighter).
 */
export async function markdownRenderer(out: NodeJS.WriteStream): Promise<Render | undefined> {
  if (!interactive(out)) return undefined;
  const [{ Marked }, { markedTerminal }] = await Promise.all([import('marked'), import('marked-terminal')]);
  // marked-terminal renders a tight list item's text as it is, `**` and all, with marked 13 and later
  // (mikaelbr/marked-terminal#304): such text is rendered inline here; any other text falls through to it.
  const listItemText: MarkedExtension = { renderer: { text: function (token) { return 'tokens' in token && token.tokens ? this.parser.parseInline(token.tokens) : false; } } };
  // Line breaks are kept, as in Slack and Teams, where a model's answers are meant to be read.
  const marked = new Marked({ breaks: true }, markedTerminal({ width: Math.min(out.columns || 80, 100), reflowText: true, tab: 2 }), listItemText);
  return (markdown) => `${(marked.parse(markdown, { async: false }) as string).replace(/\s+$/, '')}\n`;
}

function elapsed(since: number): string {
  const s = Math.floor((Date.now() - since) / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

/** Progress on stderr: a spinner with the status and the time so far on a terminal, a plain line per status otherwise. */
async function statusLine(err: NodeJS.WriteStream): Promise<{ show(status: string): void; stop(): void }> {
  if (!interactive(err)) {
    let last = '';
    return {
      show(status) {
        if (status === last) return;
        last = status;
        err.write(`… ${status}\n`);
      },
      stop() {},
    };
  }
  const { default: yoctoSpinner } = await import('yocto-spinner');
  const spinner = yoctoSpinner({ stream: err });
  const started = Date.now();
  let status = '';
  const draw = () => (spinner.text = `${status} ${elapsed(started)}`);
  const ticker = setInterval(draw, 1000);
  ticker.unref();
  return {
    show(next) {
      status = next;
      draw();
      spinner.start();
    },
    stop() {
      clearInterval(ticker);
      spinner.stop();
    },
  };
}

/** How far `text` can be rendered now: up to its last blank line outside a code fence (a finished block). */
function finishedBlocks(text: string): number {
  let end = 0;
  let fenced = false;
  let at = 0;
  for (const line of text.split('\n').slice(0, -1)) {
    at += line.length + 1;
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    else if (!fenced && line.trim() === '') end = at;
  }
  return end;
}

/** The engine cleans its final text (blank lines collapsed, trimmed); the streamed text is compared the same way. */
const normalise = (text: string) => text.replace(/\n{3,}/g, '\n\n').trim();

export interface AnswerView {
  /** The presenter's progress sink: statuses and the answer text as it is written. */
  progress: ProgressSink;
  /** Prints what is left of the reply (all of it, when nothing was streamed) and its notices; an error on stderr. */
  finish(reply: Reply): void;
  /** Stops the spinner. */
  stop(): void;
}

export interface AnswerViewOptions {
  /** Stream the text on stdout as it is written (off for --json). */
  stream: boolean;
  render: Render | undefined;
  /** The reply's text as the CLI shows it (its own wording of `help`, a hint after an error). */
  wording?: (reply: Reply) => string;
}

/**
 * One answer in the terminal. On a terminal, the text streams block by block (a paragraph, a list, a table,
 * a code block once it is complete), rendered; when stdout is a file or a pipe, the final text is printed
 * once, as markdown, so `crunch ask … > answer.md` holds exactly the answer. Everything printed has had its
 * control characters removed.
 */
export async function answerView(term: Terminal, options: AnswerViewOptions): Promise<AnswerView> {
  const status = await statusLine(term.err);
  const render = options.render;
  let streamed = '';
  let shown = 0;

  const progress = (p: Progress) => {
    if (p.type === 'status') return status.show(printable(p.text).trim() || 'working…');
    if (!options.stream || render === undefined) return;
    streamed += p.delta;
    const end = finishedBlocks(streamed);
    if (end <= shown) return;
    const block = normalise(streamed.slice(shown, end));
    shown = end;
    if (block !== '') term.out.write(`${render(printable(block))}\n`);
  };

  return {
    progress,
    stop: () => status.stop(),
    finish(reply) {
      status.stop();
      const text = options.wording?.(reply) ?? reply.text;
      if (failed(reply)) {
        // Never on stdout: `crunch ask … > answer.md` must not capture an error as the answer.
        term.err.write(`${printable(text)}\n`);
        for (const notice of reply.notices) term.err.write(`⚠ ${printable(notice)}\n`);
        return;
      }
      if (render === undefined) {
        term.out.write(`${printable(text)}\n`);
        for (const notice of reply.notices) term.out.write(`\n⚠ ${printable(notice)}\n`);
        return;
      }
      const before = normalise(streamed.slice(0, shown));
      let rest = text.slice(before.length);
      if (before !== '' && !text.startsWith(before)) {
        // The text changed after part of it was shown (the engine ran the question again): all of it, once more.
        term.out.write('\n— the full answer —\n\n');
        rest = text;
      }
      if (normalise(rest) !== '') term.out.write(render(printable(normalise(rest))));
      for (const notice of reply.notices) term.out.write(`\n${render(`⚠ ${printable(notice)}`)}`);
    },
  };
}
