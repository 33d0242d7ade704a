import type { Json } from '../../core/index.js';

/**
 * The conversation as the model sees it: Chat Completions messages (the system prompt aside), kept in the
 * session between turns and trimmed to a context budget. Tokens are estimated at four characters each,
 * which is close for English and code with the common tokenizers; the budget leaves room for the answer.
 */

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type Message =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

/** An old tool result beyond the latest ones is cut to this many characters before whole turns are dropped. */
const SHORT_TOOL_RESULT = 1500;
/** The latest tool results, which the model is most likely working from, are never cut. */
const KEEP_FULL_TOOL_RESULTS = 2;

export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function messageTokens(message: Message): number {
  let chars = message.content?.length ?? 0;
  if (message.role === 'assistant') for (const call of message.tool_calls ?? []) chars += call.function.arguments.length + call.function.name.length + 20;
  return Math.ceil(chars / 4) + 6;
}

function isToolCall(value: unknown): value is ToolCall {
  const call = value as ToolCall;
  return typeof call?.id === 'string' && call.type === 'function' && typeof call.function?.name === 'string' && typeof call.function.arguments === 'string';
}

function isMessage(value: unknown): value is Message {
  const m = value as Message;
  if (m?.role === 'user') return typeof m.content === 'string';
  if (m?.role === 'tool') return typeof m.content === 'string' && typeof m.tool_call_id === 'string';
  if (m?.role === 'assistant') return (m.content === null || typeof m.content === 'string') && (m.tool_calls === undefined || (Array.isArray(m.tool_calls) && m.tool_calls.every(isToolCall)));
  return false;
}

/** The history kept in a session, or none when it is missing or not in this shape. */
export function loadHistory(data: { [key: string]: Json } | undefined): Message[] {
  const messages = data?.['messages'];
  return Array.isArray(messages) && messages.every(isMessage) ? (messages as unknown as Message[]) : [];
}

export function hasRunCode(messages: Message[]): boolean {
  return messages.some((m) => m.role === 'assistant' && (m.tool_calls?.length ?? 0) > 0);
}

/** Splits the history into turns, each starting at a user message. */
function turns(messages: Message[]): Message[][] {
  const groups: Message[][] = [];
  for (const message of messages) {
    if (message.role === 'user' || groups.length === 0) groups.push([message]);
    else groups.at(-1)!.push(message);
  }
  return groups;
}

/**
 * The history cut to fit `budgetTokens` (besides `fixedTokens` for the system prompt and tools): older
 * tool results are shortened first, then the oldest turns dropped. The latest turn is always kept whole
 * but for its older tool results, so the model never loses the question it is answering.
 */
export function fitHistory(messages: Message[], budgetTokens: number, fixedTokens: number): Message[] {
  const budget = budgetTokens - fixedTokens;
  const total = (list: Message[]) => list.reduce((sum, m) => sum + messageTokens(m), 0);
  if (total(messages) <= budget) return messages;

  const toolIndexes = messages.flatMap((m, i) => (m.role === 'tool' ? [i] : []));
  const shortenable = new Set(toolIndexes.slice(0, Math.max(0, toolIndexes.length - KEEP_FULL_TOOL_RESULTS)));
  const shortened = messages.map((m, i) =>
    m.role === 'tool' && shortenable.has(i) && m.content.length > SHORT_TOOL_RESULT
      ? { ...m, content: `${m.content.slice(0, SHORT_TOOL_RESULT)}\n[... shortened to save context ...]` }
      : m,
  );
  let groups = turns(shortened);
  while (groups.length > 1 && total(groups.flat()) > budget) groups = groups.slice(1);
  return groups.flat();
}
