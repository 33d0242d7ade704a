import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { listen, sendJson } from './http.js';
import { type WebSocket, WebSocketServer } from 'ws';
import { parse } from 'yaml';

/** The bot scopes the app's manifest asks for: what an installed Crunch app is granted (from test/fakes, or compiled in dist/). */
const manifestUrl = new URL(`${import.meta.url.includes('/dist/test/') ? '../../..' : '../..'}/manifest/slack/manifest.yaml`, import.meta.url);
const MANIFEST_SCOPES: string[] = (parse(readFileSync(manifestUrl, 'utf8')) as { oauth_config: { scopes: { bot: string[] } } }).oauth_config.scopes.bot;

/**
 * A fake Slack over real HTTP on 127.0.0.1: the Web API under `<url>/api/` (reach it through SLACK_API_URL),
 * the upload URLs files.getUploadURLExternal hands out, and private file downloads that need the bot token.
 * It answers like Slack (form or JSON bodies in; `{ ok: false, error }` out; 429 with Retry-After) and keeps
 * its state (messages per thread, uploaded files with their bytes, statuses) for tests to assert on.
 *
 * It also speaks Socket Mode (`fake.socket`): apps.connections.open with the app-level token hands out a
 * single-use `ws://…/link/?ticket=…` URL; the WebSocket there says `hello`, carries `events_api` envelopes,
 * records the app's acks, and can ask the app to reconnect with a `disconnect` message.
 */

export interface FakeMessage {
  channel: string;
  ts: string;
  thread_ts: string | undefined;
  text: string;
  blocks: unknown[] | undefined;
  /** "message" from chat.postMessage, "stream" from chat.startStream. */
  kind: 'message' | 'stream';
  streaming: boolean;
  deleted: boolean;
  /** Every text the message had, in order (posts, appends, updates). */
  history: string[];
}

export interface FakeUpload {
  id: string;
  filename: string;
  title: string | undefined;
  snippetType: string | undefined;
  bytes: Buffer;
  channel: string | undefined;
  thread_ts: string | undefined;
  completed: boolean;
}

export interface FakeCall {
  method: string;
  params: Record<string, unknown>;
  status: number;
  error: string | undefined;
}

export interface FakeFailure {
  /** A Web API method, or "upload" (the upload URL) or "download" (private file URLs). */
  method: string;
  /** Slack error code for `{ ok: false, error }`; defaults to "ratelimited" for 429 and "internal_error" otherwise. */
  error?: string;
  /** HTTP status; 429 comes with Retry-After. */
  status?: number;
  retryAfterSec?: number;
  /** How many matching calls fail (default 1). */
  times?: number;
  when?: (params: Record<string, unknown>) => boolean;
}

export interface HostedFile {
  id: string;
  name: string;
  mimetype: string;
  bytes: Buffer;
  /** Answers the (authorized) download with a 302 to this URL instead of the bytes. */
  redirectTo?: string;
  /**
   * Sends the headers (with the full content-length) and the first `afterBytes` bytes, then either goes silent with
   * the connection open ("stall") or drops the connection ("reset").
   */
  cut?: { afterBytes: number; then: 'stall' | 'reset' };
}

/** Which calls `hold` keeps waiting. */
export interface FakeHold {
  /** A Web API method, or "upload" (the upload URL) or "download" (private file URLs). */
  method: string;
  when?: (params: Record<string, unknown>) => boolean;
}

export interface HeldCalls {
  /** Resolves once a matching call has arrived (and is being held). */
  started: Promise<void>;
  /** Answers the held calls, and lets later matching ones through. */
  release(): void;
}

/** One Socket Mode WebSocket connection the app opened. */
export interface FakeSocketConnection {
  /** 1, 2, … in the order the app connected. */
  id: number;
  /** The apps.connections.open ticket it connected with (each works once). */
  ticket: string;
  /** From the `hello` until either side closes it. */
  open: boolean;
  /** The code of the app's close frame (1000: a normal close), or undefined while open or if the TCP connection just ended. */
  closeCode: number | undefined;
  /** Every message the app sent on it, parsed. */
  received: Record<string, unknown>[];
}

/** An acknowledgement the app sent: `{ envelope_id, payload? }` on one connection. */
export interface FakeSocketAck {
  envelope_id: string;
  payload: unknown;
  connection: number;
}

export interface SocketDeliverOptions {
  /** 0 for the first delivery; Slack counts redeliveries of an envelope it saw no ack for. */
  retryAttempt?: number;
  /** Defaults to "" for a first delivery and "timeout" for a redelivery. */
  retryReason?: string;
  envelopeId?: string;
}

export interface FakeSocketMode {
  connections: FakeSocketConnection[];
  acks: FakeSocketAck[];
  /**
   * Wraps an Events API payload (`event_callback`) in an `events_api` envelope, sends it on the newest open
   * connection (waiting for one while the app reconnects), and resolves with the app's ack. If that connection
   * closes before the ack, the envelope goes out again on the next one, as Slack does.
   */
  deliver(payload: unknown, options?: SocketDeliverOptions): Promise<FakeSocketAck>;
  /** Sends `{ type: 'disconnect', reason }` on the newest open connection; resolves once the app has closed it. */
  disconnect(reason?: 'refresh_requested' | 'warning' | 'link_disabled'): Promise<FakeSocketConnection>;
  /** Resolves with the newest open connection whose id is above `after` (default 0: any), waiting while there is none. */
  waitForConnection(after?: number): Promise<FakeSocketConnection>;
}

export interface FakeSlack {
  url: string;
  /** What to set SLACK_API_URL to. */
  apiUrl: string;
  botToken: string;
  /** The app-level token (SLACK_APP_TOKEN) that apps.connections.open takes, and nothing else does. */
  appToken: string;
  appId: string;
  signingSecret: string;
  teamId: string;
  botUserId: string;
  botId: string;
  messages: FakeMessage[];
  uploads: FakeUpload[];
  calls: FakeCall[];
  /** assistant.threads.setStatus calls, in order. */
  statuses: { channel: string; thread_ts: string; status: string }[];
  /**
   * The status line a thread shows now: the last one set, until the bot posts in the thread ("The status will
   * be automatically cleared when the app sends a reply", assistant.threads.setStatus docs) or sets "".
   */
  statusOf(channel: string, threadTs: string): string;
  reactions: { channel: string; ts: string; name: string; removed: boolean }[];
  /** Private file downloads whose connection is still open (a stalled one stays open until the client hangs up). */
  readonly openDownloads: number;
  /** When false, private file URLs answer with the HTML sign-in page, as Slack does for a token without files:read. */
  filesReadScope: boolean;
  /** The bot token's scopes, sent in every response's x-oauth-scopes header as Slack does. Default: the manifest's. */
  grantedScopes: string[];
  /** Socket Mode: the app's WebSocket connections and acks, and events and disconnects to send. */
  socket: FakeSocketMode;
  /** Serves a file at the URL Slack would give it; `fileObject` is what an event's `files[]` carries. */
  hostFile(file: HostedFile): Record<string, unknown>;
  fail(failure: FakeFailure): void;
  /** Keeps matching calls waiting, unanswered, until `release()`: a slow Slack, under the test's control. */
  hold(hold: FakeHold): HeldCalls;
  /** Visible messages of a thread (root ts), in order. */
  thread(channel: string, threadTs: string): FakeMessage[];
  /** Completed uploads in a thread. */
  threadUploads(channel: string, threadTs: string): FakeUpload[];
  callsTo(method: string): FakeCall[];
  /** Resolves once `predicate` holds, checked after every request the fake answers and every WebSocket message or close. */
  waitFor(predicate: () => boolean, what?: string, timeoutMs?: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

export interface FakeSlackOptions {
  botToken?: string;
  appToken?: string;
  appId?: string;
  signingSecret?: string;
  teamId?: string;
  botUserId?: string;
  botId?: string;
}

/** The visible text of a message: its section blocks if any, else its text. */
export function messageText(message: FakeMessage): string {
  const sections = (message.blocks ?? []).filter((b): b is { type: string; text: { text: string } } => (b as { type?: string }).type === 'section');
  return sections.length > 0 ? sections.map((b) => b.text.text).join('\n') : message.text;
}

/** The mrkdwn texts of a message's context blocks. */
export function contextTexts(message: FakeMessage): string[] {
  return (message.blocks ?? [])
    .filter((b): b is { type: string; elements: { text: string }[] } => (b as { type?: string }).type === 'context')
    .flatMap((b) => b.elements.map((e) => e.text));
}

export async function startFakeSlack(options: FakeSlackOptions = {}): Promise<FakeSlack> {
  let state = freshState();
  const failures: FakeFailure[] = [];
  const holds: { hold: FakeHold; gate: Promise<void>; release: () => void; arrived: () => void }[] = [];
  const hosted = new Map<string, HostedFile>();
  const waiters = new Set<() => void>();
  let counter = 0;
  let openDownloads = 0;
  const notify = () => {
    for (const check of [...waiters]) check();
  };

  const server = await listen(async (req, res, body, url) => {
    try {
      await route(req, res, body, url);
    } finally {
      notify();
    }
  });

  function waitFor(predicate: () => boolean, what = 'condition', timeoutMs = 5000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`fake Slack: timed out waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });
  }

  // ---- Socket Mode ----
  /** Tickets apps.connections.open handed out and no connection has used yet. */
  const tickets = new Set<string>();
  const peers = new Map<number, WebSocket>();
  // A real WebSocket server (ws); permessage-deflate off, as nothing here needs it.
  const sockets = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  let connectionCount = 0;
  const socket: FakeSocketMode = {
    connections: [],
    acks: [],
    async deliver(payload, deliverOptions = {}) {
      const envelopeId = deliverOptions.envelopeId ?? randomUUID();
      const retryAttempt = deliverOptions.retryAttempt ?? 0;
      // The envelope as docs.slack.dev "Using Socket Mode" and @slack/socket-mode's tests show it.
      const envelope = JSON.stringify({
        envelope_id: envelopeId,
        payload,
        type: 'events_api',
        accepts_response_payload: false,
        retry_attempt: retryAttempt,
        retry_reason: deliverOptions.retryReason ?? (retryAttempt > 0 ? 'timeout' : ''),
      });
      const ack = () => socket.acks.find((a) => a.envelope_id === envelopeId);
      for (;;) {
        const connection = await socket.waitForConnection();
        peers.get(connection.id)?.send(envelope);
        await waitFor(() => ack() !== undefined || !connection.open, `the ack of envelope ${envelopeId}`);
        if (ack() !== undefined) return ack()!;
        // The connection closed before the app acknowledged: like Slack, send the envelope again on the next one.
      }
    },
    async disconnect(reason = 'refresh_requested') {
      const connection = await socket.waitForConnection();
      peers.get(connection.id)?.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'wss-fake.slack.com' } }));
      await waitFor(() => !connection.open, `the app to close Socket Mode connection ${connection.id}`);
      return connection;
    },
    async waitForConnection(after = 0) {
      const candidate = () => socket.connections.findLast((c) => c.open && c.id > after);
      await waitFor(() => candidate() !== undefined, `a Socket Mode connection after #${after}`);
      return candidate()!;
    },
  };

  server.server.on('upgrade', (req: IncomingMessage, stream: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const ticket = url.searchParams.get('ticket') ?? '';
    // Each ticket from apps.connections.open opens one connection; anything else is refused before the upgrade.
    if (url.pathname !== '/link/' || !tickets.delete(ticket)) {
      refuseUpgrade(stream, 401, 'Unauthorized');
      return;
    }
    sockets.handleUpgrade(req, stream, head, (peer) => {
      const connection: FakeSocketConnection = { id: ++connectionCount, ticket, open: true, closeCode: undefined, received: [] };
      peer.on('message', (data, isBinary) => {
        if (isBinary) return;
        const message = parseJsonObject(data.toString());
        connection.received.push(message);
        if (typeof message['envelope_id'] === 'string') socket.acks.push({ envelope_id: message['envelope_id'], payload: message['payload'], connection: connection.id });
        notify();
      });
      peer.on('close', (code) => {
        connection.open = false;
        // 1005/1006: the connection ended without a close frame.
        connection.closeCode = code === 1005 || code === 1006 ? undefined : code;
        peers.delete(connection.id);
        notify();
      });
      peer.on('error', () => undefined);
      peers.set(connection.id, peer);
      socket.connections.push(connection);
      peer.send(
        JSON.stringify({
          type: 'hello',
          num_connections: peers.size,
          debug_info: { host: 'applink-fake', build_number: 1, approximate_connection_time: 3600 },
          connection_info: { app_id: fake.appId },
        }),
      );
      notify();
    });
  });

  const fake: FakeSlack = {
    url: server.url,
    apiUrl: `${server.url}/api/`,
    botToken: options.botToken ?? 'xoxb-0000000000-fake-bot-token',
    appToken: options.appToken ?? 'xapp-1-A0CRUNCHAPP-0000000000-fake-app-token',
    appId: options.appId ?? 'A0CRUNCHAPP',
    signingSecret: options.signingSecret ?? 'fake-signing-secret-8f4e2a',
    teamId: options.teamId ?? 'T0CRUNCH01',
    botUserId: options.botUserId ?? 'U0CRUNCHBOT',
    botId: options.botId ?? 'B0CRUNCHBOT',
    get messages() {
      return state.messages;
    },
    get uploads() {
      return state.uploads;
    },
    get calls() {
      return state.calls;
    },
    get statuses() {
      return state.statuses;
    },
    statusOf(channel, threadTs) {
      return state.shownStatus.get(`${channel}:${threadTs}`) ?? '';
    },
    get reactions() {
      return state.reactions;
    },
    get openDownloads() {
      return openDownloads;
    },
    filesReadScope: true,
    grantedScopes: [...MANIFEST_SCOPES],
    socket,
    hostFile(file) {
      hosted.set(file.id, file);
      const base = `${server.url}/files-pri/${fake.teamId}-${file.id}`;
      return {
        id: file.id,
        created: 1715000000,
        timestamp: 1715000000,
        name: file.name,
        title: file.name,
        mimetype: file.mimetype,
        filetype: file.name.split('.').pop() ?? '',
        pretty_type: file.name.split('.').pop()?.toUpperCase() ?? '',
        user: 'U0ALICE001',
        user_team: fake.teamId,
        editable: false,
        size: file.bytes.length,
        mode: 'hosted',
        is_external: false,
        external_type: '',
        is_public: true,
        public_url_shared: false,
        display_as_bot: false,
        username: '',
        url_private: `${base}/${file.name}`,
        url_private_download: `${base}/download/${file.name}`,
        permalink: `https://crunch-test.slack.com/files/U0ALICE001/${file.id}/${file.name}`,
        file_access: 'visible',
      };
    },
    fail(failure) {
      failures.push({ times: 1, ...failure });
    },
    hold(hold) {
      let arrived!: () => void;
      let release!: () => void;
      const started = new Promise<void>((resolve) => (arrived = resolve));
      const gate = new Promise<void>((resolve) => (release = resolve));
      const entry = { hold, gate, release: () => undefined, arrived };
      entry.release = () => {
        const index = holds.indexOf(entry);
        if (index >= 0) holds.splice(index, 1);
        release();
      };
      holds.push(entry);
      return { started, release: entry.release };
    },
    thread(channel, threadTs) {
      return state.messages.filter((m) => m.channel === channel && !m.deleted && (m.thread_ts === threadTs || m.ts === threadTs));
    },
    threadUploads(channel, threadTs) {
      return state.uploads.filter((u) => u.completed && u.channel === channel && u.thread_ts === threadTs);
    },
    callsTo(method) {
      return state.calls.filter((c) => c.method === method);
    },
    waitFor,
    reset() {
      state = freshState();
      failures.length = 0;
      for (const entry of [...holds]) entry.release();
      hosted.clear();
      fake.filesReadScope = true;
      fake.grantedScopes = [...MANIFEST_SCOPES];
      socket.acks = [];
      socket.connections = socket.connections.filter((c) => c.open);
    },
    async close() {
      for (const peer of peers.values()) peer.terminate();
      await server.close();
    },
  };

  function nextTs(): string {
    counter += 1;
    return `${1800000000 + counter}.${String(counter * 100).padStart(6, '0')}`;
  }

  /** Waits while a hold matches this call. */
  async function held(method: string, params: Record<string, unknown>): Promise<void> {
    const entry = holds.find((h) => h.hold.method === method && (h.hold.when === undefined || h.hold.when(params)));
    if (entry === undefined) return;
    entry.arrived();
    await entry.gate;
  }

  /** The first planned failure matching this call, consumed. */
  function takeFailure(method: string, params: Record<string, unknown>): FakeFailure | undefined {
    const index = failures.findIndex((f) => f.method === method && (f.when === undefined || f.when(params)));
    if (index < 0) return undefined;
    const failure = failures[index]!;
    failure.times = (failure.times ?? 1) - 1;
    if (failure.times <= 0) failures.splice(index, 1);
    return failure;
  }

  async function route(req: IncomingMessage, res: ServerResponse, body: Buffer, url: URL): Promise<void> {
    if (url.pathname.startsWith('/api/')) return api(url.pathname.slice('/api/'.length), req, res, body, url);
    if (url.pathname.startsWith('/upload/') && req.method === 'POST') return receiveUpload(url.pathname.slice('/upload/'.length), req, res, body);
    if (url.pathname.startsWith('/files-pri/')) return download(url, req, res);
    if (url.pathname === '/signin') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html><head><title>Slack</title></head><body><h1>Sign in to Crunch Test</h1></body></html>');
      return;
    }
    sendJson(res, 404, { ok: false, error: 'not_found' });
  }

  async function api(method: string, req: IncomingMessage, res: ServerResponse, raw: Buffer, url: URL): Promise<void> {
    const params = parseParams(req, raw, url);
    await held(method, params);
    const record = (status: number, error?: string) => state.calls.push({ method, params, status, error });
    const headerToken = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    const token = headerToken || String(params['token'] ?? '');
    const failure = takeFailure(method, params);
    if (failure?.status === 429) {
      record(429, 'ratelimited');
      sendJson(res, 429, { ok: false, error: failure.error ?? 'ratelimited' }, { 'retry-after': String(failure.retryAfterSec ?? 1) });
      return;
    }
    const reply = (result: Record<string, unknown>) => {
      const ok = result['ok'] !== false;
      record(200, ok ? undefined : String(result['error']));
      const scopes = token === fake.botToken ? fake.grantedScopes.join(',') : token === fake.appToken ? 'connections:write' : undefined;
      sendJson(res, 200, ok ? { ok: true, ...result } : result, scopes !== undefined ? { 'x-oauth-scopes': scopes } : {});
    };
    if (token === '') return reply({ ok: false, error: 'not_authed' });
    if (method === 'apps.connections.open') {
      // The app-level token, and only in the Authorization header (docs.slack.dev: apps.connections.open).
      if (token === fake.botToken) return reply({ ok: false, error: 'not_allowed_token_type' });
      if (headerToken !== fake.appToken) return reply({ ok: false, error: 'invalid_auth' });
    } else if (token === fake.appToken) {
      return reply({ ok: false, error: 'not_allowed_token_type' });
    } else if (token !== fake.botToken) {
      return reply({ ok: false, error: 'invalid_auth' });
    }
    if (failure !== undefined) return reply({ ok: false, error: failure.error ?? 'internal_error' });
    reply(handleMethod(method, params));
  }

  function handleMethod(method: string, p: Record<string, unknown>): Record<string, unknown> {
    const str = (key: string) => (p[key] === undefined ? undefined : String(p[key]));
    const find = (channel: string | undefined, ts: string | undefined) => state.messages.find((m) => m.channel === channel && m.ts === ts && !m.deleted);
    switch (method) {
      case 'apps.connections.open': {
        const ticket = randomUUID();
        tickets.add(ticket);
        return { url: `${server.url.replace(/^http:/, 'ws:')}/link/?ticket=${ticket}&app_id=${fake.appId}` };
      }
      case 'auth.test':
        return { url: 'https://crunch-test.slack.com/', team: 'Crunch Test', user: 'crunch', team_id: fake.teamId, user_id: fake.botUserId, bot_id: fake.botId, is_enterprise_install: false };
      case 'chat.postMessage': {
        const channel = str('channel');
        if (!channel) return { ok: false, error: 'channel_not_found' };
        if (!str('text') && !Array.isArray(p['blocks'])) return { ok: false, error: 'no_text' };
        const message = newMessage(channel, str('thread_ts'), str('text') ?? '', p['blocks'] as unknown[] | undefined, 'message');
        return { channel, ts: message.ts, message: { type: 'message', text: message.text, user: fake.botUserId, bot_id: fake.botId, ts: message.ts } };
      }
      case 'chat.update': {
        const message = find(str('channel'), str('ts'));
        if (!message) return { ok: false, error: 'message_not_found' };
        if (message.streaming) return { ok: false, error: 'cant_update_message' };
        message.text = str('text') ?? '';
        message.blocks = p['blocks'] as unknown[] | undefined;
        message.history.push(message.text);
        return { channel: message.channel, ts: message.ts, text: message.text };
      }
      case 'chat.delete': {
        const message = find(str('channel'), str('ts'));
        if (!message) return { ok: false, error: 'message_not_found' };
        message.deleted = true;
        return { channel: message.channel, ts: message.ts };
      }
      case 'chat.startStream': {
        const channel = str('channel');
        if (!channel) return { ok: false, error: 'channel_not_found' };
        if (!str('thread_ts')) return { ok: false, error: 'invalid_arguments' };
        if (!channel.startsWith('D') && (!str('recipient_user_id') || !str('recipient_team_id'))) return { ok: false, error: 'invalid_arguments' };
        const message = newMessage(channel, str('thread_ts'), str('markdown_text') ?? chunkText(p['chunks']), undefined, 'stream');
        message.streaming = true;
        return { channel, ts: message.ts };
      }
      case 'chat.appendStream':
      case 'chat.stopStream': {
        const message = find(str('channel'), str('ts'));
        if (!message) return { ok: false, error: 'message_not_found' };
        if (!message.streaming) return { ok: false, error: 'message_not_in_streaming_state' };
        message.text += str('markdown_text') ?? chunkText(p['chunks']);
        message.history.push(message.text);
        if (method === 'chat.stopStream') {
          message.streaming = false;
          // "Block formatted elements will be appended to the end of the message."
          if (Array.isArray(p['blocks'])) message.blocks = [...(message.blocks ?? []), ...(p['blocks'] as unknown[])];
        }
        return { channel: message.channel, ts: message.ts };
      }
      case 'assistant.threads.setStatus':
        state.statuses.push({ channel: str('channel_id') ?? '', thread_ts: str('thread_ts') ?? '', status: str('status') ?? '' });
        state.shownStatus.set(`${str('channel_id') ?? ''}:${str('thread_ts') ?? ''}`, str('status') ?? '');
        return {};
      case 'reactions.add':
      case 'reactions.remove': {
        const entry = state.reactions.find((r) => r.channel === str('channel') && r.ts === str('timestamp') && r.name === str('name') && !r.removed);
        if (method === 'reactions.add') {
          if (entry) return { ok: false, error: 'already_reacted' };
          state.reactions.push({ channel: str('channel') ?? '', ts: str('timestamp') ?? '', name: str('name') ?? '', removed: false });
        } else {
          if (!entry) return { ok: false, error: 'no_reaction' };
          entry.removed = true;
        }
        return {};
      }
      case 'files.info': {
        const file = hosted.get(str('file') ?? '');
        return file ? { file: fake.hostFile(file) } : { ok: false, error: 'file_not_found' };
      }
      case 'files.getUploadURLExternal': {
        const filename = str('filename');
        const length = Number(str('length'));
        if (!filename || !(length > 0)) return { ok: false, error: 'invalid_arguments' };
        counter += 1;
        const id = `F0UP${String(counter).padStart(6, '0')}`;
        state.uploads.push({ id, filename, title: undefined, snippetType: str('snippet_type'), bytes: Buffer.alloc(0), channel: undefined, thread_ts: undefined, completed: false });
        return { upload_url: `${server.url}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const files = (Array.isArray(p['files']) ? p['files'] : []) as { id: string; title?: string }[];
        const done: Record<string, unknown>[] = [];
        for (const entry of files) {
          const upload = state.uploads.find((u) => u.id === entry.id);
          if (!upload || upload.bytes.length === 0) return { ok: false, error: 'file_not_found' };
          upload.title = entry.title;
          upload.channel = str('channel_id');
          upload.thread_ts = str('thread_ts');
          upload.completed = true;
          done.push({ id: upload.id, name: upload.filename, title: upload.title ?? upload.filename, size: upload.bytes.length });
        }
        return { files: done };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  function newMessage(channel: string, threadTs: string | undefined, text: string, blocks: unknown[] | undefined, kind: FakeMessage['kind']): FakeMessage {
    const message: FakeMessage = { channel, ts: nextTs(), thread_ts: threadTs, text, blocks, kind, streaming: false, deleted: false, history: [text] };
    state.messages.push(message);
    if (threadTs !== undefined) state.shownStatus.delete(`${channel}:${threadTs}`);
    return message;
  }

  async function receiveUpload(id: string, req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> {
    const upload = state.uploads.find((u) => u.id === id);
    await held('upload', { id, filename: upload?.filename });
    const failure = takeFailure('upload', { id, filename: upload?.filename });
    state.calls.push({ method: 'upload', params: { id, filename: upload?.filename }, status: failure ? (failure.status ?? 500) : 200, error: undefined });
    if (!upload || failure) {
      res.writeHead(failure?.status ?? 404, { 'content-type': 'text/plain' });
      res.end('upload failed');
      return;
    }
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': type } }).formData();
      const part = [...form.values()].find((v) => typeof v !== 'string');
      upload.bytes = part !== undefined && typeof part !== 'string' ? Buffer.from(await part.arrayBuffer()) : Buffer.alloc(0);
    } else {
      upload.bytes = raw;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`OK - ${upload.bytes.length}`);
  }

  async function download(url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [, , teamAndId] = url.pathname.split('/');
    const id = (teamAndId ?? '').split('-').slice(1).join('-');
    openDownloads += 1;
    res.on('close', () => {
      openDownloads -= 1;
      notify();
    });
    await held('download', { id });
    const file = hosted.get(id);
    const failure = takeFailure('download', { id });
    state.calls.push({ method: 'download', params: { id }, status: failure?.status ?? 200, error: undefined });
    if (failure) {
      res.writeHead(failure.status ?? 500, { 'content-type': 'text/plain' });
      res.end('refused');
      return;
    }
    const authorized = req.headers.authorization === `Bearer ${fake.botToken}` && fake.filesReadScope;
    if (!authorized) {
      // What Slack does: no error, a redirect to the workspace's sign-in page.
      res.writeHead(302, { location: `${server.url}/signin?redir=${encodeURIComponent(url.pathname)}` });
      res.end();
      return;
    }
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (file.redirectTo !== undefined) {
      res.writeHead(302, { location: file.redirectTo });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': file.mimetype, 'content-length': file.bytes.length });
    if (file.cut !== undefined) {
      const { afterBytes, then } = file.cut;
      // Once the part is on its way: a reset drops the connection; a stall leaves it open and silent (until the
      // client gives up, or close() ends every connection).
      res.write(file.bytes.subarray(0, afterBytes), () => {
        if (then === 'reset') setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    res.end(file.bytes);
  }

  return fake;
}

function freshState() {
  return {
    messages: [] as FakeMessage[],
    uploads: [] as FakeUpload[],
    calls: [] as FakeCall[],
    statuses: [] as { channel: string; thread_ts: string; status: string }[],
    shownStatus: new Map<string, string>(),
    reactions: [] as { channel: string; ts: string; name: string; removed: boolean }[],
  };
}

function chunkText(chunks: unknown): string {
  return Array.isArray(chunks) ? chunks.map((c) => String((c as { text?: unknown }).text ?? '')).join('') : '';
}

/** Form-encoded (the WebClient's default, objects as JSON strings) or JSON bodies; query string too. */
function parseParams(req: IncomingMessage, raw: Buffer, url: URL): Record<string, unknown> {
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('application/json')) return { ...params, ...(JSON.parse(raw.toString('utf8') || '{}') as Record<string, unknown>) };
  for (const [key, value] of new URLSearchParams(raw.toString('utf8'))) {
    params[key] = /^[[{]/.test(value) ? safeJson(value) : value;
  }
  return params;
}

function parseJsonObject(text: string): Record<string, unknown> {
  const value = safeJson(text);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : { unparsed: text };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// ---- Delivering events the way Slack does ----

/** Slack's v0 request signature: HMAC-SHA256 over `v0:<timestamp>:<body>`. */
export function signSlackRequest(signingSecret: string, timestampSec: number, body: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestampSec}:${body}`).digest('hex')}`;
}

export interface DeliverOptions {
  signingSecret: string;
  /** The request timestamp; defaults to now. */
  timestampSec?: number;
  /** Overrides the computed signature (forgeries). */
  signature?: string;
  /** Sets x-slack-retry-num / x-slack-retry-reason like a redelivery. */
  retryNum?: number;
}

/** Posts a payload to an Events API endpoint, signed like Slack signs it. */
export async function deliverEvent(endpoint: string, payload: unknown, options: DeliverOptions): Promise<Response> {
  const body = JSON.stringify(payload);
  const timestamp = options.timestampSec ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': options.signature ?? signSlackRequest(options.signingSecret, timestamp, body),
    'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
  };
  if (options.retryNum !== undefined) {
    headers['x-slack-retry-num'] = String(options.retryNum);
    headers['x-slack-retry-reason'] = 'http_timeout';
  }
  return fetch(endpoint, { method: 'POST', headers, body });
}

function refuseUpgrade(stream: Duplex, status: number, reason: string): void {
  stream.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}
