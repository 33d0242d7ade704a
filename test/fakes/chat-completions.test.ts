import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeChat, startFakeChat } from './chat-completions.js';

/** The fake Chat Completions server as the real SDK sees it, and the spec rules it holds requests to. */

let fake: FakeChat;
let client: OpenAI;
beforeEach(async () => {
  fake = await startFakeChat();
  client = new OpenAI({ apiKey: fake.apiKey, baseURL: `${fake.url}/v1`, maxRetries: 0 });
});
afterEach(async () => {
  await fake.close();
});

const tools = [{ type: 'function' as const, function: { name: 'python', parameters: { type: 'object', properties: { code: { type: 'string' } } } } }];

describe('fake Chat Completions server', () => {
  it('streams text in word pieces and tool calls in argument fragments, chunks valid against the spec', async () => {
    fake.script.push({ text: 'Let me compute that.', python: ['print(6 * 7)', 'x = 1'] });
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], tools, stream: true });
    let text = '';
    const args = new Map<number, string>();
    const finish: (string | null)[] = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0]!;
      text += choice.delta.content ?? '';
      for (const call of choice.delta.tool_calls ?? []) args.set(call.index, (args.get(call.index) ?? '') + (call.function?.arguments ?? ''));
      finish.push(choice.finish_reason);
    }
    expect(text).toBe('Let me compute that.');
    expect([...args.values()].map((a) => JSON.parse(a) as unknown)).toEqual([{ code: 'print(6 * 7)' }, { code: 'x = 1' }]);
    expect(finish.at(-1)).toBe('tool_calls');
    expect(fake.violations).toEqual([]);
  });

  it('answers without streaming too, and shows scripts what the code returned', async () => {
    fake.script.push((request) => ({ text: `The tool said: ${request.toolResults.join(' | ')}` }));
    const completion = await client.chat.completions.create({
      model: 'm',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'python', arguments: '{"code":"42"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'Result:\n42' },
      ],
      tools,
    });
    expect(completion.choices[0]!.message.content).toBe('The tool said: Result:\n42');
    expect(fake.violations).toEqual([]);
  });

  it('refuses what the real API refuses: spec violations, unanswered tool calls, a wrong key', async () => {
    await expect(client.chat.completions.create({ model: 'm', messages: [{ role: 'robot', content: 'x' }] } as never)).rejects.toMatchObject({ status: 400 });
    expect(fake.violations.map((v) => v.direction)).toContain('request');
    fake.violations.length = 0;

    const unanswered = client.chat.completions.create({
      model: 'm',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'python', arguments: '{}' } }] },
        { role: 'user', content: 'and?' },
      ],
    });
    await expect(unanswered).rejects.toThrow(/did not have response messages: call_1/);

    const wrongKey = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${fake.url}/v1`, maxRetries: 0 });
    await expect(wrongKey.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const azure = new OpenAI({ apiKey: fake.apiKey, baseURL: `${fake.url}/openai/v1`, defaultHeaders: { 'api-key': fake.apiKey }, maxRetries: 0 });
    fake.script.push({ text: 'azure ok' });
    expect((await azure.chat.completions.create({ model: 'deployment', messages: [{ role: 'user', content: 'hi' }] })).choices[0]!.message.content).toBe('azure ok');
    expect(fake.violations).toEqual([]);
  });

  it('fails as scripted, with the status and Retry-After the client sees', async () => {
    fake.script.push({ error: { status: 429, code: 'rate_limit_exceeded', retryAfterSeconds: 2 } });
    const failure = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(OpenAI.RateLimitError);
    expect((failure as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBe('2');
    expect(fake.violations).toEqual([]);
  });
});
