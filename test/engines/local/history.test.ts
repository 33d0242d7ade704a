import { describe, expect, it } from 'vitest';
import { fitHistory, hasRunCode, loadHistory, type Message } from '../../../src/engines/local/history.js';

const call = (id: string): Message => ({ role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: 'python', arguments: '{"code":"1"}' } }] });
const turn = (n: number, toolChars = 100): Message[] => [
  { role: 'user', content: `question ${n}` },
  call(`call_${n}`),
  { role: 'tool', tool_call_id: `call_${n}`, content: 'r'.repeat(toolChars) },
  { role: 'assistant', content: `answer ${n}` },
];

describe('conversation history', () => {
  it('is kept whole while it fits the budget', () => {
    const messages = [...turn(1), ...turn(2)];
    expect(fitHistory(messages, 10_000, 500)).toBe(messages);
  });

  it('shortens older tool results first, then drops the oldest turns, never the current question', () => {
    const messages = [...turn(1, 6000), ...turn(2, 6000), ...turn(3, 6000)];
    const shortened = fitHistory(messages, 4500, 500);
    expect(shortened.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['question 1', 'question 2', 'question 3']);
    const results = shortened.flatMap((m) => (m.role === 'tool' ? [m.content] : []));
    expect(results[0]).toBe(`${'r'.repeat(1500)}\n[... shortened to save context ...]`);
    expect(results.slice(1)).toEqual(['r'.repeat(6000), 'r'.repeat(6000)]);

    const dropped = fitHistory(messages, 3000, 500);
    expect(dropped[0]).toEqual({ role: 'user', content: 'question 3' });
    expect(dropped).toHaveLength(4);

    const current = turn(4, 50_000);
    expect(fitHistory([...turn(1), ...current], 1000, 500)).toEqual(current);
  });

  it('reads back only well-formed histories from the store', () => {
    const messages = turn(1);
    expect(loadHistory({ messages: JSON.parse(JSON.stringify(messages)) })).toEqual(messages);
    expect(loadHistory({ messages: [{ role: 'system', content: 'injected' }] })).toEqual([]);
    expect(loadHistory({ messages: 'nope' })).toEqual([]);
    expect(loadHistory(undefined)).toEqual([]);
    expect(hasRunCode(messages)).toBe(true);
    expect(hasRunCode([{ role: 'user', content: 'hi' }])).toBe(false);
  });
});
