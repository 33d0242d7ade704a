import type { Activity } from 'botbuilder';
import { type CodeCell, readOutput, type Reply, type ReplyOutput } from '../../../src/core/index.js';
import { markdownBlocks, noticesMarkdown, splitMarkdown, stripSandboxLinks, toTeamsMarkdown, type MarkdownTable } from '../markdown.js';
import { ADAPTIVE_CARD } from '../types.js';

/**
 * Reply → the Teams activities that carry it, each under the message size budget. Teams shows text and
 * attachments of one activity as separate messages anyway, so every part is its own activity, sent in
 * order: answer (text, or a card when it has tables), one card per chart, the downloads (signed links, or
 * one file consent card per file in personal chat), "show the code".
 *
 * Size: Teams refuses bot messages over its limit with 413 MessageSizeTooBig. Microsoft's page has said
 * 40 KB (UTF-16, base64 images excluded) and later "100 KB, keep it within 80 KB"; Crunch keeps every
 * activity's JSON under `maxMessageBytes` (40 KiB by default) counting base64 too, so an inline chart never
 * depends on which rule applies. A chart that does not fit is served from the bot's signed URL instead.
 */

export type OutboundPart = 'text' | 'image' | 'files' | 'code';

/** An output read into memory: inline charts are base64 in the card, and hosted files are kept whole. */
export interface LoadedOutput {
  name: string;
  title: string;
  mimeType: string;
  data: Buffer;
}

/** A reply whose outputs have been read (those that could not be read are named in its notices). */
export interface LoadedReply extends Omit<Reply, 'images' | 'files'> {
  images: LoadedOutput[];
  files: LoadedOutput[];
}

/** Reads every output of `reply`; one that fails becomes a notice, and the rest still go out. */
export async function loadReply(reply: Reply, limitBytes: number): Promise<LoadedReply> {
  const notices = [...reply.notices];
  const load = async (outputs: ReplyOutput[]) => {
    const loaded: LoadedOutput[] = [];
    for (const output of outputs) {
      try {
        loaded.push({ name: output.name, title: output.title, mimeType: output.mimeType, data: await readOutput(output, limitBytes) });
      } catch (err) {
        notices.push((err as { userMessage?: string }).userMessage ?? `**${output.name}** could not be attached.`);
      }
    }
    return loaded;
  };
  const images = await load(reply.images);
  const files = await load(reply.files);
  return { ...reply, images, files, notices };
}

export interface OutboundMessage {
  part: OutboundPart;
  activity: Partial<Activity>;
  /** A smaller alternative when Teams still refuses this one (a chart by URL instead of inline). */
  fallback?: () => Promise<Partial<Activity>>;
  /** Told the new activity's id once Teams took it (a file consent card keeps it, to update the card). */
  sent?: (activityId: string | undefined) => Promise<void>;
}

export interface RenderOptions {
  maxMessageBytes: number;
  /** Stores a file behind a signed link and returns its URL. */
  host(file: { name: string; mimeType: string; data: Buffer }): Promise<string>;
  /** Render the answer as markdown text even when it has tables (a streamed answer ends in text). */
  textOnly?: boolean;
  /** One message per file (a file consent card in personal chat) instead of one message of links. */
  offer?(file: LoadedOutput): Promise<OutboundMessage>;
}

const CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';
/** Envelope (ids, conversation, recipient…) the SDK adds to each activity, kept out of the budget. */
const ENVELOPE_BYTES = 2048;

export const sizeOf = (activity: Partial<Activity>): number => Buffer.byteLength(JSON.stringify(activity), 'utf8');

function card(body: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'AdaptiveCard', $schema: CARD_SCHEMA, version: '1.5', body, msteams: { width: 'Full' }, ...extra };
}

export function cardActivity(content: Record<string, unknown>, summary: string): Partial<Activity> {
  return { type: 'message', summary, attachments: [{ contentType: ADAPTIVE_CARD, content }] };
}

export function textActivity(markdown: string): Partial<Activity> {
  return { type: 'message', text: markdown, textFormat: 'markdown' };
}

/** The text of the answer as Teams markdown pieces: notices first, then the answer, split to fit. */
export function answerTextPieces(reply: LoadedReply, maxMessageBytes: number): string[] {
  const parts: string[] = [];
  if (reply.notices.length > 0) parts.push(noticesMarkdown(reply.notices));
  const body = toTeamsMarkdown(reply.text).trim();
  if (body !== '') parts.push(reply.kind === 'error' ? `⚠️ ${body}` : body);
  if (parts.length === 0) parts.push(reply.images.length + reply.files.length > 0 ? 'Here are the results.' : 'Done.');
  // Teams counts UTF-16: two bytes per character.
  return splitMarkdown(parts.join('\n\n'), Math.floor((maxMessageBytes - ENVELOPE_BYTES) / 2));
}

export async function renderReply(reply: LoadedReply, options: RenderOptions): Promise<OutboundMessage[]> {
  const out: OutboundMessage[] = [];
  const tableCard = options.textOnly ? undefined : answerCard(reply, options.maxMessageBytes);
  if (tableCard !== undefined) out.push({ part: 'text', activity: tableCard });
  else for (const piece of answerTextPieces(reply, options.maxMessageBytes)) out.push({ part: 'text', activity: textActivity(piece) });
  for (const image of reply.images) out.push(await imageMessage(image, options));
  if (options.offer !== undefined) for (const file of reply.files) out.push(await options.offer(file));
  else if (reply.files.length > 0) out.push(await filesMessage(reply.files, options));
  if (reply.code.length > 0) out.push({ part: 'code', activity: codeActivity(reply.code, options.maxMessageBytes) });
  return out;
}

/** When the answer has tables: one Adaptive Card with TextBlocks and Tables, if it fits; else undefined. */
function answerCard(reply: LoadedReply, maxMessageBytes: number): Partial<Activity> | undefined {
  const blocks = markdownBlocks(stripSandboxLinks(reply.text));
  if (!blocks.some((b) => b.type === 'table')) return undefined;
  const body: unknown[] = reply.notices.map((n) => ({ type: 'TextBlock', text: `⚠️ ${n}`, wrap: true, color: 'Warning', isSubtle: true }));
  for (const block of blocks) body.push(...(block.type === 'table' ? [tableElement(block.table)] : proseElements(block.text)));
  const activity = cardActivity(card(body), firstLine(reply.text));
  return sizeOf(activity) + ENVELOPE_BYTES <= maxMessageBytes ? activity : undefined;
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

function imageCard(image: LoadedOutput, url: string): Partial<Activity> {
  const body = [
    { type: 'TextBlock', text: image.title, weight: 'Bolder', wrap: true },
    { type: 'Image', url, altText: image.title, msTeams: { allowExpand: true } },
  ];
  return cardActivity(card(body), `Chart: ${image.title}`);
}

async function imageMessage(image: LoadedOutput, options: RenderOptions): Promise<OutboundMessage> {
  const byUrl = async () => imageCard(image, await options.host({ name: image.name, mimeType: 'image/png', data: image.data }));
  const inline = imageCard(image, `data:image/png;base64,${image.data.toString('base64')}`);
  if (sizeOf(inline) + ENVELOPE_BYTES <= options.maxMessageBytes) return { part: 'image', activity: inline, fallback: byUrl };
  return { part: 'image', activity: await byUrl() };
}

/** The signed download links of `files`, as one markdown message. */
export async function filesMessage(files: LoadedOutput[], options: Pick<RenderOptions, 'host'>): Promise<OutboundMessage> {
  const lines: string[] = [];
  for (const file of files) lines.push(fileLinkLine(file.name, await options.host({ name: file.name, mimeType: file.mimeType, data: file.data }), file.data.length));
  const text = `📎 **${files.length === 1 ? 'Your file' : 'Your files'}** (links stay valid for a limited time):\n\n${lines.join('\n')}`;
  return { part: 'files', activity: textActivity(text) };
}

/** `- [name](url) (12.3 KB)` */
export function fileLinkLine(name: string, url: string, bytes: number): string {
  return `- [${name.replace(/[[\]]/g, '')}](${url}) (${formatSize(bytes)})`;
}

function formatSize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} bytes`;
}

/** "Show the code": a card whose Action.ShowCard reveals the code cells that ran, trimmed to fit. */
export function codeActivity(cells: CodeCell[], maxMessageBytes: number): Partial<Activity> {
  const build = (limit: number) => {
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
    const label = `I ran ${cells.length} code cell${cells.length === 1 ? '' : 's'} to get this answer.`;
    return cardActivity(
      card([{ type: 'TextBlock', text: label, isSubtle: true, wrap: true }], {
        actions: [{ type: 'Action.ShowCard', title: 'Show the code', card: card(body) }],
      }),
      'The code behind the answer',
    );
  };
  let limit = 20_000;
  let activity = build(limit);
  while (sizeOf(activity) + ENVELOPE_BYTES > maxMessageBytes && limit > 200) activity = build((limit = Math.floor(limit / 2)));
  return activity;
}

function trim(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const rest = text.slice(limit).split('\n').length;
  return `${text.slice(0, limit)}\n… (${rest} more line${rest === 1 ? '' : 's'} not shown)`;
}
