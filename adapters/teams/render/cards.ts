import type { Activity } from 'botbuilder';
import type { CodeCell, Reply, ReplyOutput } from '../../../src/core/index.js';
import { markdownBlocks, noticesMarkdown, splitMarkdown, stripSandboxLinks, toTeamsMarkdown, type MarkdownTable } from '../markdown.js';
import { card, cardActivity, ENVELOPE_BYTES, type OutboundMessage, type OutboundPart, type PlannedPart, type RenderOptions, sizeOf, textActivity } from './activity.js';
import { filesMessage, imageMessage } from './outputs.js';

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

/** The text of the answer as Teams markdown pieces: notices first, then the answer, split to fit. */
export function answerTextPieces(reply: Reply, maxMessageBytes: number): string[] {
  const parts: string[] = [];
  if (reply.notices.length > 0) parts.push(noticesMarkdown(reply.notices));
  const body = toTeamsMarkdown(reply.text).trim();
  if (body !== '') parts.push(reply.kind === 'error' ? `⚠️ ${body}` : body);
  if (parts.length === 0) parts.push(reply.images.length + reply.files.length > 0 ? 'Here are the results.' : 'Done.');
  // Teams counts UTF-16: two bytes per character.
  return splitMarkdown(parts.join('\n\n'), Math.floor((maxMessageBytes - ENVELOPE_BYTES) / 2));
}

/**
 * The reply as the messages that carry it, in order: the answer (text, or a card when it has tables), one
 * card per chart, the downloads (one message of signed links, or one file consent card per file in personal
 * chat), "show the code", and last a line for any chart or file that could not be attached after all.
 */
export function planReply(reply: Reply, options: RenderOptions): PlannedPart[] {
  const plan: PlannedPart[] = [];
  const now = (id: string, part: OutboundPart, activity: Partial<Activity>): PlannedPart => ({ id, part, render: async () => ({ part, activity }) });
  const tableCard = options.textOnly ? undefined : answerCard(reply, options.maxMessageBytes);
  if (tableCard !== undefined) plan.push(now('text:0', 'text', tableCard));
  else answerTextPieces(reply, options.maxMessageBytes).forEach((piece, i) => plan.push(now(`text:${i}`, 'text', textActivity(piece))));
  const unattached: string[] = [];
  const attempt = async (output: ReplyOutput, render: () => Promise<OutboundMessage | undefined>) => {
    try {
      return await render();
    } catch (err) {
      unattached.push((err as { userMessage?: string }).userMessage ?? `**${output.name}** could not be attached.`);
      return undefined;
    }
  };
  reply.images.forEach((image, i) => plan.push({ id: `image:${i}`, part: 'image', render: () => attempt(image, () => imageMessage(image, options)) }));
  if (options.offer !== undefined) {
    const offer = options.offer;
    reply.files.forEach((file, i) => plan.push({ id: `file:${i}`, part: 'files', render: () => attempt(file, () => offer(file)) }));
  } else if (reply.files.length > 0) {
    plan.push({ id: 'files', part: 'files', render: () => filesMessage(reply.files, options, unattached) });
  }
  if (reply.code.length > 0) plan.push(now('code', 'code', codeActivity(reply.code, options.maxMessageBytes)));
  plan.push({ id: 'notices', part: 'notices', render: async () => (unattached.length > 0 ? { part: 'notices', activity: textActivity(noticesMarkdown(unattached)) } : undefined) });
  return plan;
}

/** Every part of the plan, rendered (tests, and where nothing is skipped). */
export async function renderReply(reply: Reply, options: RenderOptions): Promise<OutboundMessage[]> {
  const out: OutboundMessage[] = [];
  for (const planned of planReply(reply, options)) {
    const message = await planned.render();
    if (message !== undefined) out.push(message);
  }
  return out;
}

/** When the answer has tables: one Adaptive Card with TextBlocks and Tables, if it fits; else undefined. */
function answerCard(reply: Reply, maxMessageBytes: number): Partial<Activity> | undefined {
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
