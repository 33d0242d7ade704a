import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineSession } from '../../../src/core/index.js';
import { startFakeChat } from '../../fakes/chat-completions.js';
import { ask, type LocalStack, startLocal } from './harness.js';

/** What the answers carry at the edges: outputs and their caps, odd model behaviour, lost state, API errors. */

let stack: LocalStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const told = (s: LocalStack) => s.chat.requests.at(-1)!.toolResults;

describe('local engine answers', () => {
  it('names figures after their titles, does not post a saved figure twice, and caps outputs at ten', async () => {
    stack = await startLocal({ maxFileBytes: 1024 * 1024 });
    stack.chat.script.push(
      {
        python: [
          "import matplotlib.pyplot as plt\nplt.figure(); plt.plot([1, 2]); plt.title('Sales (2026) by region')\nplt.figure(); _ = plt.bar(['a'], [1])",
          "plt.figure(); plt.plot([2, 1]); plt.savefig('saved.png')",
          "for i in range(12):\n    open(f'part{i:02}.csv', 'w').write('x')\nopen('huge.bin', 'wb').write(b'0' * (2 * 1024 * 1024))",
        ],
      },
      { text: 'done' },
    );
    const result = await ask(stack, 'charts');
    expect(told(stack)[0]).toBe('Figures captured and attached to your answer: sales_2026_by_region.png, figure_2.png.');
    expect(told(stack)[1]).toMatch(/^Files created or changed: saved\.png \([\d.]+ KB\)\.$/);
    expect(result.outputs.map((o) => o.name)).toEqual([
      'sales_2026_by_region.png',
      'figure_2.png',
      'saved.png',
      'part00.csv',
      'part01.csv',
      'part02.csv',
      'part03.csv',
      'part04.csv',
      'part05.csv',
      'part06.csv',
    ]);
    expect(result.outputs[0]).toMatchObject({ title: 'Sales (2026) by region', mimeType: 'image/png' });
    expect(result.notices).toEqual([
      '**huge.bin** was created but is too large to attach here.',
      'The code also created 5 more files (part07.csv, part08.csv, part09.csv, part10.csv, part11.csv); ask for the ones you want, or for a zip of them.',
    ]);
  });

  it('tells the model what went wrong with an unknown tool or arguments that are not JSON', async () => {
    stack = await startLocal();
    stack.chat.script.push({ calls: [{ name: 'shell', arguments: '{"cmd":"ls"}' }, { name: 'python', arguments: 'print(1)' }] }, { text: 'sorry' });
    const result = await ask(stack, 'go');
    expect(told(stack)).toEqual([
      'There is no tool named "shell"; the only tool is python.',
      'Not run: the arguments must be a JSON object like {"code": "print(1 + 1)"}.',
    ]);
    expect(result.text).toBe('sorry');
    expect(result.code).toEqual([]);
  });

  it('starts afresh, saying so, when the session came from another engine or its folder is gone', async () => {
    stack = await startLocal();
    const now = new Date().toISOString();
    const hosted: EngineSession = { engine: 'responses', contextId: 'conv_1', containerId: 'cntr_1', files: [{ sourceId: 'F', fileId: 'file-1', name: 'a.csv' }], createdAt: now, lastUsedAt: now };
    const switched = await ask(stack, 'hi', { session: hosted });
    expect(switched.notices).toEqual(['This conversation began with another code interpreter, so I started afresh here; please share its files again.']);
    expect(switched.session).toMatchObject({ engine: 'local', files: [] });

    stack.chat.script.push({ text: 'ok' });
    const withFile = await ask(stack, 'keep this', { session: switched.session, files: [{ sourceId: 'F2', name: 'b.csv', mimeType: 'text/csv', open: async () => (await import('node:stream')).Readable.from(['a\n']) }] });
    await stack.engine.close();
    await rm(join(stack.root, 'sessions', withFile.session.contextId!), { recursive: true });
    await stack.engine.start();
    const lost = await ask(stack, 'still there?', { session: withFile.session });
    expect(lost.notices).toEqual(['The files of this conversation are no longer here (they were removed from the server); please share them again.']);
    expect(lost.session.files).toEqual([]);
  });

  it('says so when the model answers nothing, and the conversation goes on', async () => {
    stack = await startLocal();
    stack.chat.script.push({ text: '' });
    const empty = await ask(stack, 'hi');
    expect(empty.text).toBe('_(The model gave no answer; please ask again.)_');
    stack.chat.script.push({ text: 'Hello.' });
    expect((await ask(stack, 'hi again', { session: empty.session })).text).toBe('Hello.');
  });

  it('talks to an Azure OpenAI v1 endpoint with the api-key header and the deployment as model', async () => {
    const chat = await startFakeChat();
    stack = await startLocal({ api: { provider: 'azure', apiKey: chat.apiKey, baseURL: `${chat.url}/openai/v1`, apiVersion: undefined, model: 'my-deployment', instructions: 'You are Crunch.' } }, chat);
    chat.script.push({ python: 'print(2 + 2)' }, (request) => ({ text: request.toolResults[0]! }));
    const result = await ask(stack, 'two plus two');
    expect(result.text).toBe('Output:\n4');
    expect(chat.requests.at(-1)!.body['model']).toBe('my-deployment');
  });

  it('maps model API failures: retries a 500, explains a bad key, notes an answer cut short', async () => {
    stack = await startLocal();
    stack.chat.script.push({ error: { status: 500, message: 'boom' } }, { text: 'after a retry', finishReason: 'length' });
    const retried = await ask(stack, 'hi');
    expect(retried.text).toBe('after a retry\n\n_(The answer was cut short: length.)_');

    stack.chat.script.push({ error: { status: 401, code: 'invalid_api_key', message: 'bad key' } });
    await expect(ask(stack, 'hi')).rejects.toMatchObject({ code: 'engine_auth' });
  });
});
