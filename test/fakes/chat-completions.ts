/**
 * A fake OpenAI-compatible Chat Completions server for the local engine's tests: a real HTTP server on
 * 127.0.0.1 that the real `openai` SDK talks to (`baseURL: fake.url + '/v1'`, or `fake.url + '/openai/v1'`
 * for Azure's v1 endpoint, where the key travels in the `api-key` header).
 *
 * Every request and every response body or stream chunk is validated against OpenAI's published spec
 * (test/spec/openai-openapi.subset.json); violations are kept in `fake.violations`, and a request that
 * breaks the spec, or the API's rule that each tool call is answered by a tool message, is refused with
 * the real API's 400. What the model does is scripted per request (`fake.script`): tool calls carrying
 * real Python, then a final text, streamed as server-sent events in word-sized deltas like the real API.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen, sendJson } from './http.js';
import { validateComponent, validateRequestDetailed, validateResponseDetailed } from './openapi-validator.js';

type JsonObject = { [key: string]: unknown };

export const FAKE_CHAT_API_KEY = 'sk-test-fake-chat-key-0001';

/** What the model does for one request. */
export interface ChatTurn {
  /** The assistant's text (streamed in word pieces). */
  text?: string;
  /** Python to run: one `python` tool call per entry, in this order. */
  python?: string | string[];
  /** Tool calls with any name and raw arguments (for models that misbehave). */
  calls?: { name: string; arguments: string }[];
  /** Fail with this HTTP error instead. */
  error?: { status: number; message?: string; code?: string | null; type?: string; retryAfterSeconds?: number };
  /** Wait this long before answering (the wait ends if the client goes away). */
  delayMs?: number;
  finishReason?: 'stop' | 'length' | 'content_filter';
}

/** What a script function sees of the request it answers. */
export interface ChatRequest {
  body: JsonObject;
  messages: JsonObject[];
  /** The content of the tool messages after the last assistant message with tool calls (what the code did). */
  toolResults: string[];
  /** Text of the last user message. */
  userText: string;
  toolChoice: unknown;
}

export type ChatStep = ChatTurn | ((request: ChatRequest) => ChatTurn);

export interface ChatViolation {
  direction: 'request' | 'response' | 'stream';
  message: string;
}

export interface FakeChat {
  readonly url: string;
  readonly apiKey: string;
  /** Consumed one per request; when empty, `fallback` answers. */
  readonly script: ChatStep[];
  fallback: ChatStep;
  readonly requests: ChatRequest[];
  readonly violations: ChatViolation[];
  close(): Promise<void>;
}

const words = (text: string): string[] => text.match(/\s*\S+|\s+$/g) ?? [];

function maskKey(key: string): string {
  return key.length <= 8 ? key : `${key.slice(0, 3)}${'*'.repeat(Math.max(3, key.length - 7))}${key.slice(-4)}`;
}

/** The API's own rules: tool calls are answered, one tool message each, before anything else is said; an
 * assistant message without tool calls has text. */
function toolSequenceProblem(messages: JsonObject[]): string | undefined {
  let open: string[] = [];
  for (const message of messages) {
    if (message['role'] === 'tool') {
      const id = message['tool_call_id'];
      if (!open.includes(id as string)) return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
      open = open.filter((x) => x !== id);
      continue;
    }
    if (open.length > 0) {
      return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${open.join(', ')}`;
    }
    const calls = message['role'] === 'assistant' ? message['tool_calls'] : undefined;
    if (Array.isArray(calls)) open = calls.map((c) => (c as JsonObject)['id'] as string);
    else if (message['role'] === 'assistant' && typeof message['content'] !== 'string') return "Invalid value for 'content': expected a string, got null.";
  }
  return undefined;
}

function describe(body: JsonObject): ChatRequest {
  const messages = (Array.isArray(body['messages']) ? body['messages'] : []) as JsonObject[];
  const lastCalls = messages.findLastIndex((m) => m['role'] === 'assistant' && Array.isArray(m['tool_calls']));
  const lastUserAt = messages.findLastIndex((m) => m['role'] === 'user');
  const lastUser = messages[lastUserAt];
  return {
    body,
    messages,
    toolResults: lastCalls < lastUserAt ? [] : messages.slice(lastCalls + 1).filter((m) => m['role'] === 'tool').map((m) => String(m['content'])),
    userText: typeof lastUser?.['content'] === 'string' ? lastUser['content'] : '',
    toolChoice: body['tool_choice'],
  };
}

export async function startFakeChat(options: { apiKey?: string } = {}): Promise<FakeChat> {
  const apiKey = options.apiKey ?? FAKE_CHAT_API_KEY;
  const script: ChatStep[] = [];
  const requests: ChatRequest[] = [];
  const violations: ChatViolation[] = [];
  const record = (direction: ChatViolation['direction'], messages: string[]) => {
    for (const message of messages) violations.push({ direction, message });
  };

  function fail(res: ServerResponse, status: number, error: { message: string; type: string; param: string | null; code: string | null }, headers: Record<string, string> = {}) {
    const body = { error };
    record('response', validateComponent('ErrorResponse', body));
    sendJson(res, status, body, { 'x-request-id': `req_${randomBytes(16).toString('hex')}`, ...headers });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer, url: URL): Promise<void> {
    const azure = url.pathname === '/openai/v1/chat/completions';
    if (req.method !== 'POST' || (url.pathname !== '/v1/chat/completions' && !azure)) {
      return fail(res, 404, { message: `Invalid URL (${req.method} ${url.pathname})`, type: 'invalid_request_error', param: null, code: null });
    }
    const key = azure ? req.headers['api-key'] : req.headers.authorization?.replace(/^Bearer /, '');
    if (key !== apiKey) {
      return fail(res, 401, { message: `Incorrect API key provided: ${maskKey(String(key ?? ''))}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' });
    }
    let body: JsonObject;
    try {
      body = JSON.parse(raw.toString('utf8')) as JsonObject;
    } catch {
      return fail(res, 400, { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', param: null, code: null });
    }
    const problems = await validateRequestDetailed('post', '/chat/completions', req.headers['content-type'], body);
    record('request', problems.map((e) => e.message));
    const sequence = toolSequenceProblem(describe(body).messages);
    if (problems.length > 0 || sequence) {
      return fail(res, 400, { message: problems[0]?.message ?? sequence!, type: 'invalid_request_error', param: problems[0]?.param ?? 'messages', code: problems[0]?.code ?? null });
    }
    const request = describe(body);
    requests.push(request);
    const step = script.shift() ?? fake.fallback;
    const turn = typeof step === 'function' ? step(request) : step;

    if (turn.delayMs) {
      const gone = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), turn.delayMs);
        res.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (gone) return;
    }
    if (turn.error) {
      const { status, retryAfterSeconds } = turn.error;
      const type = turn.error.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
      return fail(res, status, { message: turn.error.message ?? 'The fake model failed.', type, param: null, code: turn.error.code ?? null }, retryAfterSeconds ? { 'retry-after': String(retryAfterSeconds) } : {});
    }
    const calls = [...[turn.python ?? []].flat().map((code) => ({ name: 'python', arguments: JSON.stringify({ code }) })), ...(turn.calls ?? [])];
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = String(body['model']);
    const finish = calls.length > 0 ? 'tool_calls' : (turn.finishReason ?? 'stop');
    const toolCalls = calls.map((call, index) => ({ index, id: `call_${randomBytes(12).toString('hex')}`, type: 'function' as const, function: call }));

    if (body['stream'] !== true) {
      const completion = {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: turn.text ?? null, refusal: null, annotations: [], ...(toolCalls.length > 0 ? { tool_calls: toolCalls.map(({ index: _index, ...c }) => c) } : {}) },
            logprobs: null,
            finish_reason: finish,
          },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
      };
      record('response', validateResponseDetailed('post', '/chat/completions', 200, completion).map((e) => e.message));
      return sendJson(res, 200, completion);
    }

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (delta: JsonObject, finishReason: string | null = null) => {
      const chunk = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_fake', choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] };
      record('stream', validateComponent('CreateChatCompletionStreamResponse', chunk));
      if (!res.destroyed) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    };
    send({ role: 'assistant', content: '', refusal: null });
    for (const piece of words(turn.text ?? '')) send({ content: piece });
    for (const call of toolCalls) {
      send({ tool_calls: [{ index: call.index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] });
      for (let i = 0; i < call.function.arguments.length; i += 40) send({ tool_calls: [{ index: call.index, function: { arguments: call.function.arguments.slice(i, i + 40) } }] });
    }
    send({}, finish);
    const options = body['stream_options'];
    if (typeof options === 'object' && options !== null && (options as JsonObject)['include_usage'] === true) {
      // The real API's last chunk: no choices, the request's usage (here about 4 characters a token).
      const prompt = Math.ceil(JSON.stringify(body['messages'] ?? []).length / 4);
      const completion = Math.ceil(((turn.text ?? '').length + JSON.stringify(toolCalls).length) / 4);
      const chunk = {
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        system_fingerprint: 'fp_fake',
        choices: [],
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: 0 } },
      };
      record('stream', validateComponent('CreateChatCompletionStreamResponse', chunk));
      if (!res.destroyed) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    }
    res.end('data: [DONE]\n\n');
  }

  const server = await listen(handle);
  const fake: FakeChat = {
    url: server.url,
    apiKey,
    script,
    fallback: { text: 'Done.' },
    requests,
    violations,
    close: () => server.close(),
  };
  return fake;
}
