import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { type Attachment, keys } from '../../src/core/index.js';
import { type Stack, startStack } from '../support/stack.js';

/** Retention and `forget` with the real `responses` engine: what Crunch made at the provider is deleted there. */

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

function csv(name: string, text: string): Attachment {
  return { sourceId: `src:${name}`, name, mimeType: 'text/csv', sizeBytes: Buffer.byteLength(text), open: async () => Readable.from([Buffer.from(text)]) };
}

const upstream = (s: Stack) => ({ files: s.openai.files.size, containers: s.openai.containers.size, conversations: s.openai.conversations.size });

async function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

describe('deleting a conversation upstream', () => {
  it('with a retention of a few seconds, deletes its files, container and conversation at OpenAI and forgets the thread', async () => {
    stack = await startStack({ CRUNCH_RETENTION: '2s' });
    const s = stack;
    s.openai.script.push({ text: 'It has two months.' });
    await s.platform.ask(s.crunch.core, { thread: 'r1', text: 'what is in it?', attachments: [csv('sales.csv', 'month,revenue\nJan,10\nFeb,12\n')] });
    expect(upstream(s)).toEqual({ files: 1, containers: 1, conversations: 1 });
    expect(await s.crunch.store.get(keys.session('test:W:C:r1'))).toBeDefined();

    // Deleted, then forgotten by the store (the timeline entry goes last).
    await until(() => s.openai.conversations.size + s.openai.files.size + s.openai.containers.size === 0, 10_000);
    const timeline = s.crunch.store.timeline('conversations');
    for (let i = 0; i < 100 && (await timeline.range(0, Date.now() + 1)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(upstream(s)).toEqual({ files: 0, containers: 0, conversations: 0 });
    expect(await s.crunch.store.get(keys.session('test:W:C:r1'))).toBeUndefined();
    const deletes = s.openai.requests.filter((r) => r.method === 'DELETE').map((r) => r.template);
    expect(deletes.toSorted()).toEqual(['/containers/{container_id}', '/conversations/{conversation_id}', '/files/{file_id}']);

    // A later message in that thread starts afresh: a new conversation at the provider.
    s.openai.script.push({ text: 'I do not have that file any more.' });
    await s.platform.ask(s.crunch.core, { thread: 'r1', text: 'and in March?' });
    expect(s.openai.conversations.size).toBe(1);
    s.expectSpecClean();
  });

  it('`forget` deletes it all at once and says so', async () => {
    stack = await startStack();
    const s = stack;
    s.openai.script.push({ text: 'Loaded.' });
    await s.platform.ask(s.crunch.core, { thread: 'f1', text: 'load these', attachments: [csv('a.csv', 'x\n1\n'), csv('b.csv', 'y\n2\n')] });
    expect(upstream(s)).toEqual({ files: 2, containers: 1, conversations: 1 });
    const reply = await s.platform.ask(s.crunch.core, { thread: 'f1', text: 'forget' });
    expect(reply.text).toBe(
      'Deleted this conversation: 2 shared files, its Python sandbox, its history with the AI service and my record of it. Mention me to start afresh.',
    );
    expect(upstream(s)).toEqual({ files: 0, containers: 0, conversations: 0 });
    s.expectSpecClean();
  });

  it('reports usage from the response and the container it made, priced for the receipt', async () => {
    stack = await startStack({ CRUNCH_SHOW_COST: 'true' });
    const s = stack;
    s.openai.script.push({ text: 'Done.' });
    const reply = await s.platform.ask(s.crunch.core, { thread: 'u1', text: 'hello' });
    const response = [...s.openai.responses.values()][0]!.response as { usage: { input_tokens: number; output_tokens: number } };
    expect(reply.usage).toMatchObject({ model: 'gpt-4.1', inputTokens: response.usage.input_tokens, outputTokens: response.usage.output_tokens, sandboxSessions: 1 });
    expect(reply.receipt).toMatch(/^[\d,]+ tokens · 1 sandbox session · ≈ \$0\.03$/);
  });
});
