/**
 * Pure text conversions at the Teams edge: the user's message text in (mentions, HTML), Crunch's markdown
 * out (tables, sandbox links, splitting). No SDK import.
 */

/** Inline HTML tags Teams may leave in `activity.text`; anything else that looks like `<x>` is kept as typed. */
const HTML_TAG =
  /<\/?(?:p|div|span|br|b|i|u|s|strong|em|a|ul|ol|li|pre|code|blockquote|h[1-6]|img|table|tr|td|th|tbody|thead|attachment)\b[^>]*>/gi;

const ENTITIES: Record<string, string> = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * Decodes the named entities above and numeric ones. A numeric reference that is no Unicode scalar value (over
 * U+10FFFF, a surrogate, or NUL; `&#99999999;` would make String.fromCodePoint throw) is kept as written.
 */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith('#')) {
      const hex = name[1] === 'x' || name[1] === 'X';
      const code = Number.parseInt(name.slice(hex ? 2 : 1), hex ? 16 : 10);
      const valid = Number.isSafeInteger(code) && code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
      return valid ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/**
 * The user's words without the bot's @mention: removes every `<at>…</at>` that mentions the bot (the mention
 * entities' `text`, or the bot's display name), turns other mentions into `@name`, and drops Teams' HTML.
 * Same effect as TurnContext.removeRecipientMention, without mutating the activity, and for every occurrence.
 */
export function cleanIncomingText(text: string, botMentionTexts: string[], botName?: string): string {
  let out = text;
  for (const mention of botMentionTexts) if (mention !== '') out = out.split(mention).join(' ');
  out = out.replace(/<at[^>]*>(.*?)<\/at>/gis, (_whole, inner: string) => {
    const name = decodeEntities(inner).trim();
    return botName !== undefined && name === botName ? ' ' : `@${name}`;
  });
  out = out
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(?:p|div|li)>/gi, '\n')
    .replace(HTML_TAG, '');
  return decodeEntities(out)
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

export interface MarkdownTable {
  header: string[];
  rows: string[][];
}

export type MarkdownBlock = { type: 'text'; text: string } | { type: 'table'; table: MarkdownTable };

const TABLE_SEPARATOR = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function splitRow(line: string): string[] {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** Splits markdown into prose and GitHub-style pipe tables, leaving fenced code untouched. */
export function markdownBlocks(markdown: string): MarkdownBlock[] {
  const lines = markdown.replace(/\r\n/g, '\n').split('\n');
  const blocks: MarkdownBlock[] = [];
  let prose: string[] = [];
  let fence: string | undefined;
  const flush = () => {
    const text = prose.join('\n').replace(/^\n+|\n+$/g, '');
    if (text.trim() !== '') blocks.push({ type: 'text', text });
    prose = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fenceMatch = /^\s*(`{3,}|~{3,})/.exec(line);
    if (fenceMatch) {
      if (fence === undefined) fence = fenceMatch[1]!.slice(0, 3);
      else if (line.trim().startsWith(fence)) fence = undefined;
      prose.push(line);
      continue;
    }
    const next = lines[i + 1];
    if (fence === undefined && line.includes('|') && next !== undefined && TABLE_SEPARATOR.test(next)) {
      const header = splitRow(line);
      const rows: string[][] = [];
      let j = i + 2;
      while (j < lines.length && lines[j]!.includes('|') && lines[j]!.trim() !== '') rows.push(splitRow(lines[j++]!));
      flush();
      blocks.push({ type: 'table', table: { header, rows } });
      i = j - 1;
      continue;
    }
    prose.push(line);
  }
  flush();
  return blocks;
}

/** Cell text without markdown emphasis, for monospace layouts. */
export function plainCell(cell: string): string {
  return cell.replace(/\*\*(.*?)\*\*/g, '$1').replace(/__(.*?)__/g, '$1').replace(/`([^`]*)`/g, '$1');
}

/** A table as an aligned monospace code block: Teams text messages cannot show tables. */
export function tableToCodeBlock(table: MarkdownTable): string {
  const all = [table.header, ...table.rows].map((row) => row.map(plainCell));
  const columns = Math.max(...all.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, c) => Math.max(...all.map((row) => [...(row[c] ?? '')].length)));
  const format = (row: string[]) =>
    widths
      .map((w, c) => {
        const cell = row[c] ?? '';
        const pad = ' '.repeat(w - [...cell].length);
        return /^[-+]?[\d.,]+%?$/.test(cell) ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  const lines = [format(all[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(format)];
  return ['```', ...lines, '```'].join('\n');
}

/**
 * Crunch's markdown as Teams text-message markdown: tables become aligned code blocks, and links into the
 * code interpreter's sandbox (`sandbox:/mnt/data/...`) become plain text, since those files are attached.
 */
export function toTeamsMarkdown(markdown: string): string {
  return markdownBlocks(stripSandboxLinks(markdown))
    .map((block) => (block.type === 'table' ? tableToCodeBlock(block.table) : block.text))
    .join('\n\n');
}

export function stripSandboxLinks(markdown: string): string {
  return markdown.replace(/!?\[([^\]]*)\]\((?:sandbox:|\/mnt\/data\/)[^)]*\)/g, (_whole, label: string) => label);
}

/**
 * Splits text into pieces of at most `maxChars`, at paragraph boundaries where possible, then at line
 * boundaries; a fenced code block cut in two is closed and reopened so both halves render.
 */
export function splitMarkdown(text: string, maxChars: number): string[] {
  if (text.length <= maxChars) return [text];
  const pieces: string[] = [];
  let lines: string[] = [];
  let size = 0;
  let fence: string | undefined; // the fence open at the end of `lines`
  let fenceAtStart: string | undefined; // the fence that was open when `lines` began
  const emit = (upTo: number) => {
    const taken = lines.slice(0, upTo);
    const fenceAfter = fenceAfterLines(taken, fenceAtStart);
    const body = [...(fenceAtStart !== undefined ? [fenceAtStart] : []), ...taken, ...(fenceAfter !== undefined ? [fenceAfter] : [])];
    const piece = body.join('\n').replace(/^\n+|\n+$/g, '');
    if (piece.trim() !== '') pieces.push(piece);
    lines = lines.slice(upTo);
    fenceAtStart = fenceAfter;
    size = lines.reduce((n, l) => n + l.length + 1, 0);
  };
  for (const rawLine of text.split('\n')) {
    for (const line of rawLine.length > maxChars - 10 ? chunk(rawLine, maxChars - 10) : [rawLine]) {
      if (size + line.length + 10 > maxChars && lines.length > 0) {
        const blank = fence === undefined ? lines.lastIndexOf('') : -1;
        emit(blank > lines.length / 2 ? blank : lines.length);
      }
      lines.push(line);
      size += line.length + 1;
      const opener = /^\s*(`{3,}|~{3,})/.exec(line);
      if (opener) fence = fence === undefined ? opener[1]!.slice(0, 3) : undefined;
    }
  }
  emit(lines.length);
  return pieces;
}

function fenceAfterLines(lines: string[], open: string | undefined): string | undefined {
  let fence = open;
  for (const line of lines) {
    const opener = /^\s*(`{3,}|~{3,})/.exec(line);
    if (opener) fence = fence === undefined ? opener[1]!.slice(0, 3) : undefined;
  }
  return fence;
}

function chunk(line: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < line.length; i += size) out.push(line.slice(i, i + size));
  return out;
}

/** One line per notice, as a markdown quote the reader notices before the answer. */
export function noticesMarkdown(notices: string[]): string {
  return notices.map((notice) => `> ⚠️ ${notice}`).join('\n>\n');
}
