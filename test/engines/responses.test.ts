import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { type Attachment, AttachmentError, type Progress, readOutput, type Reply, type ReplyOutput } from '../../src/core/index.js';
import { PART_BYTES } from '../../src/engines/responses/uploads.js';
import type { FakeContainer } from '../fakes/openai.js';
import { type Stack, startStack } from '../support/stack.js';

const XLSX = await readFile(new URL('../fixtures/files/sales.xlsx', import.meta.url));
const PNG = await readFile(new URL('../fixtures/files/revenue.png', import.meta.url));

let stack: Stack | undefined;
afterEach(async () => {
  stack?.expectSpecClean();
  await stack?.close();
  stack = undefined;
});

function fileFrom(name: string, data: Buffer, sourceId = `src:${name}`, declareSize = true): Attachment {
  return {
    sourceId,
    name,
    ...(declareSize ? { sizeBytes: data.length } : {}),
    open: async () => Readable.from(chunks(data, 64 * 1024)),
  };
}
function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

let n = 0;
async function ask(s: Stack, thread: string, text: string, attachments: Attachment[] = [], progress: Progress[] = []): Promise<Reply> {
  n += 1;
  const reply = await s.platform.ask(s.crunch.core, { thread, text, attachments, messageKey: `msg-${n}` });
  progress.push(...(s.platform.progress.get(`msg-${n}`) ?? []));
  return reply;
}
/** What each output holds, read from the container the way an adapter reads it when it posts. */
async function contents(outputs: ReplyOutput[]) {
  return Promise.all(outputs.map(async (o) => ({ title: o.title, name: o.name, mimeType: o.mimeType, data: await readOutput(o, 1024 * 1024) })));
}
const responsesCalls = (s: Stack) => s.openai.requests.filter((r) => r.method === 'POST' && r.endpoint === '/responses');
const onlyContainer = (s: Stack): FakeContainer => {
  expect(s.openai.containers.size).toBe(1);
  return [...s.openai.containers.values()][0]!;
};

describe('responses engine against the fake OpenAI', () => {
  it('analyses a spreadsheet: uploads it, runs code in its container, returns text, chart, file and code', async () => {
    stack = await startStack();
    stack.openai.script.push({
      code: "import pandas as pd\ndf = pd.read_excel('/mnt/data/sales.xlsx')\n",
      logs: 'rows: 24',
      images: [{ filename: 'revenue_by_month.png', data: PNG }],
      files: [{ filename: 'outliers.csv', data: 'month,region,revenue\n2026-07,South,42000\n' }],
      text: 'Revenue grows every month; July in the South is an outlier. [Download](sandbox:/mnt/data/outliers.csv)',
    });
    const progress: Progress[] = [];
    const reply = await ask(stack, 't1', 'plot revenue by month and flag outliers', [fileFrom('sales.xlsx', XLSX)], progress);

    expect(reply.kind).toBe('answer');
    expect(reply.text).toBe('Revenue grows every month; July in the South is an outlier. **Download**');
    expect(await contents(reply.images)).toEqual([{ title: 'Revenue by month', name: 'revenue_by_month.png', mimeType: 'image/png', data: PNG }]);
    expect(await contents(reply.files)).toEqual([
      { title: 'Outliers', name: 'outliers.csv', mimeType: 'text/csv', data: Buffer.from('month,region,revenue\n2026-07,South,42000\n') },
    ]);
    expect(reply.code).toEqual([{ code: "import pandas as pd\ndf = pd.read_excel('/mnt/data/sales.xlsx')\n", output: 'rows: 24' }]);

    const statuses = progress.filter((p) => p.type === 'status').map((p) => p.text);
    expect(statuses).toEqual(expect.arrayContaining(['reading sales.xlsx…', 'running code…']));
    const streamed = progress.filter((p) => p.type === 'text').map((p) => (p as { delta: string }).delta).join('');
    expect(streamed).toBe(reply.text); // streamed as cleaned as the final text: no sandbox: links shown

    const [uploaded] = [...stack.openai.files.values()];
    expect(uploaded).toMatchObject({ filename: 'sales.xlsx', purpose: 'assistants' });
    expect(uploaded!.data.equals(XLSX)).toBe(true);
    const container = onlyContainer(stack);
    expect(container.fileIds).toEqual([uploaded!.id]);
    const body = responsesCalls(stack)[0]!.body as Record<string, unknown>;
    expect(body).toMatchObject({
      model: 'gpt-4.1',
      stream: true,
      tools: [{ type: 'code_interpreter', container: container.id }],
      include: ['code_interpreter_call.outputs'],
      conversation: [...stack.openai.conversations.keys()][0],
    });
    expect(JSON.stringify(body.input)).toContain('in /mnt/data: sales.xlsx');
  });

  it('spends few requests on a turn: independent ones side by side, no listing before the model, none after it when no code ran', async () => {
    stack = await startStack();
    const calls = () => stack!.openai.requests.map((r) => `${r.method} ${r.template}`);
    stack.openai.script.push({ code: 'plot()', images: [{ filename: 'chart.png', data: PNG }], text: 'Here.' }, { text: 'Just words.' }, { code: 'x = 1', text: 'Ran it.' });
    const first = await ask(stack, 't1', 'plot it', [fileFrom('sales.xlsx', XLSX)]);
    // The conversation is created while the file uploads; the sandbox is made with the file.
    expect(calls().slice(0, 2).sort()).toEqual(['POST /conversations', 'POST /files']);
    expect(calls().slice(2)).toEqual(['POST /containers', 'POST /responses', 'GET /containers/{container_id}/files']);
    // The chart is fetched only when it is posted.
    await readOutput(first.images[0]!, 1024 * 1024);
    expect(calls().at(-1)).toBe('GET /containers/{container_id}/files/{file_id}/content');

    stack.openai.requests.length = 0;
    await ask(stack, 't1', 'and in words?');
    expect(calls()).toEqual(['POST /responses']);
    stack.openai.requests.length = 0;
    await ask(stack, 't1', 'run this');
    expect(calls()).toEqual(['POST /responses', 'GET /containers/{container_id}/files']);
  });

  it('keeps context, container and files for a follow-up, uploading a re-shared file once', async () => {
    stack = await startStack();
    await ask(stack, 't1', 'summarise', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    await ask(stack, 't1', 'and now by region', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    await ask(stack, 't1', 'compare with this', [fileFrom('notes.csv', Buffer.from('a,b\n1,2\n'), 'F2')]);

    expect(stack.openai.files.size).toBe(2);
    const container = onlyContainer(stack);
    expect(container.files.filter((f) => f.source === 'user').map((f) => f.filename).sort()).toEqual(['notes.csv', 'sales.xlsx']);
    const bodies = responsesCalls(stack).map((r) => r.body as { conversation: string; tools: { container: string }[] });
    expect(new Set(bodies.map((b) => b.conversation)).size).toBe(1);
    expect(new Set(bodies.map((b) => b.tools[0]!.container))).toEqual(new Set([container.id]));
    expect(stack.openai.conversations.get(bodies[0]!.conversation)!.items.length).toBeGreaterThanOrEqual(6);
  });

  it('never lets a second conversation see the first one\'s files', async () => {
    stack = await startStack();
    await ask(stack, 'A', 'look', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    await ask(stack, 'B', 'what files do you have?');
    const bodies = responsesCalls(stack).map((r) => r.body as { conversation: string; tools: { container: string }[] });
    expect(bodies[0]!.conversation).not.toBe(bodies[1]!.conversation);
    const containerB = stack.openai.containers.get(bodies[1]!.tools[0]!.container)!;
    expect(containerB.id).not.toBe(bodies[0]!.tools[0]!.container);
    expect(containerB.fileIds).toEqual([]);
    expect(containerB.files).toEqual([]);
  });

  it('starts a new container with the same files when the old one expired, without the user noticing', async () => {
    stack = await startStack();
    await ask(stack, 't1', 'look', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    const first = onlyContainer(stack);
    stack.openai.expireAllContainers();
    const reply = await ask(stack, 't1', 'now plot it');
    expect(reply.kind).toBe('answer');
    expect(stack.openai.files.size).toBe(1);
    const second = [...stack.openai.containers.values()].find((c) => c.id !== first.id)!;
    expect(second.fileIds).toEqual(first.fileIds);
    // Used a minute ago, the container is trusted without a check: the model call fails on it and is re-run.
    expect((responsesCalls(stack).at(-1)!.body as { tools: { container: string }[] }).tools[0]!.container).toBe(second.id);
  });

  it('asks whether the container is alive only when it has been idle for a while', async () => {
    stack = await startStack();
    const retrieves = () => stack!.openai.requests.filter((r) => r.method === 'GET' && r.template === '/containers/{container_id}').length;
    await ask(stack, 't1', 'look', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    await ask(stack, 't1', 'a quick follow-up');
    expect(retrieves()).toBe(0);

    // Half an hour later the container has expired: it is checked first, and replaced before the model call.
    const key = 'session:test:W:C:t1';
    const session = (await stack.crunch.store.get<{ lastUsedAt: string }>(key))!;
    await stack.crunch.store.set(key, { ...session, lastUsedAt: new Date(Date.now() - 30 * 60_000).toISOString() });
    stack.openai.expireAllContainers();
    const reply = await ask(stack, 't1', 'back again');
    expect(reply.kind).toBe('answer');
    expect(retrieves()).toBe(1);
    expect(stack.openai.requests.filter((r) => r.endpoint === '/responses').length).toBe(3);
    expect(stack.openai.containers.size).toBe(2);
  });

  it('recovers when the container expires between the check and the response', async () => {
    stack = await startStack();
    await ask(stack, 't1', 'look', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    stack.openai.script.push((request, fake) => {
      fake.expireContainer(request.containerId!);
      return { error: { status: 400, code: null, message: 'Container is expired.' } };
    });
    stack.openai.script.push({ text: 'Still here.' });
    const reply = await ask(stack, 't1', 'again');
    expect(reply).toMatchObject({ kind: 'answer', text: 'Still here.' });
    expect(stack.openai.containers.size).toBe(2);
  });

  it('carries on in a new conversation when the provider lost the old one, and says so', async () => {
    stack = await startStack();
    await ask(stack, 't1', 'look', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    const [lost] = [...stack.openai.conversations.keys()];
    stack.openai.conversations.clear();
    const reply = await ask(stack, 't1', 'and now?');
    expect(reply.kind).toBe('answer');
    expect(reply.notices).toEqual([expect.stringMatching(/could not find the earlier context/)]);
    const bodies = responsesCalls(stack).map((r) => r.body as { conversation: string; tools: { container: string }[] });
    expect(bodies.at(-1)!.conversation).not.toBe(lost);
    expect(bodies.at(-1)!.tools[0]!.container).toBe(bodies[0]!.tools[0]!.container); // same sandbox, same files
    const third = await ask(stack, 't1', 'and then?');
    expect(third.notices).toEqual([]);
  });

  it('drops a file the provider no longer has when it rebuilds the sandbox, and asks for it again', async () => {
    stack = await startStack();
    await ask(stack, 't1', 'look', [fileFrom('sales.xlsx', XLSX, 'F1'), fileFrom('notes.csv', Buffer.from('a,b\n1,2\n'), 'F2')]);
    const sales = [...stack.openai.files.values()].find((f) => f.filename === 'sales.xlsx')!;
    stack.openai.files.delete(sales.id);
    stack.openai.expireAllContainers();
    const reply = await ask(stack, 't1', 'plot it');
    expect(reply.kind).toBe('answer');
    expect(reply.notices).toEqual(['**sales.xlsx** is no longer available to me (it expired or was deleted); please share it again.']);
    const fresh = [...stack.openai.containers.values()].find((c) => c.status === 'running')!;
    expect(fresh.files.map((f) => f.filename)).toEqual(['notes.csv']);
    // Shared again in the thread, it is uploaded again.
    await ask(stack, 't1', 'here it is', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    expect([...stack.openai.files.values()].filter((f) => f.filename === 'sales.xlsx')).toHaveLength(1);
  });

  it('skips a file the API refuses with a line naming it, and answers with the rest', async () => {
    stack = await startStack();
    const big = Buffer.alloc(PART_BYTES + 10, 'a,b\n');
    // The platform declared a wrong size: the Uploads API refuses to complete it.
    const liar = { ...fileFrom('big.csv', big, 'B1'), sizeBytes: big.length + 99 };
    const reply = await ask(stack, 't1', 'count', [liar, fileFrom('ok.csv', Buffer.from('x,y\n1,2\n'), 'OK')]);
    expect(reply.kind).toBe('answer');
    expect(reply.notices).toEqual([expect.stringMatching(/^\*\*big\.csv\*\* skipped: the AI service refused this file \(400/)]);
    expect(onlyContainer(stack).files.map((f) => f.filename)).toEqual(['ok.csv']);
  });

  it('logs a skipped attachment with its cause, for operators, as well as telling the user', async () => {
    stack = await startStack();
    const refused: Attachment = {
      sourceId: 'R1',
      name: 'secret.csv',
      open: async () => {
        throw new AttachmentError('**secret.csv** skipped: its download link is not one I may follow (private address).');
      },
    };
    const reply = await ask(stack, 't1', 'read it', [refused]);
    expect(reply.notices).toEqual(['**secret.csv** skipped: its download link is not one I may follow (private address).']);
    expect(stack.logs()).toContainEqual(expect.objectContaining({ msg: 'attachment skipped', file: 'secret.csv', code: 'attachment_unavailable', level: 40 }));
  });

  it('uploads files that expire at OpenAI after 30 days', async () => {
    stack = await startStack();
    await ask(stack, 't1', 'look', [fileFrom('sales.xlsx', XLSX)]);
    const upload = stack.openai.requests.find((r) => r.method === 'POST' && r.endpoint === '/files')!;
    expect(JSON.stringify(upload.body)).toContain('2592000');
  });

  it('tells the user to reset when the thread outgrew the context window', async () => {
    stack = await startStack();
    stack.openai.script.push({ error: { status: 400, code: 'context_length_exceeded', param: 'input' } });
    const reply = await ask(stack, 't1', 'one more');
    expect(reply).toMatchObject({ kind: 'error', error: { code: 'engine_rejected' } });
    expect(reply.text).toMatch(/grown too long .* Say `reset`/);
    expect((responsesCalls(stack)[0]!.body as { truncation: string }).truncation).toBe('auto');
  });

  it('posts at most ten outputs, names the rest, and refuses one too large to attach', async () => {
    stack = await startStack({ CRUNCH_MAX_FILE_BYTES: '2000' });
    const files = Array.from({ length: 12 }, (_v, i) => ({ filename: `part_${String(i).padStart(2, '0')}.csv`, data: `row ${i}\n` }));
    stack.openai.script.push({
      code: 'split()',
      images: [{ filename: 'huge.png', data: Buffer.concat([PNG, Buffer.alloc(5000)]) }],
      files,
      text: 'Split into parts.',
    });
    const reply = await ask(stack, 't1', 'split the data');
    expect(reply.images).toEqual([]);
    // The listing gives sizes: the chart too large to attach takes none of the ten places.
    expect(reply.files.map((f) => f.name)).toEqual(files.slice(0, 10).map((f) => f.filename));
    expect(reply.notices).toEqual([
      '**huge.png** was created but is too large to attach here.',
      'The code also created 2 more files (part_10.csv, part_11.csv); ask for the ones you want, or for a zip of them.',
    ]);
  });

  it('retries a 429 after its Retry-After and a 500, then answers', async () => {
    stack = await startStack();
    stack.openai.script.push({ error: { status: 429, code: 'rate_limit_exceeded', retryAfterMs: 30 } });
    stack.openai.script.push({ error: { status: 500, code: 'server_error' } });
    stack.openai.script.push({ text: 'x = 1' });
    const reply = await ask(stack, 't1', 'solve 3x + 11 = 14');
    expect(reply).toMatchObject({ kind: 'answer', text: 'x = 1' });
    expect(responsesCalls(stack)).toHaveLength(3);
  });

  it('gives up after the configured attempts and says the service is unavailable', async () => {
    stack = await startStack({ CRUNCH_MAX_ATTEMPTS: '3' });
    for (let i = 0; i < 3; i++) stack.openai.script.push({ error: { status: 503, code: 'server_error' } });
    stack.openai.script.push({ text: 'never reached' });
    const reply = await ask(stack, 't1', 'hello');
    expect(reply).toMatchObject({ kind: 'error', error: { code: 'engine_unavailable' } });
    expect(reply.text).toMatch(/busy or unreachable/);
    expect(responsesCalls(stack)).toHaveLength(3);
  });

  it.each([
    [{ status: 401, code: 'invalid_api_key' }, 'engine_auth', /refused my credentials/],
    [{ code: 'insufficient_quota' }, 'engine_quota', /run out of quota/],
    [{ status: 400, code: 'invalid_prompt' }, 'engine_content_policy', /content policy/],
    [{ status: 400, code: 'invalid_value', param: 'input' }, 'engine_rejected', /rejected this request \(request /],
  ])('does not retry a permanent failure %o', async (error, code, message) => {
    stack = await startStack();
    stack.openai.script.push({ error });
    const reply = await ask(stack, 't1', 'hello');
    expect(reply).toMatchObject({ kind: 'error', error: { code } });
    expect(reply.text).toMatch(message);
    expect(responsesCalls(stack)).toHaveLength(1);
  });

  it('does not retry once part of the answer was streamed, and reports the failure', async () => {
    stack = await startStack();
    stack.openai.script.push({ text: 'Partial answer that will break', failMidStream: true });
    stack.openai.script.push({ text: 'not used' });
    const reply = await ask(stack, 't1', 'hello');
    expect(reply).toMatchObject({ kind: 'error', error: { code: 'engine_unavailable' } });
    expect(responsesCalls(stack)).toHaveLength(1);
  });

  it('cancels a response that passes the turn deadline', async () => {
    stack = await startStack({ CRUNCH_TURN_TIMEOUT_MS: '300' });
    stack.openai.script.push({ delayMs: 10_000, text: 'too late' });
    const reply = await ask(stack, 't1', 'a long job');
    expect(reply).toMatchObject({ kind: 'error', error: { code: 'deadline' } });
    await expect.poll(() => [...stack!.openai.responses.values()].some((r) => r.clientAborted)).toBe(true);
  });

  it('streams a large file through the Uploads API in parts, with or without a declared size', async () => {
    stack = await startStack();
    const big = Buffer.alloc(PART_BYTES + 123_456, 'a,b,c\n1,2,3\n');
    const reply = await ask(stack, 't1', 'count rows', [fileFrom('big.csv', big, 'B1'), fileFrom('big2.csv', big, 'B2', false)]);
    expect(reply.kind).toBe('answer');
    const uploads = [...stack.openai.uploads.values()];
    expect(uploads.map((u) => [u.filename, u.bytes, u.parts.length, u.status])).toEqual([
      ['big.csv', big.length, 2, 'completed'],
      ['big2.csv', big.length, 2, 'completed'],
    ]);
    for (const upload of uploads) expect(stack.openai.files.get(upload.fileId!)!.data.equals(big)).toBe(true);
  });

  it('works against Azure OpenAI v1 with the api-key header and the deployment as model', async () => {
    stack = await startStack((fake) => ({
      OPENAI_API_KEY: '',
      OPENAI_BASE_URL: '',
      AZURE_OPENAI_ENDPOINT: fake.url,
      AZURE_OPENAI_API_KEY: fake.apiKey,
      OPENAI_API_VERSION: 'preview',
      CRUNCH_MODEL: 'my-deployment',
    }));
    const reply = await ask(stack, 't1', 'hello azure');
    expect(reply.kind).toBe('answer');
    const calls = responsesCalls(stack);
    expect(calls[0]).toMatchObject({ flavor: 'azure', path: '/openai/v1/responses' });
    expect(calls[0]!.headers['api-key']).toBe(stack.openai.apiKey);
    expect(stack.openai.requests.every((r) => r.flavor === 'azure' && r.query.get('api-version') === 'preview')).toBe(true);
    expect((calls[0]!.body as { model: string }).model).toBe('my-deployment');
  });

  it('forgets the conversation on reset: container, conversation and files are deleted', async () => {
    stack = await startStack();
    await ask(stack, 't1', 'look', [fileFrom('sales.xlsx', XLSX, 'F1')]);
    const reply = await ask(stack, 't1', 'reset');
    expect(reply.kind).toBe('reset');
    const deletes = stack.openai.requests.filter((r) => r.method === 'DELETE').map((r) => r.template);
    expect(deletes.sort()).toEqual(['/containers/{container_id}', '/conversations/{conversation_id}', '/files/{file_id}']);
    await ask(stack, 't1', 'fresh');
    expect(stack.openai.conversations.size).toBeGreaterThanOrEqual(1);
    expect(stack.openai.containers.size).toBeGreaterThanOrEqual(1);
  });
});
