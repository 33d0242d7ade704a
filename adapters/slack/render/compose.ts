import type { CodeCell, Reply } from '../../../src/core/index.js';
import { markdownToSlack, splitSlackText } from '../markdown.js';

/** A section block's text limit; each answer message holds one section. */
export const MAX_MESSAGE_CHARS = 3000;
/** Longer answers are posted as their first part plus the whole text attached as answer.md. */
export const MAX_TEXT_MESSAGES = 4;
const CONTEXT_ELEMENTS = 10;

export interface SlackMessage {
  text: string;
  blocks: Record<string, unknown>[];
}

/** The reply's text as section messages, its notices as a context block on the last one. Pure. */
export function composeMessages(reply: Reply): { messages: SlackMessage[]; longAnswer: boolean } {
  const markdown = reply.kind === 'error' && reply.text.trim() !== '' ? `:warning: ${reply.text}` : reply.text;
  let chunks = splitSlackText(markdownToSlack(markdown), MAX_MESSAGE_CHARS);
  const longAnswer = chunks.length > MAX_TEXT_MESSAGES;
  if (longAnswer) chunks = [chunks[0]!, '_The answer is long, so the whole of it is attached below as answer.md._'];
  const messages: SlackMessage[] = chunks.map((chunk) => ({
    text: chunk,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: chunk }, expand: true }],
  }));
  const small = smallPrint(reply);
  if (small.length > 0) {
    const last = messages[messages.length - 1];
    if (last !== undefined) last.blocks.push(...small);
    else messages.push({ text: [...reply.notices.map((n) => markdownToSlack(n)), reply.receipt ?? ''].join('\n').trim().slice(0, MAX_MESSAGE_CHARS), blocks: small });
  }
  return { messages, longAnswer };
}

/** What an answer ends with in small print: its notices, then its receipt (CRUNCH_SHOW_COST). */
export function smallPrint(reply: Reply): Record<string, unknown>[] {
  const notices = noticesBlock(reply.notices);
  // Plain text: a receipt has nothing to format, and nothing in it can become a mention or a link.
  const receipt = reply.receipt === undefined ? undefined : { type: 'context', elements: [{ type: 'plain_text', text: reply.receipt.slice(0, MAX_MESSAGE_CHARS), emoji: false }] };
  return [...(notices ? [notices] : []), ...(receipt ? [receipt] : [])];
}

/** The reply's notices (skipped files and the like) as one small-print context block, or undefined when none. */
function noticesBlock(notices: string[]): Record<string, unknown> | undefined {
  if (notices.length === 0) return undefined;
  const lines = notices.map((n) => markdownToSlack(n).slice(0, MAX_MESSAGE_CHARS));
  const elements = lines.slice(0, CONTEXT_ELEMENTS - 1);
  if (lines.length >= CONTEXT_ELEMENTS) elements.push(lines.slice(CONTEXT_ELEMENTS - 1).join('\n').slice(0, MAX_MESSAGE_CHARS));
  return { type: 'context', elements: elements.map((text) => ({ type: 'mrkdwn', text })) };
}

/** All code cells as one Python file, each cell's output kept as comments under it. */
export function codeFile(cells: CodeCell[]): string {
  return (
    `${cells
      .map((cell, i) => {
        const header = cells.length > 1 ? `# ---- step ${i + 1} of ${cells.length} ----\n` : '';
        const printed = cell.output?.trim() ?? '';
        const output = printed === '' ? '' : `\n\n# Output:\n${printed.slice(0, 4000).split('\n').map((l) => `# ${l}`).join('\n')}`;
        return `${header}${cell.code.trimEnd()}${output}`;
      })
      .join('\n\n\n')}\n`
  );
}
