/**
 * Text conversion at the Slack edge, both ways, as pure functions. Everything Crunch puts into Slack that a
 * model or a user wrote (answer text, notices, statuses, streamed text, file names and titles) goes through
 * one of these, so that nothing of theirs can become a mention, `<!channel>` or `<!here>`:
 * - `markdownToSlack`: the model's markdown (Reply.text) → Slack mrkdwn. Tables become aligned code blocks,
 *   fenced code keeps its content verbatim, `**bold**` → `*bold*`, links → `<url|label>`, and `& < >` are
 *   escaped everywhere.
 * - `escapeSlack`: plain text into mrkdwn (a file name in a warning, a status message).
 * - `defuseMentions`: text Slack reads as markdown or shows as is (streamed `markdown_text`, the status line,
 *   file titles): a zero-width space after each `<` that would open a mention, invisible when shown.
 * - `portableFileName`: a file name as it is uploaded, without the characters no file system takes.
 * - `splitSlackText`: cuts mrkdwn into message-sized chunks without breaking code blocks.
 * - `slackToPlainText`: a user's message text → plain text for the core (bot mention removed, entities decoded).
 */

const BOLD = '\uE000';
const ITALIC = '\uE001';
const STRIKE = '\uE002';
const HOLD = '\uE003';
const ZWSP = '\u200B';
const WORD = /[\p{L}\p{N}]/u;

export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function defuseMentions(text: string): string {
  return text.replace(/<(?=[!@#])/g, `<${ZWSP}`);
}

export function portableFileName(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
  return name.replace(/[<>:"/\\|?*\u0000-\u001f]/g, '_');
}

/** Converts markdown into Slack mrkdwn. */
export function markdownToSlack(markdown: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is removed (it and U+E000–E003 mark held spans)
  const lines = markdown.replace(/\r\n?/g, '\n').replace(/[\u0000\uE000-\uE003]/g, '').split('\n');
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    const fence = /^( {0,3})(`{3,}|~{3,})/.exec(line);
    const math = /^\s*(\$\$|\\\[)\s*$/.exec(line);
    if (fence || math) {
      const indent = fence ? fence[1]!.length : 0;
      const closing = fence ? new RegExp(`^ {0,3}${fence[2]![0] === '`' ? '`' : '~'}{${fence[2]!.length},}\\s*$`) : math![1] === '$$' ? /^\s*\$\$\s*$/ : /^\s*\\\]\s*$/;
      const body: string[] = [];
      i += 1;
      while (i < lines.length && !closing.test(lines[i]!)) {
        body.push(lines[i]!.replace(new RegExp(`^ {0,${indent}}`), ''));
        i += 1;
      }
      i += 1;
      out.push(codeBlock(body));
      continue;
    }
    if (isTableAt(lines, i)) {
      const rows: string[] = [];
      while (i < lines.length && lines[i]!.includes('|') && lines[i]!.trim() !== '') rows.push(lines[i++]!);
      out.push(renderTable(rows));
      continue;
    }
    out.push(convertLine(line));
    i += 1;
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

function codeBlock(body: string[]): string {
  // Slack has no language hints and no escape for ``` inside a block: break such runs with a zero-width space.
  const text = escapeSlack(body.join('\n').replace(/```/g, `\`${ZWSP}\`\``)).replace(/\s+$/, '');
  return `\`\`\`\n${text}\n\`\`\``;
}

function convertLine(line: string): string {
  const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
  if (heading) {
    const text = heading[1]!.replace(/\*\*|__/g, '');
    return text === '' ? '' : `*${inline(text)}*`;
  }
  if (/^ {0,3}([-*_])( *\1){2,} *$/.test(line)) return '──────────';
  const quote = /^ {0,3}>\s?(.*)$/.exec(line);
  if (quote) return `> ${convertLine(quote[1]!)}`.trimEnd();
  const bullet = /^(\s*)[-*+]\s+(?:\[([ xX])\]\s+)?(.*)$/.exec(line);
  if (bullet) {
    const level = Math.floor(bullet[1]!.replace(/\t/g, '  ').length / 2);
    const mark = ['•', '◦', '▪'][Math.min(level, 2)]!;
    const task = bullet[2] === undefined ? '' : bullet[2] === ' ' ? '☐ ' : '☑ ';
    return `${'    '.repeat(level)}${mark} ${task}${inline(bullet[3]!)}`.trimEnd();
  }
  const ordered = /^(\s*)(\d{1,9})[.)]\s+(.*)$/.exec(line);
  if (ordered) {
    const level = Math.floor(ordered[1]!.replace(/\t/g, '  ').length / 3);
    return `${'    '.repeat(level)}${ordered[2]}. ${inline(ordered[3]!)}`.trimEnd();
  }
  return inline(line.replace(/\\$/, '')).trimEnd();
}

// ---- Inline formatting ----

function inline(text: string): string {
  const held: string[] = [];
  const hold = (s: string) => `${HOLD}${held.push(s) - 1}${HOLD}`;
  let s = text;
  // Code spans first: nothing inside them is formatting.
  s = s.replace(/(`+)(?!`)([\s\S]*?[^`])\1(?!`)/g, (_m, _ticks: string, code: string) => {
    const body = /^ .* $/.test(code) && code.trim() !== '' ? code.slice(1, -1) : code;
    return hold(`\`${escapeSlack(body.replace(/`/g, 'ˋ'))}\``);
  });
  s = s.replace(/\\([\\`*_{}[\]()#+\-.!|~<>$])/g, (_m, c: string) => hold(escapeSlack(c)));
  const url = String.raw`<?((?:[^\s()<>]|\([^\s()<>]*\))+)>?(?:\s+"[^"]*")?`;
  s = s.replace(new RegExp(String.raw`!\[([^\]]*)\]\(\s*${url}\s*\)`, 'g'), (_m, alt: string, href: string) =>
    isWebUrl(href) ? hold(link(href, alt.trim() === '' ? href : alt)) : '',
  );
  s = s.replace(new RegExp(String.raw`\[([^\]]+)\]\(\s*${url}\s*\)`, 'g'), (_m, label: string, href: string) =>
    isWebUrl(href) ? hold(link(href, label)) : label,
  );
  s = s.replace(/<((?:https?|mailto):[^\s<>]+)>/g, (_m, href: string) => hold(`<${escapeUrl(href)}>`));
  s = s.replace(/\bhttps?:\/\/[^\s<>]*[^\s<>().,;:!?'"*_~\]]/g, (href) => hold(escapeSlack(href)));
  s = emphasis(escapeSlack(s));
  return s.replace(new RegExp(`${HOLD}(\\d+)${HOLD}`, 'g'), (_m, n: string) => held[Number(n)]!);
}

function isWebUrl(href: string): boolean {
  return /^(https?:\/\/|mailto:)/i.test(href);
}

function escapeUrl(href: string): string {
  return href.replace(/&/g, '&amp;').replace(/</g, '%3C').replace(/>/g, '%3E').replace(/\|/g, '%7C');
}

function link(href: string, label: string): string {
  const text = inline(label.replace(/\*\*|__/g, '')).replace(/\|/g, '¦').replace(/[<>]/g, '');
  return text === '' || text === escapeSlack(href) ? `<${escapeUrl(href)}>` : `<${escapeUrl(href)}|${text}>`;
}

type Replacer = (match: string, ...rest: unknown[]) => string;

/** Wraps `inner` in `marker`, adding zero-width spaces where Slack would not see a word boundary. */
function wrapper(open: string, close = open): Replacer {
  return (match, ...rest) => {
    const offset = rest[rest.length - 2] as number;
    const whole = rest[rest.length - 1] as string;
    const inner = rest[0] as string;
    const before = offset > 0 && WORD.test(whole[offset - 1]!) ? ZWSP : '';
    const after = WORD.test(whole[offset + match.length] ?? '') ? ZWSP : '';
    return `${before}${open}${inner}${close}${after}`;
  };
}

function emphasis(text: string): string {
  return text
    .replace(/\*\*\*(?=\S)([\s\S]*?\S)\*\*\*/g, wrapper(BOLD + ITALIC, ITALIC + BOLD))
    .replace(/(?<![\p{L}\p{N}_])___(?=\S)([\s\S]*?\S)___(?![\p{L}\p{N}_])/gu, wrapper(BOLD + ITALIC, ITALIC + BOLD))
    .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, wrapper(BOLD))
    .replace(/(?<![\p{L}\p{N}_])__(?=\S)([\s\S]*?\S)__(?![\p{L}\p{N}_])/gu, wrapper(BOLD))
    .replace(/(?<!\*)\*(?=[^\s*])([^*]*?[^\s*])\*(?!\*)/g, wrapper(ITALIC))
    .replace(/(?<![\p{L}\p{N}_])_(?=[^\s_])([^_]*?[^\s_])_(?![\p{L}\p{N}_])/gu, wrapper(ITALIC))
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, wrapper(STRIKE))
    .replace(/\uE000/g, '*')
    .replace(/\uE001/g, '_')
    .replace(/\uE002/g, '~');
}

// ---- Tables: Slack has none, so they become monospaced, aligned text ----

const DELIMITER_ROW = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function isTableAt(lines: string[], i: number): boolean {
  const header = lines[i];
  const delimiter = lines[i + 1];
  if (header === undefined || delimiter === undefined || !header.includes('|') || !delimiter.includes('-')) return false;
  if (!DELIMITER_ROW.test(delimiter) || !(delimiter.includes('|') || header.trim().startsWith('|'))) return false;
  return splitRow(header).length === splitRow(delimiter).length;
}

function splitRow(row: string): string[] {
  const trimmed = row.trim().replace(/^\|/, '').replace(/(?<!\\)\|$/, '');
  return trimmed.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

function plainCell(cell: string): string {
  return cell
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\*\*|__|~~|`/g, '')
    .replace(/<br\s*\/?>/gi, ' ');
}

function renderTable(rows: string[]): string {
  const align = splitRow(rows[1]!).map((d) => (d.endsWith(':') ? (d.startsWith(':') ? 'center' : 'right') : 'left'));
  const body = [rows[0]!, ...rows.slice(2)].map((r) => splitRow(r).map(plainCell));
  const columns = align.length;
  const widths = align.map((_a, c) => Math.max(1, ...body.map((r) => [...(r[c] ?? '')].length)));
  const pad = (text: string, c: number): string => {
    const gap = widths[c]! - [...text].length;
    if (align[c] === 'right') return ' '.repeat(gap) + text;
    if (align[c] === 'center') return ' '.repeat(Math.floor(gap / 2)) + text + ' '.repeat(Math.ceil(gap / 2));
    return text + ' '.repeat(gap);
  };
  const line = (cells: string[]) => Array.from({ length: columns }, (_x, c) => pad(cells[c] ?? '', c)).join(' | ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  return codeBlock([line(body[0]!), rule, ...body.slice(1).map(line)]);
}

// ---- Splitting ----

/**
 * Cuts Slack text into chunks of at most `maxChars`, at line ends (a longer line at its last space), closing an
 * open code block at the end of a chunk and reopening it at the start of the next.
 */
export function splitSlackText(text: string, maxChars: number): string[] {
  const budget = Math.max(maxChars - 8, 16);
  const lines = text.split('\n').flatMap((l) => hardWrap(l, budget));
  const chunks: string[] = [];
  let current: { line: string; inCode: boolean }[] = [];
  let inCode = false;
  const size = (part: { line: string }[]) => part.reduce((n, p) => n + p.line.length + 1, 0);
  const flush = (part: { line: string; inCode: boolean }[], endsInCode: boolean) => {
    const body = part.map((p) => p.line);
    if (endsInCode) body.push('```');
    chunks.push(body.join('\n').trim());
  };
  for (const line of lines) {
    if (current.length > 0 && size(current) + line.length + 1 > budget) {
      // Prefer to cut at a blank line (outside code) in the second half of the chunk: paragraphs stay whole.
      let cut = current.length;
      for (let j = current.length - 1; j > current.length / 2; j -= 1) {
        if (current[j]!.line === '' && !current[j]!.inCode) {
          cut = j;
          break;
        }
      }
      const carried = current.slice(cut + (cut < current.length ? 1 : 0));
      const endsInCode = cut < current.length ? false : inCode;
      flush(current.slice(0, cut), endsInCode);
      current = endsInCode ? [{ line: '```', inCode: true }, ...carried] : carried;
    }
    if ((line.match(/```/g) ?? []).length % 2 === 1) inCode = !inCode;
    current.push({ line, inCode });
  }
  if (current.length > 0) flush(current, false);
  return chunks.filter((c) => c !== '' && c !== '```\n```');
}

function hardWrap(line: string, max: number): string[] {
  const pieces: string[] = [];
  let rest = line;
  while (rest.length > max) {
    const space = rest.lastIndexOf(' ', max);
    const cut = space > max / 2 ? space : max;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut).trimStart();
  }
  pieces.push(rest);
  return pieces;
}

// ---- Incoming ----

/** A Slack message's text as plain text: the bot's own mention removed, other mentions and links readable. */
export function slackToPlainText(text: string, botUserId: string | undefined): string {
  return text
    .replace(/<@([A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, name?: string) => (id === botUserId ? '' : `@${name ?? id}`))
    .replace(/<#([A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, name?: string) => `#${name || id}`)
    .replace(/<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>/g, (_m, name?: string) => name ?? '@group')
    .replace(/<!date\^[^|>]*\|([^>]*)>/g, '$1')
    .replace(/<!(here|channel|everyone)(?:\|[^>]*)?>/g, '@$1')
    .replace(/<((?:https?|mailto):[^|>]+)\|([^>]*)>/g, (_m, href: string, label: string) => {
      const target = href.replace(/^mailto:/, '');
      return label === target || label === href ? target : `${label} (${target})`;
    })
    .replace(/<((?:https?|mailto):[^>]+)>/g, (_m, href: string) => href.replace(/^mailto:/, ''))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/[ \t]{2,}/g, ' ')
    .trim();
}
