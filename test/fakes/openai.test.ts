import { createHash } from 'node:crypto';
import OpenAI, { APIUserAbortError, AuthenticationError, AzureOpenAI, BadRequestError, NotFoundError, RateLimitError, toFile } from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from './openai.js';
import type { FakeOpenAI } from './openai.js';
import { validateRequest, validateResponse, validateStreamEvent } from './openapi-validator.js';

// A 1x1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const CSV = Buffer.from('month,revenue\nJan,10\nFeb,12\nMar,31\n');
const MODEL = 'gpt-4.1';

let fake: FakeOpenAI;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  client = new OpenAI({ apiKey: fake.apiKey, baseURL: `${fake.url}/v1`, maxRetries: 0 });
});

afterEach(() => {
  // Every test leaves the fake spec-clean unless it cleared deliberate violations itself.
  expect(fake.violations).toEqual([]);
  fake.reset();
});

afterAll(async () => {
  await fake.close();
});

async function uploadCsv(): Promise<string> {
  const file = await client.files.create({ file: await toFile(CSV, 'sales.csv', { type: 'text/csv' }), purpose: 'user_data' });
  return file.id;
}

describe('files and uploads', () => {
  it('stores a file uploaded with files.create and serves it back', async () => {
    const file = await client.files.create({ file: await toFile(CSV, 'sales.csv', { type: 'text/csv' }), purpose: 'user_data' });
    expect(file).toMatchObject({ object: 'file', filename: 'sales.csv', bytes: CSV.length, purpose: 'user_data' });
    expect(file.id).toMatch(/^file-/);
    expect(fake.files.get(file.id)?.data.equals(CSV)).toBe(true);

    const content = Buffer.from(await (await client.files.content(file.id)).arrayBuffer());
    expect(content.equals(CSV)).toBe(true);
    expect(await client.files.retrieve(file.id)).toMatchObject({ id: file.id });
    expect(await client.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true });
    await expect(client.files.retrieve(file.id)).rejects.toMatchObject({ status: 404, message: expect.stringContaining('No such File object') });

    const recorded = fake.requests.find((r) => r.method === 'POST' && r.endpoint === '/files');
    expect(recorded?.headers['authorization']).toBe(`Bearer ${fake.apiKey}`);
    expect(recorded?.body).toMatchObject({ purpose: 'user_data' });
  });

  it('assembles an Upload from parts in part_ids order and rejects a byte-count mismatch', async () => {
    const first = CSV.subarray(0, 10);
    const second = CSV.subarray(10);
    const upload = await client.uploads.create({ bytes: CSV.length, filename: 'sales.csv', mime_type: 'text/csv', purpose: 'assistants' });
    expect(upload).toMatchObject({ object: 'upload', status: 'pending', bytes: CSV.length });
    // Parts arrive out of order; part_ids decides the order.
    const p2 = await client.uploads.parts.create(upload.id, { data: await toFile(second, 'part2') });
    const p1 = await client.uploads.parts.create(upload.id, { data: await toFile(first, 'part1') });
    const md5 = createHash('md5').update(CSV).digest('hex');
    const done = await client.uploads.complete(upload.id, { part_ids: [p1.id, p2.id], md5 });
    expect(done.status).toBe('completed');
    expect(done.file).toMatchObject({ object: 'file', filename: 'sales.csv', bytes: CSV.length, purpose: 'assistants' });
    expect(fake.files.get(done.file?.id ?? '')?.data.equals(CSV)).toBe(true);

    const short = await client.uploads.create({ bytes: CSV.length, filename: 'short.csv', mime_type: 'text/csv', purpose: 'assistants' });
    const only = await client.uploads.parts.create(short.id, { data: await toFile(first, 'p') });
    const err = await client.uploads.complete(short.id, { part_ids: [only.id] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).message).toMatch(/does not match/);
    expect((await client.uploads.cancel(short.id)).status).toBe('cancelled');
  });
});

describe('containers, conversations and a streamed code-interpreter turn', () => {
  it('runs a code step in the container, cites its files and serves their bytes', async () => {
    const fileId = await uploadCsv();
    const container = await client.containers.create({ name: 'crunch-test', file_ids: [fileId] });
    expect(container).toMatchObject({ object: 'container', status: 'running', name: 'crunch-test' });
    const userFiles = await client.containers.files.list(container.id);
    expect(userFiles.data).toHaveLength(1);
    expect(userFiles.data[0]).toMatchObject({ source: 'user', path: '/mnt/data/sales.csv', bytes: CSV.length });

    const conversation = await client.conversations.create({ metadata: { thread: 'T1' } });
    expect(conversation.id).toMatch(/^conv_/);

    const code = "import pandas as pd\ndf = pd.read_csv('/mnt/data/sales.csv')\ndf.plot().figure.savefig('/mnt/data/revenue.png')\n";
    const text = 'Revenue peaks in March. [Download the outliers](sandbox:/mnt/data/outliers.csv)';
    fake.script.push({ code, logs: 'saved', images: [{ filename: 'revenue.png', data: PNG }], files: [{ filename: 'outliers.csv', data: CSV }], text });

    const stream = await client.responses.create({
      model: MODEL,
      instructions: 'You analyse files.',
      conversation: conversation.id,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Plot revenue by month' }] }],
      tools: [{ type: 'code_interpreter', container: container.id }],
      include: ['code_interpreter_call.outputs'],
      stream: true,
    });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);

    const types = events.map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.code_interpreter_call.in_progress']);
    expect(types).toContain('response.code_interpreter_call_code.delta');
    const order: ResponseStreamEvent['type'][] = ['response.code_interpreter_call_code.done', 'response.code_interpreter_call.interpreting', 'response.code_interpreter_call.completed', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.annotation.added', 'response.output_text.done', 'response.content_part.done', 'response.completed'];
    const positions = order.map((t) => types.indexOf(t));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(types[types.length - 1]).toBe('response.completed');
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const codeDeltas = events.flatMap((e) => (e.type === 'response.code_interpreter_call_code.delta' ? [e.delta] : []));
    expect(codeDeltas.join('')).toBe(code);
    const textDeltas = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : []));
    expect(textDeltas.join('')).toBe(text);

    const completed = events.find((e) => e.type === 'response.completed');
    if (completed?.type !== 'response.completed') throw new Error('no response.completed');
    const [call, message] = completed.response.output;
    if (call?.type !== 'code_interpreter_call' || message?.type !== 'message') throw new Error('unexpected output');
    expect(call).toMatchObject({ container_id: container.id, code, status: 'completed' });
    expect(call.outputs).toEqual([
      { type: 'logs', logs: 'saved' },
      { type: 'image', url: `data:image/png;base64,${PNG.toString('base64')}` },
    ]);
    const part = message.content[0];
    if (part?.type !== 'output_text') throw new Error('no output_text');
    expect(part.text).toBe(text);
    const citations = part.annotations.flatMap((a) => (a.type === 'container_file_citation' ? [a] : []));
    expect(citations.map((a) => a.filename).sort()).toEqual(['outliers.csv', 'revenue.png']);
    const csvCitation = citations.find((a) => a.filename === 'outliers.csv');
    expect(text.slice(csvCitation?.start_index, csvCitation?.end_index)).toBe('sandbox:/mnt/data/outliers.csv');
    const added = events.flatMap((e) => (e.type === 'response.output_text.annotation.added' ? [e.annotation] : []));
    expect(added).toEqual(part.annotations);

    // The files are container files of that container, with source 'assistant', byte-equal.
    const listed = await client.containers.files.list(container.id);
    expect(listed.data.filter((f) => f.source === 'assistant').map((f) => f.path).sort()).toEqual(['/mnt/data/outliers.csv', '/mnt/data/revenue.png']);
    for (const [citation, bytes] of [
      [citations.find((a) => a.filename === 'revenue.png'), PNG],
      [csvCitation, CSV],
    ] as const) {
      expect(citation?.container_id).toBe(container.id);
      const meta = await client.containers.files.retrieve(citation?.file_id ?? '', { container_id: container.id });
      expect(meta).toMatchObject({ source: 'assistant', bytes: bytes.length });
      const downloaded = await client.containers.files.content.retrieve(citation?.file_id ?? '', { container_id: container.id });
      expect(Buffer.from(await downloaded.arrayBuffer()).equals(bytes)).toBe(true);
    }
    expect(fake.containers.get(container.id)?.files.map((f) => f.source)).toEqual(['user', 'assistant', 'assistant']);

    // The turn's items accumulated in the conversation.
    const items = await client.conversations.items.list(conversation.id, { order: 'asc' });
    expect(items.data.map((i) => i.type)).toEqual(['message', 'code_interpreter_call', 'message']);
    expect(fake.conversations.get(conversation.id)?.items).toHaveLength(3);
    expect(fake.responses.get(completed.response.id)?.conversationId).toBe(conversation.id);
  });

  it('chains plain-text turns with previous_response_id and an auto container', async () => {
    const fileId = await uploadCsv();
    fake.script.push({ code: 'print(1)', logs: '1\n', text: 'One.' });
    const first = await client.responses.create({ model: MODEL, input: 'Count', tools: [{ type: 'code_interpreter', container: { type: 'auto', file_ids: [fileId] } }] });
    expect(first.status).toBe('completed');
    expect(first.output_text).toBe('One.');
    const call = first.output[0];
    if (call?.type !== 'code_interpreter_call') throw new Error('no code call');
    expect(call.outputs).toBeNull(); // not included without include: ['code_interpreter_call.outputs']
    const auto = fake.containers.get(call.container_id);
    expect(auto?.auto).toBe(true);
    expect(auto?.fileIds).toEqual([fileId]);

    // Empty script: the fake echoes the input. The auto container is reused along the chain.
    const second = await client.responses.create({ model: MODEL, input: 'echo me', previous_response_id: first.id, tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] });
    expect(second.output_text).toBe('echo me');
    expect(fake.responses.get(second.id)?.containerId).toBe(call.container_id);
    const fetched = await client.responses.retrieve(first.id, { include: ['code_interpreter_call.outputs'] });
    const fetchedCall = fetched.output[0];
    expect(fetchedCall?.type === 'code_interpreter_call' && fetchedCall.outputs).toEqual([{ type: 'logs', logs: '1\n' }]);
  });

  it('adds container files from a file_id or a multipart upload', async () => {
    const fileId = await uploadCsv();
    const container = await client.containers.create({ name: 'adds' });
    const fromId = await client.containers.files.create(container.id, { file_id: fileId });
    const fromUpload = await client.containers.files.create(container.id, { file: await toFile(PNG, 'chart.png', { type: 'image/png' }) });
    expect(fromId).toMatchObject({ object: 'container.file', source: 'user', bytes: CSV.length, container_id: container.id });
    expect(fromUpload).toMatchObject({ source: 'user', bytes: PNG.length });
    expect(fromUpload.path).toMatch(/^\/mnt\/data\/[0-9a-f]{32}-chart\.png$/);
    expect(fake.containers.get(container.id)?.fileIds).toEqual([fileId]);
    const recorded = fake.requests.filter((r) => r.template === '/containers/{container_id}/files' && r.method === 'POST');
    expect(recorded.map((r) => String(r.headers['content-type']).split(';')[0])).toEqual(['application/json', 'multipart/form-data']);
  });

  it('lets a script function see the request and history', async () => {
    fake.script.push({ text: 'First answer.' });
    fake.script.push((request) => ({ text: `You said "${request.inputText}" after ${request.history.length} items; model ${request.model}.` }));
    const first = await client.responses.create({ model: MODEL, input: 'one' });
    const second = await client.responses.create({ model: MODEL, input: [{ role: 'user', content: 'two' }], previous_response_id: first.id });
    expect(second.output_text).toBe('You said "two" after 2 items; model gpt-4.1.');
    expect(second.previous_response_id).toBe(first.id);
  });

  it('cancels background responses but not synchronous ones, and hides store:false responses', async () => {
    fake.script.push({ delayMs: 5000, text: 'late' });
    const queued = await client.responses.create({ model: MODEL, input: 'hi', background: true });
    expect(queued.status).toBe('queued');
    expect((await client.responses.cancel(queued.id)).status).toBe('cancelled');
    expect((await client.responses.retrieve(queued.id)).status).toBe('cancelled');

    const sync = await client.responses.create({ model: MODEL, input: 'hi' });
    await expect(client.responses.cancel(sync.id)).rejects.toMatchObject({ status: 400, message: expect.stringContaining('Cannot cancel a synchronous response.') });

    const unstored = await client.responses.create({ model: MODEL, input: 'hi', store: false });
    await expect(client.responses.retrieve(unstored.id)).rejects.toMatchObject({ status: 404 });
    await expect(client.responses.create({ model: MODEL, input: 'hi', previous_response_id: unstored.id })).rejects.toMatchObject({ status: 400, code: 'previous_response_not_found' });
    expect(fake.responses.get(unstored.id)?.stored).toBe(false);
  });

  it('reports failMidStream as response.failed after partial output', async () => {
    fake.script.push({ text: 'one two three four five six', failMidStream: true });
    const stream = await client.responses.create({ model: MODEL, input: 'hi', stream: true });
    const events: ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.some((e) => e.type === 'response.output_text.delta')).toBe(true);
    const last = events[events.length - 1];
    expect(last?.type).toBe('response.failed');
    if (last?.type === 'response.failed') expect(last.response.error?.code).toBe('server_error');
  });

  it('honours a client abort during a slow response', async () => {
    fake.script.push({ delayMs: 5000, text: 'slow' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(client.responses.create({ model: MODEL, input: 'hi' }, { signal: controller.signal })).rejects.toBeInstanceOf(APIUserAbortError);
    await expect.poll(() => [...fake.responses.values()][0]?.clientAborted, { timeout: 1000, interval: 10 }).toBe(true);
  });
});

describe('errors the real API returns', () => {
  it('surfaces a scripted 429 as RateLimitError with retry-after', async () => {
    fake.script.push({ error: { status: 429, retryAfterSeconds: 1 } });
    const err = await client.responses.create({ model: MODEL, input: 'hi' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    const rate = err as RateLimitError;
    expect(rate.status).toBe(429);
    expect(rate.code).toBe('rate_limit_exceeded');
    expect(rate.headers.get('retry-after')).toBe('1');
    expect(rate.requestID).toMatch(/^req_/);
  });

  it('scripts other API errors with the real bodies', async () => {
    fake.script.push({ error: { code: 'insufficient_quota' } }, { error: { status: 500 } }, { error: { code: 'invalid_prompt' } });
    await expect(client.responses.create({ model: MODEL, input: 'a' })).rejects.toMatchObject({ status: 429, code: 'insufficient_quota', type: 'insufficient_quota' });
    await expect(client.responses.create({ model: MODEL, input: 'b' })).rejects.toMatchObject({ status: 500, type: 'server_error' });
    await expect(client.responses.create({ model: MODEL, input: 'c' })).rejects.toMatchObject({ status: 400, code: 'invalid_prompt', message: expect.stringContaining('usage policy') });
  });

  it('rejects a request whose container has expired the way the API does', async () => {
    const container = await client.containers.create({ name: 'short-lived' });
    fake.expireContainer(container.id);
    expect((await client.containers.retrieve(container.id)).status).toBe('expired');
    const err = await client.responses.create({ model: MODEL, input: 'hi', tools: [{ type: 'code_interpreter', container: container.id }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ status: 400, message: expect.stringContaining('Container is expired.'), type: 'invalid_request_error' });
  });

  it('rejects an unknown key with 401 invalid_api_key', async () => {
    const bad = new OpenAI({ apiKey: 'sk-wrong-key-123456', baseURL: `${fake.url}/v1`, maxRetries: 0 });
    const err = await bad.files.retrieve('file-x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' });
  });

  it('answers a spec-violating SDK request with 400 and records the violation', async () => {
    const err = await client.responses
      // Deliberately malformed: code_interpreter needs a container.
      .create({ model: MODEL, input: 'hi', tools: [{ type: 'code_interpreter' } as unknown as OpenAI.Responses.Tool] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err).toMatchObject({ status: 400, param: 'tools[0].container', code: 'missing_required_parameter' });
    expect(fake.violations).toEqual([expect.objectContaining({ direction: 'request', path: '/responses', param: 'tools[0].container', message: "Missing required parameter: 'tools[0].container'." })]);

    const wrongType = await client.responses.create({ model: MODEL, input: 'hi', store: 'yes' as unknown as boolean }).catch((e: unknown) => e);
    expect(wrongType).toMatchObject({ status: 400, param: 'store', code: 'invalid_type' });
    expect(fake.violations).toHaveLength(2);
    fake.violations.length = 0;
  });
});

describe('models', () => {
  it('serves the models it was given, and refuses the code interpreter for one without it', async () => {
    const picky = await startFakeOpenAI({ models: [{ id: MODEL }, { id: 'gpt-3.5-turbo', codeInterpreter: false }] });
    try {
      const sdk = new OpenAI({ apiKey: picky.apiKey, baseURL: `${picky.url}/v1`, maxRetries: 0 });
      expect(await sdk.models.retrieve(MODEL)).toMatchObject({ id: MODEL, object: 'model' });
      expect(await sdk.models.retrieve('gpt-9').catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
      const tools: OpenAI.Responses.Tool[] = [{ type: 'code_interpreter', container: { type: 'auto' } }];
      expect(await sdk.responses.create({ model: MODEL, input: 'Reply with OK.', tools, max_output_tokens: 16, store: false })).toMatchObject({ status: 'completed' });
      const refused = await sdk.responses.create({ model: 'gpt-3.5-turbo', input: 'hi', tools }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BadRequestError);
      expect(refused).toMatchObject({ status: 400, param: 'tools' });
      expect(await sdk.responses.create({ model: 'gpt-9', input: 'hi' }).catch((e: unknown) => e)).toMatchObject({ status: 400, code: 'model_not_found' });
      expect(picky.violations).toEqual([]);
    } finally {
      await picky.close();
    }
  });

  it('knows any model when it was given none', async () => {
    expect(await client.models.retrieve('my-deployment')).toMatchObject({ id: 'my-deployment', object: 'model' });
  });
});

describe('Azure v1 endpoint', () => {
  it('serves /openai/v1 with the key in the api-key header', async () => {
    const azure = new AzureOpenAI({ apiKey: fake.apiKey, baseURL: `${fake.url}/openai/v1`, apiVersion: 'preview', maxRetries: 0 });
    fake.script.push({ text: 'Hello from Azure.' });
    const response = await azure.responses.create({ model: 'my-deployment', input: 'hi' });
    expect(response.output_text).toBe('Hello from Azure.');
    const recorded = fake.requests[fake.requests.length - 1];
    expect(recorded).toMatchObject({ flavor: 'azure', path: '/openai/v1/responses' });
    expect(recorded?.headers['api-key']).toBe(fake.apiKey);
    expect(recorded?.headers['authorization']).toBeUndefined();

    const wrong = new AzureOpenAI({ apiKey: 'wrong', baseURL: `${fake.url}/openai/v1`, apiVersion: 'preview', maxRetries: 0 });
    await expect(wrong.responses.create({ model: 'my-deployment', input: 'hi' })).rejects.toBeInstanceOf(AuthenticationError);
  });
});

describe('openapi-validator', () => {
  it('rejects malformed response shapes and accepts valid ones', () => {
    expect(validateResponse('GET', '/files/{file_id}', 200, { id: 'file-1', object: 'file', bytes: 3, created_at: 1, filename: 'a.csv', purpose: 'user_data', status: 'processed' })).toEqual([]);
    expect(validateResponse('GET', '/files/{file_id}', 200, { id: 'file-1', object: 'file', bytes: '3', created_at: 1, filename: 'a.csv', purpose: 'user_data' }).sort()).toEqual([
      "Invalid type for 'bytes': expected an integer, but got a string instead.",
      "Missing required parameter: 'status'.",
    ]);
    expect(validateResponse('GET', '/responses/{response_id}', 200, { id: 'resp_1', object: 'response' }).length).toBeGreaterThan(5);
    expect(validateResponse('POST', '/responses', 404, { error: { message: 'x', type: 'invalid_request_error', param: null, code: null } })).toEqual([]);
    expect(validateResponse('POST', '/responses', 404, { message: 'x' })).toEqual(["Missing required parameter: 'error'."]);
  });

  it('validates stream events and multipart requests', async () => {
    expect(validateStreamEvent({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'x', logprobs: [], sequence_number: 3 })).toEqual([]);
    expect(validateStreamEvent({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'x', sequence_number: 3 })).toEqual(["Missing required parameter: 'logprobs'."]);
    expect(validateStreamEvent({ type: 'response.nonsense' })).toHaveLength(1);

    const form = new FormData();
    form.append('file', new File([CSV], 'a.csv'));
    const request = new Request('http://x/', { method: 'POST', body: form });
    const body = new Uint8Array(await request.arrayBuffer());
    const contentType = request.headers.get('content-type') ?? '';
    expect(await validateRequest('POST', '/files', contentType, body)).toEqual(["Missing required parameter: 'purpose'."]);
    form.append('purpose', 'bogus');
    expect(await validateRequest('POST', '/files', contentType, form)).toEqual([expect.stringMatching(/^Invalid value: 'bogus'\. Supported values are: /)]);
  });
});
