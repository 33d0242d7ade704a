/**
 * A fake OpenAI API server for tests: a real HTTP server on 127.0.0.1 that the real `openai`
 * SDK talks to (`baseURL: fake.url + '/v1'`, or `fake.url + '/openai/v1'` for the Azure v1
 * endpoint, where the key travels in the `api-key` header).
 *
 * It implements the Files, Uploads, Conversations, Containers and Responses endpoints Crunch
 * uses, with the real service's paths, shapes, status codes, error bodies and headers. Every
 * request it receives and every response / stream event it sends is validated against OpenAI's
 * published OpenAPI spec (test/spec/openai-openapi.subset.json); violations are recorded in
 * `fake.violations`, and a request that violates the spec is answered 400 like the real API.
 *
 * What the "model" does on each POST /responses is scripted by the test: `fake.script` is a
 * queue (see ScriptedTurn); when it is empty the fake answers with a plain-text echo of the input.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { listen, sendJson } from './http.js';
import type { RunningServer } from './http.js';
import { formToObject, parseMultipart, validateComponent, validateRequestDetailed, validateResponseDetailed, validateStreamEventDetailed } from './openapi-validator.js';
import type { SpecError } from './openapi-validator.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** The default key the fake accepts (both for OpenAI and Azure routes). */
export const FAKE_OPENAI_API_KEY = 'sk-test-fake-openai-key-0001';

export interface FakeOpenAIOptions {
  /** Keys accepted on /v1 (`Authorization: Bearer <key>`). Default `[FAKE_OPENAI_API_KEY]`. */
  apiKeys?: string[];
  /** Keys accepted on the Azure /openai/v1 endpoint (`api-key: <key>`). Default: `apiKeys`. */
  azureApiKeys?: string[];
  /** Answer spec-violating requests with 400 invalid_request_error, like the real API. Default true. */
  rejectInvalidRequests?: boolean;
  /** Clock in milliseconds (container idle expiry, timestamps). Default `Date.now`. */
  now?: () => number;
  /** Pause between stream events, in ms. Default 0. */
  streamIntervalMs?: number;
  /** Added to every request before it is handled: the round trip to a real API (benchmarks). Default 0. */
  latencyMs?: number;
  /** What the model does when the script queue is empty. Default: a plain-text echo of the input. */
  fallback?: ScriptStep;
  /**
   * The models the fake serves (GET /models/{model}, the `model` of POST /responses) and whether each takes the
   * code_interpreter tool (default yes). Default: any model exists and takes it.
   */
  models?: FakeModel[];
  /**
   * Check every request and response against the spec (default true). Benchmarks turn it off: they measure the
   * bot, and on a small machine the fake's validation would compete with it for the CPU.
   */
  validate?: boolean;
}

export interface FakeModel {
  id: string;
  /** false: POST /responses with the code_interpreter tool is refused (400), as for a model without it. */
  codeInterpreter?: boolean;
}

/** A file a scripted code step writes to /mnt/data. */
export interface ScriptFile {
  filename: string;
  data: Uint8Array | string;
  /**
   * Whether the message cites it with a container_file_citation annotation (default true). The
   * annotation spans `sandbox:/mnt/data/<filename>` when the scripted text contains that link
   * (as the real model writes it); otherwise it is a zero-width citation at index 0, which is how
   * the real API cites an image the code only displayed.
   */
  cite?: boolean;
  /** Listed and cited, but its content answers 404, like a file lost with its sandbox before it was fetched. */
  gone?: boolean;
}

/** An HTTP error to answer POST /responses with. Bodies default to the real API's wording. */
export interface ScriptedError {
  /** HTTP status; defaults from `code` (rate_limit_exceeded/insufficient_quota 429, invalid_api_key 401, invalid_prompt 400, server_error 500). */
  status?: number;
  /** error.code, e.g. 'rate_limit_exceeded', 'insufficient_quota', 'invalid_prompt', 'invalid_api_key', 'server_error'. */
  code?: string | null;
  /** error.type; defaults per status/code (429 rate limit: 'tokens'; insufficient_quota: 'insufficient_quota'; 5xx: 'server_error'; else 'invalid_request_error'). */
  type?: string;
  message?: string;
  param?: string | null;
  /** Sends `retry-after: <seconds>` (and, unless retryAfterMs is given, nothing finer). */
  retryAfterSeconds?: number;
  /** Sends `retry-after-ms` (and `retry-after` rounded up to whole seconds). */
  retryAfterMs?: number;
  headers?: Record<string, string>;
}

/** What the model "does" for one POST /responses. */
export interface ScriptedTurn {
  /** The assistant message text. */
  text?: string;
  /** Python the model runs with the code_interpreter tool, in the request's container. */
  code?: string;
  /** stdout/stderr of the code (a `logs` output). */
  logs?: string;
  /** Images the code displays/saves: container files (source 'assistant') plus `image` outputs. */
  images?: ScriptFile[];
  /** Other files the code saves: container files (source 'assistant'). */
  files?: ScriptFile[];
  /** Fail the HTTP request instead (429, 500, 401, 400 ...). */
  error?: ScriptedError;
  /** Think this long before answering (streams: after response.in_progress). Honours client abort. */
  delayMs?: number;
  /** Streams: send part of the output, then `response.failed`. Non-streamed: HTTP 500 server_error. */
  failMidStream?: boolean | { message?: string; code?: string };
}

/** What a script function sees about the request it answers. */
export interface ScriptRequest {
  body: JsonObject;
  model: string;
  instructions: string | null;
  /** Text of the user input_text parts of this request, joined with newlines. */
  inputText: string;
  /** This request's input, as message items. */
  input: JsonObject[];
  /** Earlier items (previous_response_id chain or conversation), oldest first. */
  history: JsonObject[];
  stream: boolean;
  /** The container the code_interpreter tool resolved to, if any. */
  containerId: string | undefined;
  include: string[];
}

export type ScriptFn = (request: ScriptRequest, fake: FakeOpenAI) => ScriptedTurn | Promise<ScriptedTurn>;
export type ScriptStep = ScriptedTurn | ScriptFn;

export interface RecordedOpenAIRequest {
  method: string;
  /** Full URL path, e.g. /v1/responses or /openai/v1/files. */
  path: string;
  /** Path below the API root, e.g. /responses/resp_123. */
  endpoint: string;
  /** The spec path template it matched, e.g. /responses/{response_id}. */
  template: string | undefined;
  flavor: 'openai' | 'azure';
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or the multipart fields as an object (files as "<file name N bytes>"), or undefined. */
  body: unknown;
  raw: Buffer;
}

export interface SpecViolation {
  direction: 'request' | 'response' | 'stream';
  method: string;
  path: string;
  message: string;
  param: string | null;
  code: string;
}

export interface FakeFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  expires_at?: number;
  data: Buffer;
  /** The upload it was assembled from, if any. */
  uploadId?: string;
}

export interface FakeUploadPart {
  id: string;
  object: 'upload.part';
  created_at: number;
  upload_id: string;
  data: Buffer;
}

export interface FakeUpload {
  id: string;
  object: 'upload';
  bytes: number;
  created_at: number;
  expires_at: number;
  filename: string;
  purpose: string;
  mime_type: string;
  status: 'pending' | 'completed' | 'cancelled' | 'expired';
  parts: FakeUploadPart[];
  fileId: string | undefined;
}

export interface FakeContainerFile {
  id: string;
  object: 'container.file';
  created_at: number;
  bytes: number;
  container_id: string;
  path: string;
  source: 'user' | 'assistant';
  filename: string;
  data: Buffer;
  /** The OpenAI file it was copied from (source 'user' via file_ids). */
  fileId?: string;
  /** Its content answers 404 (ScriptFile.gone). */
  gone?: boolean;
}

export interface FakeContainer {
  id: string;
  object: 'container';
  name: string;
  created_at: number;
  last_active_at: number;
  expires_after: { anchor: 'last_active_at'; minutes: number };
  memory_limit: string;
  /** 'expired' once expireContainer() was called or it sat idle past expires_after. */
  readonly status: 'running' | 'expired';
  /** Created for a `{type: 'auto'}` code_interpreter tool. */
  auto: boolean;
  /** OpenAI file ids it was created / auto-provisioned with. */
  fileIds: string[];
  files: FakeContainerFile[];
  expired: boolean;
}

export interface FakeConversation {
  id: string;
  object: 'conversation';
  created_at: number;
  metadata: JsonObject;
  items: JsonObject[];
}

export interface FakeResponseRecord {
  id: string;
  /** The request body of POST /responses. */
  request: JsonObject;
  /** The response object in its latest state (code_interpreter_call outputs always present). */
  response: JsonObject;
  stored: boolean;
  stream: boolean;
  background: boolean;
  /** The client went away before the response was finished. */
  clientAborted: boolean;
  containerId: string | undefined;
  conversationId: string | undefined;
  inputItems: JsonObject[];
  outputItems: JsonObject[];
  include: string[];
}

export interface FakeOpenAI {
  /** http://127.0.0.1:<port> (SDK baseURL: url + '/v1', Azure: url + '/openai/v1'). */
  readonly url: string;
  /** A key the fake accepts. */
  readonly apiKey: string;
  /** What the model does per POST /responses, consumed in order. */
  readonly script: ScriptStep[];
  readonly requests: RecordedOpenAIRequest[];
  readonly files: Map<string, FakeFile>;
  readonly uploads: Map<string, FakeUpload>;
  readonly containers: Map<string, FakeContainer>;
  readonly conversations: Map<string, FakeConversation>;
  readonly responses: Map<string, FakeResponseRecord>;
  readonly violations: SpecViolation[];
  expireContainer(id: string): void;
  expireAllContainers(): void;
  /** Clears all state, the script queue, recorded requests and violations. */
  reset(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const hex = (n: number): string => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const base62 = (n: number): string => Array.from(randomBytes(n), (b) => B62[b % 62]).join('');

const ids = {
  file: () => `file-${base62(22)}`,
  upload: () => `upload_${hex(24)}`,
  part: () => `part_${hex(24)}`,
  container: () => `cntr_${hex(48)}`,
  containerFile: () => `cfile_${hex(32)}`,
  conversation: () => `conv_${hex(48)}`,
  response: () => `resp_${hex(50)}`,
  message: () => `msg_${hex(50)}`,
  codeCall: () => `ci_${hex(50)}`,
  request: () => `req_${hex(32)}`,
};

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toBuffer(data: Uint8Array | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

const MIME: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  csv: 'text/csv',
  txt: 'text/plain',
  json: 'application/json',
  md: 'text/markdown',
  html: 'text/html',
  pdf: 'application/pdf',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  zip: 'application/zip',
};

function mimeOf(filename: string): string {
  const ext = filename.split('.').pop()?.toLowerCase() ?? '';
  return MIME[ext] ?? 'application/octet-stream';
}

/** Sleeps; resolves false if the signal aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Splits text into token-ish deltas (" word" pieces), like the real stream. */
function chunks(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

function maskKey(key: string): string {
  if (key.length <= 8) return key;
  return `${key.slice(0, 3)}${'*'.repeat(Math.max(3, key.length - 7))}${key.slice(-4)}`;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: { message: string; type: string; param: string | null; code: string | null },
    readonly headers: Record<string, string> = {},
  ) {
    super(error.message);
  }
}

const invalid = (status: number, message: string, param: string | null = null, code: string | null = null): ApiError =>
  new ApiError(status, { message, type: 'invalid_request_error', param, code });

const notFoundFile = (id: string): ApiError => invalid(404, `No such File object: ${id}`, 'id');
const notFoundContainer = (id: string): ApiError => invalid(404, `Container with id '${id}' not found.`);
const containerExpired = (): ApiError => invalid(400, 'Container is expired.');

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  template: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  form: FormData | undefined;
  contentType: string;
  flavor: 'openai' | 'azure';
  requestId: string;
  signal: AbortSignal;
}

type Handler = (ctx: Ctx) => Promise<void>;

interface Route {
  method: string;
  template: string;
  regex: RegExp;
  names: string[];
  handler: Handler;
}

function route(method: string, template: string, handler: Handler): Route {
  const names: string[] = [];
  const regex = new RegExp(`^${template.replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  })}$`);
  return { method, template, regex, names, handler };
}

// ---------------------------------------------------------------------------------------------
// The fake
// ---------------------------------------------------------------------------------------------

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const apiKeys = options.apiKeys ?? [FAKE_OPENAI_API_KEY];
  const azureApiKeys = options.azureApiKeys ?? apiKeys;
  const reject = options.rejectInvalidRequests ?? true;
  const clock = options.now ?? Date.now;
  const streamInterval = options.streamIntervalMs ?? 0;
  const latencyMs = options.latencyMs ?? 0;
  const validate = options.validate ?? true;
  const models = options.models;
  const nowSec = (): number => Math.floor(clock() / 1000);
  const lifetime = new AbortController();

  const script: ScriptStep[] = [];
  const requests: RecordedOpenAIRequest[] = [];
  const files = new Map<string, FakeFile>();
  const uploads = new Map<string, FakeUpload>();
  const containers = new Map<string, FakeContainer>();
  const conversations = new Map<string, FakeConversation>();
  const responses = new Map<string, FakeResponseRecord>();
  const violations: SpecViolation[] = [];

  const recordViolations = (direction: SpecViolation['direction'], method: string, path: string, errors: SpecError[]): void => {
    for (const e of errors) violations.push({ direction, method, path, message: e.message, param: e.param, code: e.code });
  };

  // --- state helpers ------------------------------------------------------------------------

  function newContainer(name: string, auto: boolean, minutes = 20, memoryLimit = '1g'): FakeContainer {
    const t = nowSec();
    const c: FakeContainer = {
      id: ids.container(),
      object: 'container',
      name,
      created_at: t,
      last_active_at: t,
      expires_after: { anchor: 'last_active_at', minutes },
      memory_limit: memoryLimit,
      auto,
      fileIds: [],
      files: [],
      expired: false,
      get status(): 'running' | 'expired' {
        return this.expired || nowSec() >= this.last_active_at + this.expires_after.minutes * 60 ? 'expired' : 'running';
      },
    };
    containers.set(c.id, c);
    return c;
  }

  function addContainerFile(c: FakeContainer, filename: string, data: Buffer, source: 'user' | 'assistant', path: string, fileId?: string): FakeContainerFile {
    const f: FakeContainerFile = {
      id: ids.containerFile(),
      object: 'container.file',
      created_at: nowSec(),
      bytes: data.length,
      container_id: c.id,
      path,
      source,
      filename,
      data,
      ...(fileId !== undefined ? { fileId } : {}),
    };
    c.files.push(f);
    return f;
  }

  function copyFilesIntoContainer(c: FakeContainer, fileIds: string[], param: string): void {
    for (const id of fileIds) {
      const file = files.get(id);
      if (!file) throw invalid(404, `No such File object: ${id}`, param);
      if (c.fileIds.includes(id)) continue;
      c.fileIds.push(id);
      addContainerFile(c, file.filename, file.data, 'user', `/mnt/data/${file.filename}`, id);
    }
  }

  function liveContainer(id: string): FakeContainer {
    const c = containers.get(id);
    if (!c) throw notFoundContainer(id);
    if (c.status === 'expired') throw containerExpired();
    return c;
  }

  // --- JSON shapes --------------------------------------------------------------------------

  const fileJson = (f: FakeFile): JsonObject => ({
    id: f.id,
    object: 'file',
    bytes: f.bytes,
    created_at: f.created_at,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
    ...(f.expires_at !== undefined ? { expires_at: f.expires_at } : {}),
  });
  const uploadJson = (u: FakeUpload): JsonObject => {
    const file = u.fileId !== undefined ? files.get(u.fileId) : undefined;
    return {
      id: u.id,
      object: 'upload',
      bytes: u.bytes,
      created_at: u.created_at,
      expires_at: u.expires_at,
      filename: u.filename,
      purpose: u.purpose,
      status: u.status,
      file: file ? fileJson(file) : null,
    };
  };
  const containerJson = (c: FakeContainer): JsonObject => ({
    id: c.id,
    object: 'container',
    name: c.name,
    created_at: c.created_at,
    status: c.status,
    last_active_at: c.last_active_at,
    expires_after: { ...c.expires_after },
    memory_limit: c.memory_limit,
  });
  const containerFileJson = (f: FakeContainerFile): JsonObject => ({
    id: f.id,
    object: 'container.file',
    created_at: f.created_at,
    bytes: f.bytes,
    container_id: f.container_id,
    path: f.path,
    source: f.source,
  });
  const conversationJson = (c: FakeConversation): JsonObject => ({ id: c.id, object: 'conversation', created_at: c.created_at, metadata: c.metadata });

  function listJson(items: JsonObject[], query: URLSearchParams, defaultOrder: 'asc' | 'desc', defaultLimit = 20): JsonObject {
    let sorted = [...items];
    if ((query.get('order') ?? defaultOrder) === 'desc') sorted.reverse();
    const after = query.get('after');
    if (after) {
      const i = sorted.findIndex((x) => x['id'] === after);
      sorted = i >= 0 ? sorted.slice(i + 1) : sorted;
    }
    const limit = Math.max(1, Math.min(100, Number(query.get('limit') ?? defaultLimit) || defaultLimit));
    const page = sorted.slice(0, limit);
    const first = page[0]?.['id'];
    const last = page[page.length - 1]?.['id'];
    return { object: 'list', data: page, first_id: typeof first === 'string' ? first : '', last_id: typeof last === 'string' ? last : '', has_more: sorted.length > limit };
  }

  // --- replies ------------------------------------------------------------------------------

  const baseHeaders = (ctx: Pick<Ctx, 'requestId' | 'flavor'>): Record<string, string> => ({
    'x-request-id': ctx.requestId,
    'openai-version': '2020-10-01',
    'openai-processing-ms': '1',
    ...(ctx.flavor === 'azure' ? { 'apim-request-id': randomUUID() } : {}),
  });

  function reply(ctx: Ctx, status: number, body: JsonObject, headers: Record<string, string> = {}): void {
    if (validate) recordViolations('response', ctx.method, ctx.template, validateResponseDetailed(ctx.method, ctx.template, status, body));
    if (ctx.res.destroyed) return;
    sendJson(ctx.res, status, body, { ...baseHeaders(ctx), ...headers });
  }

  function replyBytes(ctx: Ctx, data: Buffer, filename: string): void {
    if (ctx.res.destroyed) return;
    ctx.res.writeHead(200, {
      ...baseHeaders(ctx),
      'content-type': mimeOf(filename),
      'content-length': data.length,
      'content-disposition': `attachment; filename="${filename.replace(/[^\x20-\x7e]|"/g, '_')}"; filename*=UTF-8''${encodeURIComponent(filename)}`,
    });
    ctx.res.end(data);
  }

  function replyError(ctx: Pick<Ctx, 'res' | 'requestId' | 'flavor' | 'method'> & { template: string | undefined }, err: ApiError): void {
    const body = { error: { ...err.error } };
    const problems = validateComponent('ErrorResponse', body);
    recordViolations('response', ctx.method, ctx.template ?? '(unrouted)', problems.map((message) => ({ message, param: null, code: 'invalid_response', pointer: '' })));
    if (ctx.res.destroyed) return;
    sendJson(ctx.res, err.status, body, { ...baseHeaders(ctx), ...err.headers });
  }

  // --- Files --------------------------------------------------------------------------------

  async function createFile(ctx: Ctx): Promise<void> {
    const file = ctx.form?.get('file');
    const purpose = ctx.form?.get('purpose');
    if (!(file instanceof File)) throw invalid(400, "Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
    if (typeof purpose !== 'string') throw invalid(400, "Missing required parameter: 'purpose'.", 'purpose', 'missing_required_parameter');
    const data = Buffer.from(await file.arrayBuffer());
    const created = nowSec();
    const seconds = Number(ctx.form?.get('expires_after[seconds]') ?? NaN);
    const f: FakeFile = { id: ids.file(), object: 'file', bytes: data.length, created_at: created, filename: file.name, purpose, data, ...(Number.isFinite(seconds) ? { expires_at: created + seconds } : {}) };
    files.set(f.id, f);
    reply(ctx, 200, fileJson(f));
  }

  const fileOr404 = (id: string): FakeFile => {
    const f = files.get(id);
    if (!f) throw notFoundFile(id);
    return f;
  };

  // --- Uploads ------------------------------------------------------------------------------

  const uploadOr404 = (id: string): FakeUpload => {
    const u = uploads.get(id);
    if (!u) throw invalid(404, `No such Upload object: ${id}`, 'upload_id');
    if (u.status === 'pending' && nowSec() >= u.expires_at) u.status = 'expired';
    return u;
  };

  const requirePending = (u: FakeUpload): void => {
    if (u.status !== 'pending') throw invalid(400, `Upload ${u.id} is ${u.status}; it no longer accepts changes.`, null, 'upload_not_pending');
  };

  // --- Responses ----------------------------------------------------------------------------

  function normalizeInput(input: unknown): JsonObject[] {
    const textPart = (role: string, text: string): JsonObject => ({ type: role === 'assistant' ? 'output_text' : 'input_text', text, ...(role === 'assistant' ? { annotations: [] } : {}) });
    if (typeof input === 'string') return [{ id: ids.message(), type: 'message', status: 'completed', role: 'user', content: [textPart('user', input)] }];
    if (!Array.isArray(input)) return [];
    return input.filter(isObject).map((item) => {
      const role = typeof item['role'] === 'string' ? item['role'] : undefined;
      if (role !== undefined && (item['type'] === undefined || item['type'] === 'message')) {
        const content = typeof item['content'] === 'string' ? [textPart(role, item['content'])] : (item['content'] ?? []);
        return { id: typeof item['id'] === 'string' ? item['id'] : ids.message(), type: 'message', status: 'completed', role, content };
      }
      return { ...item };
    });
  }

  const inputTextOf = (items: JsonObject[]): string =>
    items
      .filter((i) => i['type'] === 'message' && i['role'] === 'user' && Array.isArray(i['content']))
      .flatMap((i) => (i['content'] as Json[]).filter(isObject).filter((p) => p['type'] === 'input_text' && typeof p['text'] === 'string').map((p) => p['text'] as string))
      .join('\n');

  function chainHistory(rec: FakeResponseRecord | undefined): JsonObject[] {
    const out: JsonObject[][] = [];
    for (let r = rec, guard = 0; r && guard < 1000; guard++) {
      out.unshift([...r.inputItems, ...r.outputItems]);
      const prev = r.request['previous_response_id'];
      r = typeof prev === 'string' ? responses.get(prev) : undefined;
    }
    return out.flat();
  }

  /** The container a chain/conversation last used for an auto code_interpreter tool. */
  function priorAutoContainer(prev: FakeResponseRecord | undefined, conversationId: string | undefined): string | undefined {
    const candidates = conversationId !== undefined ? [...responses.values()].filter((r) => r.conversationId === conversationId).reverse() : [];
    for (let r = prev, guard = 0; r && guard < 1000; guard++) {
      candidates.push(r);
      const p = r.request['previous_response_id'];
      r = typeof p === 'string' ? responses.get(p) : undefined;
    }
    for (const r of candidates) {
      if (r.containerId !== undefined && containers.get(r.containerId)?.auto) return r.containerId;
    }
    return undefined;
  }

  function usageFor(inputChars: number, outputChars: number): JsonObject {
    const input = Math.max(1, Math.ceil(inputChars / 4)) + 20;
    const output = Math.max(1, Math.ceil(outputChars / 4));
    return { input_tokens: input, input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 }, output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + output };
  }

  /** The response object as the client sees it (outputs only when `include` asks). */
  function renderResponse(rec: FakeResponseRecord, include: string[]): JsonObject {
    const withOutputs = include.includes('code_interpreter_call.outputs');
    const output = (rec.response['output'] as JsonObject[]).map((item) => (item['type'] === 'code_interpreter_call' && !withOutputs ? { ...item, outputs: null } : item));
    return { ...rec.response, output };
  }

  function errorForTurn(e: ScriptedError, model: string): ApiError {
    const code = e.code === undefined ? (e.status === 429 ? 'rate_limit_exceeded' : e.status === 401 ? 'invalid_api_key' : null) : e.code;
    const status = e.status ?? (code === 'rate_limit_exceeded' || code === 'insufficient_quota' ? 429 : code === 'invalid_api_key' ? 401 : code === 'server_error' ? 500 : 400);
    const retryS = e.retryAfterMs !== undefined ? Math.ceil(e.retryAfterMs / 1000) : e.retryAfterSeconds;
    let type = e.type;
    let message = e.message;
    if (code === 'rate_limit_exceeded') {
      type ??= 'tokens';
      message ??= `Rate limit reached for ${model} in organization org-fake on tokens per min (TPM): Limit 30000, Used 30000, Requested 1200. Please try again in ${retryS ?? 2}s. Visit https://platform.openai.com/account/rate-limits to learn more.`;
    } else if (code === 'insufficient_quota') {
      type ??= 'insufficient_quota';
      message ??= 'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.';
    } else if (code === 'invalid_api_key') {
      message ??= `Incorrect API key provided: ${maskKey(apiKeys[0] ?? 'sk-unknown')}. You can find your API key at https://platform.openai.com/account/api-keys.`;
    } else if (code === 'invalid_prompt') {
      message ??= 'Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting';
    } else if (status >= 500) {
      type ??= 'server_error';
      message ??= 'The server had an error while processing your request. Sorry about that!';
    }
    const headers: Record<string, string> = { ...(e.headers ?? {}) };
    if (status === 429) {
      Object.assign(headers, {
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-reset-requests': '120ms',
        'x-ratelimit-limit-tokens': '30000',
        'x-ratelimit-remaining-tokens': '0',
        'x-ratelimit-reset-tokens': `${retryS ?? 2}s`,
      });
    }
    if (retryS !== undefined) headers['retry-after'] = String(retryS);
    if (e.retryAfterMs !== undefined) headers['retry-after-ms'] = String(e.retryAfterMs);
    return new ApiError(status, { message: message ?? 'The request was rejected.', type: type ?? 'invalid_request_error', param: e.param ?? null, code }, headers);
  }

  async function createResponse(ctx: Ctx): Promise<void> {
    const body = ctx.body as JsonObject;
    const model = typeof body['model'] === 'string' ? body['model'] : 'gpt-4.1';
    const stream = body['stream'] === true;
    const background = body['background'] === true;
    const store = body['store'] !== false;
    const include = Array.isArray(body['include']) ? body['include'].filter((x): x is string => typeof x === 'string') : [];
    const instructions = typeof body['instructions'] === 'string' ? body['instructions'] : null;
    const obfuscate = !(isObject(body['stream_options']) && body['stream_options']['include_obfuscation'] === false);

    // Checks the real API makes beyond the schema (wording from observed 400s).
    if (body['model'] === undefined) throw invalid(400, "Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    if (body['input'] === undefined && body['prompt'] === undefined) throw invalid(400, "Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
    if ((body['input'] === '' || (Array.isArray(body['input']) && body['input'].length === 0)) && body['previous_response_id'] === undefined && body['conversation'] === undefined && body['prompt'] === undefined) {
      throw invalid(400, 'One of "input" or "previous_response_id" or \'prompt\' or \'conversation\' must be provided.', null, 'missing_required_parameter');
    }
    const known = models?.find((m) => m.id === model);
    if (models !== undefined && known === undefined) throw invalid(400, `The requested model '${model}' does not exist.`, 'model', 'model_not_found');
    const requestedTools = Array.isArray(body['tools']) ? body['tools'] : [];
    if (known?.codeInterpreter === false && requestedTools.some((t) => isObject(t) && t['type'] === 'code_interpreter')) {
      throw invalid(400, `Hosted tool 'code_interpreter' is not supported with ${model}.`, 'tools');
    }

    // State the request refers to.
    const convParam = body['conversation'];
    const conversationId = typeof convParam === 'string' ? convParam : isObject(convParam) && typeof convParam['id'] === 'string' ? convParam['id'] : undefined;
    const previousId = typeof body['previous_response_id'] === 'string' ? body['previous_response_id'] : undefined;
    if (conversationId !== undefined && previousId !== undefined) {
      throw invalid(400, "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or 'conversation'.", null, 'mutually_exclusive_parameters');
    }
    const conversation = conversationId !== undefined ? conversations.get(conversationId) : undefined;
    if (conversationId !== undefined && !conversation) throw invalid(404, `Conversation with id '${conversationId}' not found.`);
    const prev = previousId !== undefined ? responses.get(previousId) : undefined;
    if (previousId !== undefined && (!prev?.stored)) {
      throw invalid(400, `Previous response with id '${previousId}' not found.`, 'previous_response_id', 'previous_response_not_found');
    }

    // The code_interpreter tool's container.
    const tools = Array.isArray(body['tools']) ? body['tools'].filter(isObject) : [];
    const ciTool = tools.find((t) => t['type'] === 'code_interpreter');
    let container: FakeContainer | undefined;
    if (ciTool) {
      const spec = ciTool['container'];
      if (typeof spec === 'string') container = liveContainer(spec);
      else if (isObject(spec)) {
        const fileIds = Array.isArray(spec['file_ids']) ? spec['file_ids'].filter((x): x is string => typeof x === 'string') : [];
        for (const id of fileIds) if (!files.has(id)) throw invalid(404, `No such File object: ${id}`, 'tools[0].container.file_ids');
        const prior = priorAutoContainer(prev, conversationId);
        container = prior !== undefined ? liveContainer(prior) : newContainer('Container for a response', true, 20, typeof spec['memory_limit'] === 'string' ? spec['memory_limit'] : '1g');
        copyFilesIntoContainer(container, fileIds, 'tools[0].container.file_ids');
      }
    }

    const inputItems = normalizeInput(body['input']);
    const history = conversation ? conversation.items.map((i) => ({ ...i })) : chainHistory(prev);
    const scriptRequest: ScriptRequest = { body, model, instructions, inputText: inputTextOf(inputItems), input: inputItems, history, stream, containerId: container?.id, include };

    // What the model does.
    const step = script.shift() ?? options.fallback;
    let turn: ScriptedTurn;
    try {
      turn = step === undefined ? { text: scriptRequest.inputText } : typeof step === 'function' ? await step(scriptRequest, fake) : step;
    } catch (err) {
      throw new ApiError(500, { message: `fake-openai: script function threw: ${String(err)}`, type: 'fake_script_error', param: null, code: null }, { 'x-should-retry': 'false' });
    }
    if (turn.error) throw errorForTurn(turn.error, model);
    if ((turn.code !== undefined || turn.images || turn.files) && !container) {
      throw new ApiError(500, { message: 'fake-openai: the scripted turn runs code but the request has no code_interpreter tool', type: 'fake_script_error', param: null, code: null }, { 'x-should-retry': 'false' });
    }

    const rec: FakeResponseRecord = {
      id: ids.response(),
      request: body,
      response: {},
      stored: store,
      stream,
      background,
      clientAborted: false,
      containerId: container?.id,
      conversationId,
      inputItems,
      outputItems: [],
      include,
    };
    rec.response = {
      id: rec.id,
      object: 'response',
      created_at: nowSec(),
      status: background ? 'queued' : 'in_progress',
      background,
      completed_at: null,
      error: null,
      incomplete_details: null,
      instructions,
      max_output_tokens: typeof body['max_output_tokens'] === 'number' ? body['max_output_tokens'] : null,
      max_tool_calls: typeof body['max_tool_calls'] === 'number' ? body['max_tool_calls'] : null,
      model,
      output: [],
      parallel_tool_calls: body['parallel_tool_calls'] !== false,
      previous_response_id: previousId ?? null,
      reasoning: { effort: null, summary: null },
      service_tier: 'default',
      store,
      temperature: typeof body['temperature'] === 'number' ? body['temperature'] : 1,
      text: { format: { type: 'text' }, verbosity: 'medium' },
      tool_choice: (body['tool_choice'] as Json | undefined) ?? 'auto',
      tools: tools as Json[],
      top_p: typeof body['top_p'] === 'number' ? body['top_p'] : 1,
      truncation: 'disabled',
      metadata: isObject(body['metadata']) ? body['metadata'] : {},
      conversation: conversationId !== undefined ? { id: conversationId } : null,
    };
    responses.set(rec.id, rec);

    // Build the output the turn produces.
    const plan = planOutput(turn, container);
    const inputChars = (instructions ?? '').length + JSON.stringify(body['input'] ?? '').length;
    const finish = (status: 'completed' | 'failed' | 'cancelled', error: JsonObject | null = null): void => {
      rec.outputItems = plan.items;
      rec.response = { ...rec.response, status, completed_at: status === 'completed' ? nowSec() : null, error, output: plan.items, usage: usageFor(inputChars, plan.outputChars) };
      if (status === 'completed' && conversation) conversation.items.push(...inputItems, ...plan.items);
    };

    if (background && !stream) {
      reply(ctx, 200, renderResponse(rec, include));
      void (async () => {
        await sleep(turn.delayMs ?? 0, lifetime.signal);
        if (rec.response['status'] === 'cancelled') return;
        if (turn.failMidStream) finish('failed', { code: 'server_error', message: 'An error occurred while processing your request.' });
        else finish('completed');
      })();
      return;
    }

    if (!stream) {
      if (!(await sleep(turn.delayMs ?? 0, ctx.signal))) {
        rec.clientAborted = true;
        rec.response = { ...rec.response, status: 'incomplete' };
        return;
      }
      if (turn.failMidStream) {
        finish('failed', { code: 'server_error', message: 'An error occurred while processing your request.' });
        throw new ApiError(500, {
          message: `The server had an error processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if you keep seeing this error. (Please include the request ID ${ctx.requestId} in your email.)`,
          type: 'server_error',
          param: null,
          code: null,
        });
      }
      finish('completed');
      reply(ctx, 200, renderResponse(rec, include));
      return;
    }

    await streamResponse(ctx, rec, turn, plan, include, obfuscate, finish);
  }

  interface Plan {
    items: JsonObject[];
    outputChars: number;
    code?: { item: JsonObject; code: string };
    message?: { item: JsonObject; text: string; annotations: JsonObject[] };
  }

  function planOutput(turn: ScriptedTurn, container: FakeContainer | undefined): Plan {
    const items: JsonObject[] = [];
    const plan: Plan = { items, outputChars: 0 };
    const produced: Array<{ file: FakeContainerFile; cite: boolean }> = [];
    if (container && (turn.code !== undefined || turn.images || turn.files)) {
      container.last_active_at = nowSec();
      const code = turn.code ?? '';
      const outputs: JsonObject[] = [];
      if (turn.logs !== undefined) outputs.push({ type: 'logs', logs: turn.logs });
      for (const img of turn.images ?? []) {
        const data = toBuffer(img.data);
        produced.push({ file: addContainerFile(container, img.filename, data, 'assistant', `/mnt/data/${img.filename}`), cite: img.cite !== false });
        outputs.push({ type: 'image', url: `data:${mimeOf(img.filename)};base64,${data.toString('base64')}` });
      }
      for (const f of turn.files ?? []) {
        const file = addContainerFile(container, f.filename, toBuffer(f.data), 'assistant', `/mnt/data/${f.filename}`);
        if (f.gone === true) file.gone = true;
        produced.push({ file, cite: f.cite !== false });
      }
      const item: JsonObject = { id: ids.codeCall(), type: 'code_interpreter_call', status: 'completed', code, container_id: container.id, outputs };
      items.push(item);
      plan.code = { item, code };
      plan.outputChars += code.length;
    }
    // A message follows when the turn has text or cites a file it produced.
    if (turn.text !== undefined || produced.some((p) => p.cite)) {
      const text = turn.text ?? '';
      const annotations: JsonObject[] = [];
      for (const { file, cite } of produced) {
        if (!cite) continue;
        const link = `sandbox:${file.path}`;
        const at = text.indexOf(link);
        const [start, end] = at >= 0 ? [at, at + link.length] : [0, 0];
        annotations.push({ type: 'container_file_citation', container_id: file.container_id, file_id: file.id, filename: file.filename, start_index: start, end_index: end });
      }
      annotations.sort((a, b) => (a['end_index'] as number) - (b['end_index'] as number));
      const item: JsonObject = {
        id: ids.message(),
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', annotations, logprobs: [], text }],
      };
      items.push(item);
      plan.message = { item, text, annotations };
      plan.outputChars += text.length;
    }
    return plan;
  }

  async function streamResponse(
    ctx: Ctx,
    rec: FakeResponseRecord,
    turn: ScriptedTurn,
    plan: Plan,
    include: string[],
    obfuscate: boolean,
    finish: (status: 'completed' | 'failed' | 'cancelled', error?: JsonObject | null) => void,
  ): Promise<void> {
    const { res, signal } = ctx;
    res.writeHead(200, { ...baseHeaders(ctx), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let seq = 0;
    const withOutputs = include.includes('code_interpreter_call.outputs');
    const emit = async (event: JsonObject): Promise<boolean> => {
      const full: JsonObject = { type: event['type'] ?? null, ...event, sequence_number: seq++ };
      if (validate) recordViolations('stream', ctx.method, ctx.template, validateStreamEventDetailed(full));
      if (signal.aborted || res.destroyed) return false;
      res.write(`event: ${String(full['type'])}\ndata: ${JSON.stringify(full)}\n\n`);
      return sleep(streamInterval, signal);
    };
    const obf = (delta: string): JsonObject => (obfuscate ? { obfuscation: base62(Math.max(1, 16 - delta.length)) } : {});
    const aborted = (): void => {
      rec.clientAborted = true;
      if (rec.response['status'] === 'in_progress') rec.response = { ...rec.response, status: 'incomplete' };
    };

    if (!(await emit({ type: 'response.created', response: renderResponse(rec, include) }))) return aborted();
    if (!(await emit({ type: 'response.in_progress', response: renderResponse(rec, include) }))) return aborted();
    if (!(await sleep(turn.delayMs ?? 0, signal))) return aborted();

    const failAt = turn.failMidStream ? (typeof turn.failMidStream === 'object' ? turn.failMidStream : {}) : undefined;
    const partial: JsonObject[] = [];
    let outputIndex = 0;

    if (plan.code) {
      const { item, code } = plan.code;
      const itemId = item['id'] as string;
      const index = outputIndex++;
      if (!(await emit({ type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', code: '', outputs: withOutputs ? [] : null } }))) return aborted();
      if (!(await emit({ type: 'response.code_interpreter_call.in_progress', output_index: index, item_id: itemId }))) return aborted();
      for (const delta of chunks(code)) {
        if (!(await emit({ type: 'response.code_interpreter_call_code.delta', output_index: index, item_id: itemId, delta, ...obf(delta) }))) return aborted();
      }
      if (!(await emit({ type: 'response.code_interpreter_call_code.done', output_index: index, item_id: itemId, code }))) return aborted();
      if (!(await emit({ type: 'response.code_interpreter_call.interpreting', output_index: index, item_id: itemId }))) return aborted();
      if (!(await emit({ type: 'response.code_interpreter_call.completed', output_index: index, item_id: itemId }))) return aborted();
      const done = withOutputs ? item : { ...item, outputs: null };
      if (!(await emit({ type: 'response.output_item.done', output_index: index, item: done }))) return aborted();
      partial.push(item);
    }

    if (plan.message) {
      const { item, text, annotations } = plan.message;
      const itemId = item['id'] as string;
      const index = outputIndex++;
      if (!(await emit({ type: 'response.output_item.added', output_index: index, item: { ...item, status: 'in_progress', content: [] } }))) return aborted();
      if (!(await emit({ type: 'response.content_part.added', item_id: itemId, output_index: index, content_index: 0, part: { type: 'output_text', annotations: [], logprobs: [], text: '' } }))) return aborted();
      const deltas = chunks(text);
      const stopAfter = failAt ? Math.floor(deltas.length / 2) : deltas.length;
      let sent = 0;
      let annotationIndex = 0;
      const flushAnnotations = async (upTo: number): Promise<boolean> => {
        while (annotationIndex < annotations.length && ((annotations[annotationIndex]?.['end_index'] as number) ?? 0) <= upTo) {
          const annotation = annotations[annotationIndex] ?? null;
          if (!(await emit({ type: 'response.output_text.annotation.added', item_id: itemId, output_index: index, content_index: 0, annotation_index: annotationIndex, annotation }))) return false;
          annotationIndex++;
        }
        return true;
      };
      for (const [i, delta] of deltas.entries()) {
        if (i >= stopAfter) break;
        if (!(await emit({ type: 'response.output_text.delta', item_id: itemId, output_index: index, content_index: 0, delta, logprobs: [], ...obf(delta) }))) return aborted();
        sent += delta.length;
        if (!(await flushAnnotations(sent))) return aborted();
      }
      if (!failAt) {
        if (!(await flushAnnotations(Number.POSITIVE_INFINITY))) return aborted();
        if (!(await emit({ type: 'response.output_text.done', item_id: itemId, output_index: index, content_index: 0, text, logprobs: [] }))) return aborted();
        const part = (item['content'] as JsonObject[])[0] ?? null;
        if (!(await emit({ type: 'response.content_part.done', item_id: itemId, output_index: index, content_index: 0, part }))) return aborted();
        if (!(await emit({ type: 'response.output_item.done', output_index: index, item }))) return aborted();
        partial.push(item);
      } else {
        partial.push({ ...item, status: 'incomplete', content: [{ type: 'output_text', annotations: [], logprobs: [], text: deltas.slice(0, stopAfter).join('') }] });
      }
    }

    if (failAt) {
      const error = {
        code: failAt.code ?? 'server_error',
        message: failAt.message ?? `An error occurred while processing your request. You can retry your request, or contact us through our help center at help.openai.com if the error persists. Please include the request ID ${ctx.requestId} in your message.`,
      };
      finish('failed', error);
      rec.outputItems = partial;
      rec.response = { ...rec.response, output: partial };
      await emit({ type: 'response.failed', response: renderResponse(rec, include) });
      if (!res.destroyed) res.end();
      return;
    }

    finish('completed');
    await emit({ type: 'response.completed', response: renderResponse(rec, include) });
    if (!res.destroyed) res.end();
  }

  // --- Route table --------------------------------------------------------------------------

  const routes: Route[] = [
    route('POST', '/files', createFile),
    route('GET', '/files/{file_id}', async (ctx) => reply(ctx, 200, fileJson(fileOr404(ctx.params['file_id'] ?? '')))),
    route('DELETE', '/files/{file_id}', async (ctx) => {
      const f = fileOr404(ctx.params['file_id'] ?? '');
      files.delete(f.id);
      reply(ctx, 200, { id: f.id, object: 'file', deleted: true });
    }),
    route('GET', '/files/{file_id}/content', async (ctx) => {
      const f = fileOr404(ctx.params['file_id'] ?? '');
      if (f.purpose === 'assistants') throw invalid(400, 'Not allowed to download files of purpose: assistants', null);
      replyBytes(ctx, f.data, f.filename);
    }),

    route('POST', '/uploads', async (ctx) => {
      const b = ctx.body as JsonObject;
      const created = nowSec();
      const u: FakeUpload = {
        id: ids.upload(),
        object: 'upload',
        bytes: Number(b['bytes']),
        created_at: created,
        expires_at: created + 3600,
        filename: String(b['filename']),
        purpose: String(b['purpose']),
        mime_type: String(b['mime_type']),
        status: 'pending',
        parts: [],
        fileId: undefined,
      };
      uploads.set(u.id, u);
      reply(ctx, 200, uploadJson(u));
    }),
    route('POST', '/uploads/{upload_id}/parts', async (ctx) => {
      const u = uploadOr404(ctx.params['upload_id'] ?? '');
      requirePending(u);
      const data = ctx.form?.get('data');
      if (!(data instanceof File)) throw invalid(400, "Missing required parameter: 'data'.", 'data', 'missing_required_parameter');
      if (data.size > 64 * 1024 * 1024) throw invalid(400, 'Each part can be at most 64 MB.', 'data');
      const part: FakeUploadPart = { id: ids.part(), object: 'upload.part', created_at: nowSec(), upload_id: u.id, data: Buffer.from(await data.arrayBuffer()) };
      u.parts.push(part);
      reply(ctx, 200, { id: part.id, object: 'upload.part', created_at: part.created_at, upload_id: u.id });
    }),
    route('POST', '/uploads/{upload_id}/complete', async (ctx) => {
      const u = uploadOr404(ctx.params['upload_id'] ?? '');
      requirePending(u);
      const b = ctx.body as JsonObject;
      const partIds = Array.isArray(b['part_ids']) ? b['part_ids'].map(String) : [];
      const chunksInOrder: Buffer[] = [];
      for (const [i, pid] of partIds.entries()) {
        const part = u.parts.find((p) => p.id === pid);
        if (!part) throw invalid(400, `Invalid part ID: '${pid}' is not a part of upload ${u.id}.`, `part_ids[${i}]`);
        chunksInOrder.push(part.data);
      }
      const data = Buffer.concat(chunksInOrder);
      if (data.length !== u.bytes) {
        throw invalid(400, `The number of bytes uploaded (${data.length}) does not match the number of bytes specified when the Upload was created (${u.bytes}).`, 'part_ids');
      }
      if (typeof b['md5'] === 'string' && b['md5'] !== '' && createHash('md5').update(data).digest('hex') !== b['md5'].toLowerCase()) {
        throw invalid(400, 'The md5 checksum of the uploaded bytes does not match the md5 provided.', 'md5');
      }
      const f: FakeFile = { id: ids.file(), object: 'file', bytes: data.length, created_at: nowSec(), filename: u.filename, purpose: u.purpose, data, uploadId: u.id };
      files.set(f.id, f);
      u.fileId = f.id;
      u.status = 'completed';
      reply(ctx, 200, uploadJson(u));
    }),
    route('POST', '/uploads/{upload_id}/cancel', async (ctx) => {
      const u = uploadOr404(ctx.params['upload_id'] ?? '');
      requirePending(u);
      u.status = 'cancelled';
      reply(ctx, 200, uploadJson(u));
    }),

    route('POST', '/conversations', async (ctx) => {
      const b = isObject(ctx.body) ? ctx.body : {};
      const c: FakeConversation = {
        id: ids.conversation(),
        object: 'conversation',
        created_at: nowSec(),
        metadata: isObject(b['metadata']) ? b['metadata'] : {},
        items: normalizeInput(Array.isArray(b['items']) ? b['items'] : []),
      };
      conversations.set(c.id, c);
      reply(ctx, 200, conversationJson(c));
    }),
    route('GET', '/conversations/{conversation_id}', async (ctx) => {
      const id = ctx.params['conversation_id'] ?? '';
      const c = conversations.get(id);
      if (!c) throw invalid(404, `Conversation with id '${id}' not found.`);
      reply(ctx, 200, conversationJson(c));
    }),
    route('DELETE', '/conversations/{conversation_id}', async (ctx) => {
      const id = ctx.params['conversation_id'] ?? '';
      if (!conversations.delete(id)) throw invalid(404, `Conversation with id '${id}' not found.`);
      reply(ctx, 200, { id, object: 'conversation.deleted', deleted: true });
    }),
    route('GET', '/conversations/{conversation_id}/items', async (ctx) => {
      const id = ctx.params['conversation_id'] ?? '';
      const c = conversations.get(id);
      if (!c) throw invalid(404, `Conversation with id '${id}' not found.`);
      reply(ctx, 200, listJson(c.items, ctx.query, 'desc'));
    }),

    route('GET', '/containers', async (ctx) => reply(ctx, 200, listJson([...containers.values()].map(containerJson), ctx.query, 'desc'))),
    route('POST', '/containers', async (ctx) => {
      const b = ctx.body as JsonObject;
      const minutes = isObject(b['expires_after']) && typeof b['expires_after']['minutes'] === 'number' ? b['expires_after']['minutes'] : 20;
      const c = newContainer(String(b['name']), false, minutes, typeof b['memory_limit'] === 'string' ? b['memory_limit'] : '1g');
      try {
        copyFilesIntoContainer(c, Array.isArray(b['file_ids']) ? b['file_ids'].map(String) : [], 'file_ids');
      } catch (err) {
        containers.delete(c.id);
        throw err;
      }
      reply(ctx, 200, containerJson(c));
    }),
    route('GET', '/containers/{container_id}', async (ctx) => {
      const id = ctx.params['container_id'] ?? '';
      const c = containers.get(id);
      if (!c) throw notFoundContainer(id);
      reply(ctx, 200, containerJson(c));
    }),
    route('DELETE', '/containers/{container_id}', async (ctx) => {
      const id = ctx.params['container_id'] ?? '';
      if (!containers.delete(id)) throw notFoundContainer(id);
      reply(ctx, 200, { id, object: 'container.deleted', deleted: true });
    }),
    route('GET', '/containers/{container_id}/files', async (ctx) => {
      const c = liveContainer(ctx.params['container_id'] ?? '');
      reply(ctx, 200, listJson(c.files.map(containerFileJson), ctx.query, 'desc'));
    }),
    route('POST', '/containers/{container_id}/files', async (ctx) => {
      const c = liveContainer(ctx.params['container_id'] ?? '');
      let f: FakeContainerFile;
      const upload = ctx.form?.get('file');
      if (upload instanceof File) {
        const name = upload.name;
        f = addContainerFile(c, name, Buffer.from(await upload.arrayBuffer()), 'user', `/mnt/data/${hex(32)}-${name}`);
      } else if (isObject(ctx.body) && typeof ctx.body['file_id'] === 'string') {
        const file = fileOr404(ctx.body['file_id']);
        f = addContainerFile(c, file.filename, file.data, 'user', `/mnt/data/${file.filename}`, file.id);
        if (!c.fileIds.includes(file.id)) c.fileIds.push(file.id);
      } else {
        throw invalid(400, "Missing required parameter: one of 'file' or 'file_id' must be provided.", null, 'missing_required_parameter');
      }
      c.last_active_at = nowSec();
      reply(ctx, 200, containerFileJson(f));
    }),
    route('GET', '/containers/{container_id}/files/{file_id}', async (ctx) => {
      const c = liveContainer(ctx.params['container_id'] ?? '');
      const id = ctx.params['file_id'] ?? '';
      const f = c.files.find((x) => x.id === id);
      if (!f) throw invalid(404, `Container file with id '${id}' not found.`);
      reply(ctx, 200, containerFileJson(f));
    }),
    route('DELETE', '/containers/{container_id}/files/{file_id}', async (ctx) => {
      const c = liveContainer(ctx.params['container_id'] ?? '');
      const id = ctx.params['file_id'] ?? '';
      const i = c.files.findIndex((x) => x.id === id);
      if (i < 0) throw invalid(404, `Container file with id '${id}' not found.`);
      c.files.splice(i, 1);
      reply(ctx, 200, { id, object: 'container.file.deleted', deleted: true });
    }),
    route('GET', '/containers/{container_id}/files/{file_id}/content', async (ctx) => {
      const c = liveContainer(ctx.params['container_id'] ?? '');
      const id = ctx.params['file_id'] ?? '';
      const f = c.files.find((x) => x.id === id);
      if (!f || f.gone === true) throw invalid(404, `Container file with id '${id}' not found.`);
      replyBytes(ctx, f.data, f.filename);
    }),

    route('GET', '/models/{model}', async (ctx) => {
      const id = ctx.params['model'] ?? '';
      if (models !== undefined && !models.some((m) => m.id === id)) throw invalid(404, `The model '${id}' does not exist or you do not have access to it.`, null, 'model_not_found');
      reply(ctx, 200, { id, object: 'model', created: 1_712_361_441, owned_by: 'system' });
    }),
    route('POST', '/responses', createResponse),
    route('GET', '/responses/{response_id}', async (ctx) => {
      const id = ctx.params['response_id'] ?? '';
      const rec = responses.get(id);
      if (!rec?.stored) throw invalid(404, `Response with id '${id}' not found.`);
      const include = [...ctx.query.getAll('include'), ...ctx.query.getAll('include[]')];
      reply(ctx, 200, renderResponse(rec, include));
    }),
    route('DELETE', '/responses/{response_id}', async (ctx) => {
      const id = ctx.params['response_id'] ?? '';
      const rec = responses.get(id);
      if (!rec?.stored) throw invalid(404, `Response with id '${id}' not found.`);
      rec.stored = false;
      reply(ctx, 200, { id, object: 'response', deleted: true });
    }),
    route('POST', '/responses/{response_id}/cancel', async (ctx) => {
      const id = ctx.params['response_id'] ?? '';
      const rec = responses.get(id);
      if (!rec?.stored) throw invalid(404, `Response with id '${id}' not found.`);
      if (!rec.background) throw invalid(400, 'Cannot cancel a synchronous response.');
      const status = rec.response['status'];
      if (status === 'queued' || status === 'in_progress') rec.response = { ...rec.response, status: 'cancelled' };
      reply(ctx, 200, renderResponse(rec, rec.include));
    }),
  ];

  // --- Dispatcher ---------------------------------------------------------------------------

  async function dispatch(req: IncomingMessage, res: ServerResponse, raw: Buffer, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const requestId = ids.request();
    const flavor: 'openai' | 'azure' = url.pathname.startsWith('/openai/v1/') ? 'azure' : 'openai';
    const prefix = flavor === 'azure' ? '/openai/v1' : '/v1';
    const early = { res, requestId, flavor, method, template: undefined };
    if (!url.pathname.startsWith(`${prefix}/`)) {
      replyError(early, invalid(404, `Invalid URL (${method} ${url.pathname})`));
      return;
    }
    const endpoint = url.pathname.slice(prefix.length);

    // Authentication, the way each endpoint expects it.
    if (flavor === 'azure') {
      const key = req.headers['api-key'];
      if (typeof key !== 'string' || !azureApiKeys.includes(key)) {
        replyError(early, invalid(401, `Incorrect API key provided: ${maskKey(typeof key === 'string' ? key : '')}. You can find your API key at https://platform.openai.com/account/api-keys.`, null, 'invalid_api_key'));
        return;
      }
    } else {
      const auth = req.headers['authorization'];
      const key = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : undefined;
      if (key === undefined) {
        replyError(
          early,
          invalid(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
          ),
        );
        return;
      }
      if (!apiKeys.includes(key)) {
        replyError(early, invalid(401, `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, null, 'invalid_api_key'));
        return;
      }
    }

    let matched: { route: Route; params: Record<string, string> } | undefined;
    for (const r of routes) {
      if (r.method !== method) continue;
      const m = r.regex.exec(endpoint);
      if (!m) continue;
      const params: Record<string, string> = {};
      for (const [i, n] of r.names.entries()) params[n] = decodeURIComponent(m[i + 1] ?? '');
      matched = { route: r, params };
      break;
    }

    // Body.
    const contentType = String(req.headers['content-type'] ?? '');
    const media = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    let body: unknown;
    let form: FormData | undefined;
    let parseError: ApiError | undefined;
    if (raw.length > 0) {
      if (media === 'multipart/form-data') {
        try {
          form = await parseMultipart(contentType, raw);
          body = formToObject(form);
        } catch (err) {
          parseError = invalid(400, `Could not parse multipart form data: ${String(err)}`);
        }
      } else {
        try {
          body = JSON.parse(raw.toString('utf8')) as unknown;
        } catch {
          parseError = invalid(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
          );
        }
      }
    }
    requests.push({ method, path: url.pathname, endpoint, template: matched?.route.template, flavor, query: url.searchParams, headers: req.headers, body, raw });
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));

    if (!matched) {
      replyError(early, invalid(404, `Invalid URL (${method} ${url.pathname})`));
      return;
    }
    const template = matched.route.template;
    if (parseError) {
      replyError({ ...early, template }, parseError);
      return;
    }

    const reqAbort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) reqAbort.abort();
    });
    const ctx: Ctx = {
      req,
      res,
      method,
      template,
      params: matched.params,
      query: url.searchParams,
      body,
      form,
      contentType,
      flavor,
      requestId,
      signal: AbortSignal.any([reqAbort.signal, lifetime.signal]),
    };

    const problems = validate ? await validateRequestDetailed(method, template, raw.length > 0 ? contentType : undefined, form ?? body) : [];
    if (problems.length > 0) {
      recordViolations('request', method, template, problems);
      if (reject) {
        const first = problems[0];
        replyError(ctx, invalid(400, first?.message ?? 'Invalid request.', first?.param ?? null, first?.code ?? null));
        return;
      }
    }

    try {
      await matched.route.handler(ctx);
    } catch (err) {
      if (err instanceof ApiError) {
        if (!res.headersSent) replyError(ctx, err);
        else if (!res.destroyed) res.end();
        return;
      }
      if (!res.headersSent) replyError(ctx, new ApiError(500, { message: `fake-openai: handler crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, type: 'fake_error', param: null, code: null }, { 'x-should-retry': 'false' }));
      else if (!res.destroyed) res.end();
    }
  }

  const server: RunningServer = await listen(dispatch);

  const fake: FakeOpenAI = {
    url: server.url,
    apiKey: apiKeys[0] ?? FAKE_OPENAI_API_KEY,
    script,
    requests,
    files,
    uploads,
    containers,
    conversations,
    responses,
    violations,
    expireContainer(id: string): void {
      const c = containers.get(id);
      if (!c) throw new Error(`fake-openai: no container ${id}`);
      c.expired = true;
    },
    expireAllContainers(): void {
      for (const c of containers.values()) c.expired = true;
    },
    reset(): void {
      script.length = 0;
      requests.length = 0;
      violations.length = 0;
      files.clear();
      uploads.clear();
      containers.clear();
      conversations.clear();
      responses.clear();
    },
    async close(): Promise<void> {
      lifetime.abort();
      await server.close();
    },
  };
  return fake;
}
