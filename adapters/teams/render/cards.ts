import type { Activity } from 'botbuilder';
import type { CodeCell, Reply, ReplyOutput } from '../../../src/core/index.js';
import { markdownBlocks, noticesMarkdown, splitMarkdown, stripSandboxLinks, toTeamsMarkdown, type MarkdownTable } from '../markdown.js';
import { card, cardActivity, ENVELOPE_BYTES, type OutboundMessage, type OutboundPart, type PlannedPart, type RenderOptions, sizeOf, textActivity } from './activity.js';
import { charts, fileLinks } from './outputs.js';

/**
 * Reply → the Teams messages that carry it: one message per answer. Teams shows the text and the attachments
 * of one activity as separate messages (measured in the Agents Playground: two bubbles, and the POST answers
 * 202 without an id, as BotFramework-Services#98 reports for Teams), so an answer with charts, file links,
 * tables or code is one Adaptive Card holding all of it: its text as TextBlocks and Tables, the charts as
 * Images, the file links, and "Show the code" as an Action.ShowCard. An answer with none of these is one
 * markdown text message. What cannot be in that message follows it: the file consent cards of a personal chat
 * (a card type of its own), and for a text too long for one message, its further parts and then one card with
 * the charts, links and code.
 *
 * Size: Teams refuses bot messages over its limit with 413 MessageSizeTooBig. Microsoft's page has said
 * 40 KB (UTF-16, base64 images excluded) and later "100 KB, keep it within 80 KB"; Crunch keeps every
 * activity's JSON under `maxMessageBytes` (40 KiB by default, far below the connector's 256 KiB request cap)
 * counting base64 too, so an inline chart never depends on which rule applies. The card is built to fit:
 * charts inline with the code in full or trimmed, else the charts by signed URL and the code trimmed further.
 */

/** The text of the answer as Teams markdown pieces: notices first, then the answer, split to fit. */
export function answerTextPieces(reply: Reply, maxMessageBytes: number): string[] {
  const parts: string[] = [];
  if (reply.notices.length > 0) parts.push(noticesMarkdown(reply.notices));
  const body = toTeamsMarkdown(reply.text).trim();
  if (body !== '') parts.push(reply.kind === 'error' ? `⚠️ ${body}` : body);
  if (parts.length === 0) parts.push(reply.images.length + reply.files.length + reply.code.length > 0 ? 'Here are the results.' : NOTHING_TO_SHOW);
  // Teams counts UTF-16: two bytes per character.
  return splitMarkdown(parts.join('\n\n'), Math.floor((maxMessageBytes - ENVELOPE_BYTES) / 2));
}

const NOTHING_TO_SHOW = 'I have no answer to show for this one. Try asking it another way.';

/** The reply as the messages that carry it, and its text (first part) for a streamed message to end with. */
export interface ReplyPlan {
  /** In order; the first (`answer`) is the answer's one message. */
  parts: PlannedPart[];
  /** The first text piece, as markdown: what a streamed answer ends with before it becomes the answer's card. */
  text: string;
  /** The answer's message is `text` itself (no card): a stream that ends with it needs no edit. */
  answerIsText: boolean;
}

/** A chart by URL, a file link line, in bytes of card JSON: what the text must leave room for. */
const RESERVE_PER_OUTPUT = 512;
/** The code's card is trimmed, halving, down to this many characters per cell at the least. */
const MIN_CODE_CHARS = 200;
/** With charts inline, the code is trimmed no further than this: past it, the charts go by URL instead. */
const INLINE_CODE_CHARS = [20_000, 10_000, 5_000];

/**
 * The reply as the messages that carry it, in order: the answer (text, or one card with its text, charts, file
 * links and code), then the file consent cards (personal chat), and last a line for any file that could not
 * be offered. A text too long for one message goes as text parts, followed by one card of its charts, links and
 * code. Charts and files are read only when the part that shows them is rendered.
 */
export function planReply(reply: Reply, options: RenderOptions): ReplyPlan {
  const pieces = answerTextPieces(reply, options.maxMessageBytes);
  const parts: PlannedPart[] = [];
  const now = (id: string, part: OutboundPart, activity: Partial<Activity>): PlannedPart => ({ id, part, render: async () => ({ part, activity }) });
  const linked = options.offer === undefined ? reply.files : [];
  const blocks = markdownBlocks(stripSandboxLinks(reply.text));
  const withOutputs = reply.images.length > 0 || linked.length > 0 || reply.code.length > 0;
  const text = textElements(reply, blocks);
  const reserve = (reply.images.length + linked.length) * RESERVE_PER_OUTPUT + (reply.code.length > 0 ? sizeOf(codeAction(reply.code, MIN_CODE_CHARS)) : 0);
  const cardHoldsText = sizeOf(cardActivity(card(text), firstLine(reply.text))) + ENVELOPE_BYTES + reserve <= options.maxMessageBytes;
  // A receipt (CRUNCH_SHOW_COST) is the card's footer, so an answer that has one is a card.
  const asCard = (withOutputs || blocks.some((b) => b.type === 'table') || reply.receipt !== undefined) && reply.kind !== 'error' && cardHoldsText;
  if (asCard) {
    parts.push({ id: 'answer', part: 'answer', render: () => answerCard('answer', reply, text, linked, options) });
  } else {
    const last = pieces.length - 1;
    // Too long for a card and nothing else to show: the receipt ends the last text part, in small print's place.
    if (reply.receipt !== undefined && !withOutputs) pieces[last] = `${pieces[last]}\n\n_${reply.receipt}_`;
    for (const [i, piece] of pieces.entries()) parts.push(now(i === 0 ? 'answer' : `text:${i}`, i === 0 ? 'answer' : 'text', textActivity(piece)));
    if (withOutputs) parts.push({ id: 'extras', part: 'extras', render: () => answerCard('extras', reply, [], linked, options) });
  }
  const unattached: string[] = [];
  if (options.offer !== undefined) {
    const offer = options.offer;
    for (const [i, file] of reply.files.entries()) {
      parts.push({
        id: `file:${i}`,
        part: 'files',
        render: () => offer(file).catch((err: unknown) => void unattached.push((err as { userMessage?: string }).userMessage ?? `**${file.name}** could not be attached.`)),
      });
    }
  }
  parts.push({ id: 'notices', part: 'notices', render: async () => (unattached.length > 0 ? { part: 'notices', activity: textActivity(noticesMarkdown(unattached)) } : undefined) });
  return { parts, text: pieces[0]!, answerIsText: !asCard };
}

/** Every part of the plan, rendered (tests, and where nothing is skipped). */
export async function renderReply(reply: Reply, options: RenderOptions): Promise<OutboundMessage[]> {
  const out: OutboundMessage[] = [];
  for (const planned of planReply(reply, options).parts) {
    const message = await planned.render();
    if (message !== undefined) out.push(message);
  }
  return out;
}

/** The answer's notices and text as card elements: warnings, then prose (headings bold, code as CodeBlock) and Tables. */
function textElements(reply: Reply, blocks: ReturnType<typeof markdownBlocks>): unknown[] {
  const body: unknown[] = reply.notices.map((n) => warning(n));
  for (const block of blocks) body.push(...(block.type === 'table' ? [tableElement(block.table)] : proseElements(block.text)));
  return body;
}

/** The card's small print: the receipt, below a separator. */
const footer = (text: string) => ({ type: 'TextBlock', text, wrap: true, size: 'Small', isSubtle: true, separator: true, spacing: 'Medium' });

const warning = (text: string) => ({ type: 'TextBlock', text: `⚠️ ${text}`, wrap: true, color: 'Warning', isSubtle: true });

/**
 * One card with `text` (the answer's elements; none for the `extras` after a long text), the charts, the file
 * links and "Show the code", built to fit the budget: charts inline with the code in full or trimmed a little,
 * else every chart by signed URL with the code trimmed as far as needed. With charts inline, the by-URL card
 * is its fallback, for when Teams refuses the larger one.
 */
async function answerCard(part: 'answer' | 'extras', reply: Reply, text: unknown[], linked: ReplyOutput[], options: RenderOptions): Promise<OutboundMessage> {
  const unattached: string[] = [];
  const images = charts(reply.images, options, unattached);
  const links = linked.length > 0 ? await fileLinks(linked, options, unattached) : undefined;
  const summary = part === 'answer' ? firstLine(reply.text) : 'Charts, files and code of the answer';
  const build = async (inline: boolean, codeChars: number) => {
    const shown = await images.elements(inline);
    const body = [...text, ...shown.elements];
    if (links !== undefined) body.push({ type: 'TextBlock', text: links, wrap: true });
    body.push(...unattached.map((n) => warning(n)));
    if (body.length === 0) body.push({ type: 'TextBlock', text: 'Here are the results.', wrap: true });
    if (reply.receipt !== undefined) body.push(footer(reply.receipt));
    const activity = cardActivity(card(body, reply.code.length > 0 ? { actions: [codeAction(reply.code, codeChars)] } : {}), summary);
    return { activity, inlined: shown.inlined };
  };
  const fits = (activity: Partial<Activity>) => sizeOf(activity) + ENVELOPE_BYTES <= options.maxMessageBytes;
  const byUrl = async () => {
    let chars = INLINE_CODE_CHARS[0]!;
    let { activity } = await build(false, chars);
    while (!fits(activity) && chars > MIN_CODE_CHARS) {
      chars = Math.max(MIN_CODE_CHARS, Math.floor(chars / 2));
      ({ activity } = await build(false, chars));
    }
    return activity;
  };
  if (reply.images.length > 0) {
    for (const chars of INLINE_CODE_CHARS) {
      const { activity, inlined } = await build(true, chars);
      if (fits(activity)) return { part, activity, ...(inlined ? { fallback: byUrl } : {}) };
    }
  }
  return { part, activity: await byUrl() };
}

function firstLine(markdown: string): string {
  const line = markdown.split('\n').find((l) => l.trim() !== '' && !l.includes('|')) ?? 'Crunch answered';
  return line.replace(/[#*_`>]/g, '').trim().slice(0, 120);
}

/** Markdown prose as card elements: headings bold, fenced code as CodeBlock, the rest as markdown TextBlocks. */
export function proseElements(markdown: string): unknown[] {
  const elements: unknown[] = [];
  const lines = markdown.split('\n');
  let paragraph: string[] = [];
  const flush = () => {
    const text = paragraph.join('\n').trim();
    if (text !== '') elements.push({ type: 'TextBlock', text, wrap: true });
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const fence = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (heading) {
      flush();
      elements.push({ type: 'TextBlock', text: heading[2], weight: 'Bolder', size: heading[1]!.length <= 2 ? 'Medium' : 'Default', wrap: true });
    } else if (fence) {
      flush();
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i]!.trim().startsWith(fence[1]!.slice(0, 3)); i++) code.push(lines[i]!);
      elements.push(codeBlock(code.join('\n'), fence[2] || 'PlainText'));
    } else if (line.trim() === '') {
      flush();
    } else {
      paragraph.push(line);
    }
  }
  flush();
  return elements;
}

function tableElement(table: MarkdownTable): unknown {
  const columns = Math.max(table.header.length, ...table.rows.map((r) => r.length));
  const row = (cells: string[], header: boolean) => ({
    type: 'TableRow',
    cells: Array.from({ length: columns }, (_, c) => ({
      type: 'TableCell',
      items: [{ type: 'TextBlock', text: cells[c] ?? '', wrap: true, ...(header ? { weight: 'Bolder' } : {}) }],
    })),
  });
  return {
    type: 'Table',
    gridStyle: 'accent',
    firstRowAsHeaders: true,
    columns: Array.from({ length: columns }, () => ({ width: 1 })),
    rows: [row(table.header, true), ...table.rows.map((r) => row(r, false))],
  };
}

/** Teams' CodeBlock element, falling back to monospace lines (`monospaceLines`) where it is not supported. */
function codeBlock(code: string, language: string, maxFallbackLines = MAX_FALLBACK_LINES): unknown {
  return {
    type: 'CodeBlock',
    codeSnippet: code,
    language: language.toLowerCase() === 'python' || language === 'py' ? 'Python' : language,
    fallback: monospaceLines(code, { maxLines: maxFallbackLines }),
  };
}

/** Lines of code shown by the CodeBlock fallback, beyond which a note says how many more there are. */
const MAX_FALLBACK_LINES = 120;
const NBSP = '\u00a0';

/**
 * Preformatted text for Adaptive Card clients: a TextBlock joins single newlines into one line (markdown
 * soft breaks), collapses runs of spaces (Python indentation, column-aligned output) and reads `**kwargs`
 * or `__init__` as markdown. So: one RichTextBlock per line, spacing None, holding a monospace TextRun
 * (TextRuns are never markdown), with leading spaces and runs of spaces as no-break spaces (one ordinary
 * space left at the end of each run, so long lines can still wrap). Empty lines keep their height.
 */
export function monospaceLines(text: string, options: { maxLines: number; size?: 'Small' | 'Default' }): Record<string, unknown> {
  const all = text.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n');
  const shown = all.length > options.maxLines ? all.slice(0, options.maxLines) : all;
  const lines = shown.map(preserveSpaces);
  if (shown.length < all.length) {
    const rest = all.length - shown.length;
    lines.push(`… (${rest} more line${rest === 1 ? '' : 's'} not shown)`);
  }
  const run = (line: string) => ({ type: 'TextRun', text: line, fontType: 'Monospace', ...(options.size !== undefined ? { size: options.size } : {}) });
  return { type: 'Container', items: lines.map((line) => ({ type: 'RichTextBlock', spacing: 'None', inlines: [run(line)] })) };
}

function preserveSpaces(line: string): string {
  const expanded = line.replace(/\t/g, '    ').replace(/\s+$/, '');
  if (expanded === '') return NBSP;
  return expanded
    .replace(/^ +/, (lead) => NBSP.repeat(lead.length))
    .replace(/ {2,}/g, (run) => `${NBSP.repeat(run.length - 1)} `);
}

/** "Show the code": an Action.ShowCard revealing the code cells that ran (and what they printed), each trimmed to `limit` characters. */
export function codeAction(cells: CodeCell[], limit: number): Record<string, unknown> {
  const body: unknown[] = [];
  cells.forEach((cell, i) => {
    if (cells.length > 1) body.push({ type: 'TextBlock', text: `Step ${i + 1}`, weight: 'Bolder', spacing: 'Medium' });
    // The fallback lines shrink with the budget too: each line costs about 100 bytes of card JSON.
    const maxLines = Math.max(10, Math.min(MAX_FALLBACK_LINES, Math.floor(limit / 100)));
    body.push(codeBlock(trim(cell.code, limit), 'Python', maxLines));
    if (cell.output !== undefined && cell.output.trim() !== '') {
      body.push({ type: 'TextBlock', text: 'Output', isSubtle: true, size: 'Small' });
      body.push({ ...monospaceLines(trim(cell.output, Math.min(limit, 2000)), { maxLines: Math.min(maxLines, 60), size: 'Small' }), spacing: 'Small' });
    }
  });
  return { type: 'Action.ShowCard', title: 'Show the code', card: card(body) };
}

function trim(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const rest = text.slice(limit).split('\n').length;
  return `${text.slice(0, limit)}\n… (${rest} more line${rest === 1 ? '' : 's'} not shown)`;
}
