import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { listen, sendJson, type RunningServer } from './http.js';
import { createFakeOneDrive, type FakeOneDrive } from './teams-onedrive.js';

/**
 * A fake Microsoft side of a Teams bot, over real HTTP on 127.0.0.1:
 *  - the Bot Framework connector the activities' `serviceUrl` points at: records what the bot posts
 *    (POST /v3/conversations/{id}/activities[/{replyToId}], PUT updates, DELETEs), answers 429/5xx on demand,
 *    and keeps the messages the chat then shows (`shown`), as Teams does: a stream is one message that its
 *    final activity completes, an update replaces a message, a delete removes it, and an activity with both
 *    text and attachments becomes two messages (answered 202 without an id);
 *  - the token issuer: OpenID metadata + JWKS that inbound tokens are signed against (jose), and an
 *    Azure AD-like token endpoint for the bot's own token, which the connector then requires;
 *  - file hosting: pre-authenticated personal-chat download URLs, and pasted-image URLs that need the
 *    bot's token; either may hang, stall midway, answer 403 or send HTML (a sign-in page) on demand;
 *  - a sliver of Microsoft Graph: channel and chat messages with `reference` attachments, a channel's files
 *    folder, drives (the channel's document library, users' OneDrives) with their items, /shares lookups,
 *    and item content as Graph serves it (a 302 to a pre-authenticated download URL);
 *  - OneDrive upload sessions for the file consent flow (teams-onedrive.ts).
 */

export interface RecordedActivity {
  method: 'POST' | 'PUT' | 'DELETE';
  conversationId: string;
  /** POST …/activities/{replyToId}: a reply (threaded in channels). */
  replyToId?: string;
  /** PUT/DELETE …/activities/{activityId}. */
  activityId?: string;
  /** The id the fake assigned (POST). */
  id?: string;
  activity: Record<string, any>;
  authorization: string | undefined;
  /** The status the fake answered with (200, or an injected failure). */
  status: number;
}

/** A message the chat shows: posted (or a stream), as its latest update made it. */
export interface ShownMessage {
  id: string;
  conversationId: string;
  replyToId?: string;
  /** The latest content (text, attachments, summary…). */
  activity: Record<string, any>;
  /** A stream: open until its final activity, or ended by a timeout or a refusal. */
  stream?: 'open' | 'final' | 'stopped';
  /** Every content the message had, in order. */
  history: Array<Record<string, any>>;
}

export interface FakeTeamsOptions {
  appId?: string;
  appPassword?: string;
  /** Require the bot's token on connector calls (off for auth-off tests). Default true. */
  requireBotToken?: boolean;
}

/**
 * How a hosted file download misbehaves: never answer ('hang'), send half the bytes then go silent ('stall'),
 * serve the bytes as text/html ('html': a sign-in page, or a real HTML file), or refuse with 403 ('forbidden').
 */
export type DownloadTrouble = 'hang' | 'stall' | 'html' | 'forbidden';

export interface Failure {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface FakeTeams {
  url: string;
  /** The serviceUrl activities carry (with a trailing slash, like Teams'). */
  serviceUrl: string;
  appId: string;
  appPassword: string;
  botId: string;
  endpoints: { openIdMetadataUrl: string; tokenIssuer: string; loginUrl: string; oAuthScope: string; graphUrl: string; graphLoginUrl: string };
  /** Everything the bot sent to the connector, in arrival order. */
  recorded: RecordedActivity[];
  /** The messages the chat shows at this moment (conversation id prefix to narrow it), oldest first. */
  shown(conversationPrefix?: string): ShownMessage[];
  /** Ends every open stream as Teams does after two minutes: later streaming activities get 403. */
  expireStreams(): void;
  /** Connector calls answered with an injected failure. */
  failures: RecordedActivity[];
  /** Bot tokens issued by the token endpoint. */
  issuedTokens: string[];
  /** Files served to the bot: download URL path → bytes. */
  downloads: string[];
  /** Signs an inbound Bot Framework token for `serviceUrl` (overrides for bad-token tests). */
  signToken(claims?: { aud?: string; iss?: string; serviceurl?: string; expSeconds?: number }, otherKey?: boolean): Promise<string>;
  /** A pre-authenticated personal-chat download URL, misbehaving as `trouble` says. */
  hostDownload(bytes: Buffer, trouble?: DownloadTrouble): string;
  /** Downloads (personal-chat files, pasted images) whose connection is still open. */
  readonly openDownloads: number;
  /** A URL on the fake that answers 302 to `location` (and records the hit in `downloads`). */
  hostRedirect(location: string): string;
  /** A pasted-image contentUrl on the connector, which needs the bot's bearer token. */
  hostInlineImage(bytes: Buffer, trouble?: DownloadTrouble): string;
  /**
   * Files plus the Graph message (at `path`, e.g. /teams/{id}/channels/{id}/messages/{id}) that references
   * them. Each file goes to `driveId` (default: the channel drive) under `folder` (default: the channel's
   * files folder, "General"); `from` is the sender's AAD object id.
   */
  hostGraphMessage(
    path: string,
    files: Array<{ name: string; bytes: Buffer; driveId?: string; folder?: string; trouble?: DownloadTrouble }>,
    options?: { from?: string },
  ): Array<{ name: string; contentUrl: string }>;
  /** The drive of every channel's files folder (the team's document library); the folder is "General". */
  channelDriveId: string;
  /** A user's OneDrive (owned by the AAD object id `userId`); returns its drive id. */
  oneDriveOf(userId: string): string;
  /** Holds every Graph request until the returned function is called. */
  holdGraph(): () => void;
  /** Graph requests received, as method + path (query included). */
  graphRequests: string[];
  /** Delay before the connector records and answers each activity POST/PUT (to widen race windows). */
  connectorDelayMs: number;
  /** The team's Azure AD group id returned by GET /v3/teams/{id}. */
  teamAadGroupId: string;
  /** Upload sessions a `fileConsent/invoke` points at, and the PUTs the bot made. */
  oneDrive: FakeOneDrive;
  /** Refuses Graph calls with 403 (permission not granted). */
  denyGraph: boolean;
  /** Refuses streaming activities with 403 ContentStreamNotAllowed (the user pressed Stop, or a timeout). */
  refuseStreaming: boolean;
  /** The next `count` connector POSTs (or PUTs, or DELETEs) fail this way. */
  failNext(count: number, failure: Failure, method?: 'POST' | 'PUT' | 'DELETE'): void;
  /** Resolves when a recorded (or failed) activity matches (checks those already seen first). */
  waitFor(predicate: (r: RecordedActivity) => boolean, timeoutMs?: number): Promise<RecordedActivity>;
  /** Messages (type message) the bot posted into a conversation (base id, thread suffix ignored). */
  messages(conversationPrefix?: string): RecordedActivity[];
  reset(): void;
  close(): Promise<void>;
}

export async function startFakeTeams(options: FakeTeamsOptions = {}): Promise<FakeTeams> {
  const appId = options.appId ?? '00000000-0000-4000-8000-00000000b07a';
  const appPassword = options.appPassword ?? 'fake-app-password';
  const requireBotToken = options.requireBotToken ?? true;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const other = await generateKeyPair('RS256');
  const kid = 'fake-key-1';
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256', endorsements: ['msteams', 'webchat', 'emulator'] };
  const events = new EventEmitter();
  events.setMaxListeners(100);

  const state = {
    recorded: [] as RecordedActivity[],
    failures: [] as RecordedActivity[],
    issuedTokens: [] as string[],
    graphTokens: [] as string[],
    downloads: [] as string[],
    pendingFailures: [] as Array<Failure & { method: 'POST' | 'PUT' | 'DELETE' }>,
    blobs: new Map<string, Buffer>(),
    troubles: new Map<string, DownloadTrouble>(),
    openDownloads: 0,
    redirects: new Map<string, string>(),
    graphMessages: new Map<string, { attachments: unknown[]; from?: unknown }>(),
    /** Sharing URL → drive item key `${driveId}/${itemId}`. */
    shares: new Map<string, string>(),
    /** `${driveId}/${itemId}` → the item. */
    items: new Map<string, { id: string; name: string; driveId: string; folder: string; bytes: Buffer; trouble?: DownloadTrouble }>(),
    /** Drive id → owner (AAD object id), for OneDrives. */
    drives: new Map<string, string | undefined>(),
    graphRequests: [] as string[],
    graphGate: undefined as Promise<void> | undefined,
    shown: [] as Array<ShownMessage & { deleted: boolean }>,
    nextId: 1,
  };

  let server: RunningServer;
  const url = () => server.url;
  const oneDrive = createFakeOneDrive(url);
  const tokenIssuer = 'https://api.botframework.com';
  const botToken = (req: IncomingMessage) => req.headers.authorization;
  const botAuthorized = (req: IncomingMessage) => !requireBotToken || state.issuedTokens.some((t) => botToken(req) === `Bearer ${t}`);

  server = await listen(async (req, res, body, reqUrl) => {
    const path = reqUrl.pathname;
    if (req.method === 'GET' && path === '/v1/.well-known/openidconfiguration') {
      return sendJson(res, 200, { issuer: tokenIssuer, jwks_uri: `${url()}/v1/.well-known/keys`, id_token_signing_alg_values_supported: ['RS256'] });
    }
    if (req.method === 'GET' && path === '/v1/.well-known/keys') return sendJson(res, 200, { keys: [jwk] });

    const graphLogin = /^\/graph-login\/[^/]+\/oauth2\/v2\.0\/token$/.test(path);
    if (req.method === 'POST' && (graphLogin || path === '/botframework.com/oauth2/v2.0/token')) {
      const form = new URLSearchParams(body.toString('utf8'));
      if (form.get('client_id') !== appId || form.get('client_secret') !== appPassword) return sendJson(res, 401, { error: 'invalid_client' });
      if (!graphLogin && (form.get('scope') !== `${tokenIssuer}/.default` || form.get('grant_type') !== 'client_credentials')) return sendJson(res, 400, { error: 'invalid_scope' });
      const tokens = graphLogin ? state.graphTokens : state.issuedTokens;
      const token = `${graphLogin ? 'graph' : 'bot'}-token-${tokens.length + 1}`;
      tokens.push(token);
      return sendJson(res, 200, { token_type: 'Bearer', expires_in: 3600, access_token: token });
    }
    if (req.method === 'GET' && path.startsWith('/download/')) {
      const bytes = state.blobs.get(path);
      if (!bytes) return sendJson(res, 404, { error: 'expired' });
      return serveBlob(res, path, bytes, 'application/octet-stream');
    }
    if (req.method === 'GET' && path.startsWith('/redirect/')) {
      const location = state.redirects.get(path);
      if (location === undefined) return sendJson(res, 404, { error: 'expired' });
      state.downloads.push(path);
      res.writeHead(302, { location });
      return void res.end();
    }
    if (req.method === 'GET' && /^\/v3\/attachments\/[^/]+\/views\/original$/.test(path)) {
      if (!state.issuedTokens.some((t) => botToken(req) === `Bearer ${t}`)) return sendJson(res, 401, { error: 'unauthorized' });
      return serveBlob(res, path, state.blobs.get(path)!, 'image/png');
    }
    const team = /^\/v3\/teams\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && team) {
      if (!botAuthorized(req)) return sendJson(res, 401, { error: 'unauthorized' });
      return sendJson(res, 200, { id: decodeURIComponent(team[1]!), name: 'Finance', aadGroupId: fake.teamAadGroupId });
    }

    if (path.startsWith('/graph/v1.0/')) {
      state.graphRequests.push(`${req.method} ${path}${reqUrl.search}`);
      if (state.graphGate) await state.graphGate;
      if (!state.graphTokens.some((t) => req.headers.authorization === `Bearer ${t}`)) return sendJson(res, 401, { error: 'unauthorized' });
      if (fake.denyGraph) return sendJson(res, 403, { error: { code: 'Forbidden', message: 'Missing role permissions' } });
      const graphPath = path.slice('/graph/v1.0'.length);
      const itemJson = (item: { id: string; name: string; driveId: string; folder: string; bytes: Buffer }, withPath: boolean) => ({
        id: item.id,
        name: item.name,
        size: item.bytes.length,
        file: { mimeType: 'application/octet-stream' },
        parentReference: {
          driveId: item.driveId,
          driveType: state.drives.get(item.driveId) !== undefined ? 'business' : 'documentLibrary',
          id: `folder-${item.folder}`,
          // As Graph does: the path only when the item is addressed through its drive.
          ...(withPath ? { path: `/drives/${item.driveId}/root:/${item.folder.split('/').map(encodeURIComponent).join('/')}` } : {}),
        },
      });
      if (/^\/teams\/[^/]+\/channels\/[^/]+\/filesFolder$/.test(graphPath)) {
        return sendJson(res, 200, { id: 'folder-General', name: 'General', folder: { childCount: 1 }, parentReference: { driveId: fake.channelDriveId, driveType: 'documentLibrary' } });
      }
      const share = /^\/shares\/u!([^/]+)\/driveItem$/.exec(graphPath);
      if (share) {
        const key = state.shares.get(Buffer.from(share[1]!, 'base64url').toString('utf8'));
        const item = key !== undefined ? state.items.get(key) : undefined;
        return item ? sendJson(res, 200, itemJson(item, false)) : sendJson(res, 404, { error: { code: 'itemNotFound' } });
      }
      const driveItem = /^\/drives\/([^/]+)\/items\/([^/]+)(\/content)?$/.exec(graphPath);
      if (driveItem) {
        const [driveId, itemId] = [decodeURIComponent(driveItem[1]!), decodeURIComponent(driveItem[2]!)];
        if (itemId === 'folder-General' && driveId === fake.channelDriveId && !driveItem[3]) {
          return sendJson(res, 200, { id: itemId, name: 'General', folder: {}, parentReference: { driveId, driveType: 'documentLibrary', path: `/drives/${driveId}/root:` } });
        }
        const item = state.items.get(`${driveId}/${itemId}`);
        if (!item) return sendJson(res, 404, { error: { code: 'itemNotFound' } });
        if (!driveItem[3]) return sendJson(res, 200, itemJson(item, true));
        // Graph answers /content with a redirect to a short-lived, pre-authenticated download URL.
        const download = fake.hostDownload(item.bytes, item.trouble);
        res.writeHead(302, { location: download });
        return void res.end();
      }
      const drive = /^\/drives\/([^/]+)$/.exec(graphPath);
      if (drive) {
        const driveId = decodeURIComponent(drive[1]!);
        const owner = state.drives.get(driveId);
        if (driveId === fake.channelDriveId) return sendJson(res, 200, { id: driveId, driveType: 'documentLibrary', owner: { group: { id: fake.teamAadGroupId } } });
        return owner !== undefined ? sendJson(res, 200, { id: driveId, driveType: 'business', owner: { user: { id: owner } } }) : sendJson(res, 404, { error: { code: 'itemNotFound' } });
      }
      const message = state.graphMessages.get(decodeURIComponent(graphPath));
      return message ? sendJson(res, 200, message) : sendJson(res, 404, { error: 'NotFound' });
    }

    if (path.startsWith('/onedrive/') && (await oneDrive.handle(req, res, body, path))) return;
    const activityPath = /^\/v3\/conversations\/([^/]+)\/activities(?:\/([^/]+))?$/.exec(path);
    if (activityPath) {
      const conversationId = decodeURIComponent(activityPath[1]!);
      const second = activityPath[2] !== undefined ? decodeURIComponent(activityPath[2]) : undefined;
      const method = req.method as RecordedActivity['method'];
      if (fake.connectorDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.connectorDelayMs));
      const record: RecordedActivity = {
        method,
        conversationId,
        ...(method === 'POST' && second !== undefined ? { replyToId: second } : {}),
        ...(method !== 'POST' && second !== undefined ? { activityId: second } : {}),
        activity: body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, any>) : {},
        authorization: req.headers.authorization,
        status: 200,
      };
      if (!botAuthorized(req)) return sendJson(res, 401, { message: 'Authorization has been denied for this request.' });
      const streaming = JSON.stringify(record.activity.entities ?? []).includes('streaminfo');
      const failure: Failure | undefined =
        method === 'POST' && streaming && fake.refuseStreaming
          ? { status: 403, body: { error: { code: 'ContentStreamNotAllowed', message: 'Content stream is not allowed' } } }
          : takeFailure(method);
      const refused = failure ?? (method === 'POST' && streaming ? streamRefusal(record) : method === 'PUT' ? updateRefusal(record) : undefined);
      if (refused) {
        record.status = refused.status;
        state.failures.push(record);
        events.emit('record', record);
        return sendJson(res, refused.status, refused.body ?? { error: { code: 'Throttled', message: 'injected failure' } }, refused.headers);
      }
      const answer = show(record);
      state.recorded.push(record);
      events.emit('record', record);
      return sendJson(res, answer.status, answer.body);
    }
    sendJson(res, 404, { error: `fake teams: no route for ${req.method} ${path}` });
  });

  function takeFailure(method: RecordedActivity['method']): Failure | undefined {
    const index = state.pendingFailures.findIndex((f) => f.method === method);
    return index < 0 ? undefined : state.pendingFailures.splice(index, 1)[0];
  }

  const findShown = (conversationId: string, id: string | undefined) => state.shown.find((m) => m.id === id && m.conversationId === conversationId && !m.deleted);
  const streamInfo = (r: RecordedActivity) => (r.activity.entities as Array<Record<string, any>> | undefined)?.find((e) => e.type === 'streaminfo');

  /** Why Teams refuses a streaming activity (streaming-ux "Response codes"), or undefined. */
  function streamRefusal(r: RecordedActivity): Failure | undefined {
    const info = streamInfo(r)!;
    const refuse = (status: number, code: string, message: string): Failure => ({ status, body: { error: { code, message } } });
    if (info.streamType !== 'final' && (typeof r.activity.text !== 'string' || r.activity.text === '')) return refuse(400, 'BadRequest', 'Start streaming activities should include text');
    if (info.streamId === undefined) return info.streamType === 'final' ? refuse(400, 'BadRequest', 'A final streaming activity needs a streamId') : undefined;
    const stream = findShown(r.conversationId, info.streamId);
    if (stream?.stream === undefined) return refuse(400, 'BadRequest', 'Unknown streamId');
    if (stream.stream === 'stopped') return refuse(403, 'ContentStreamNotAllowed', 'Content stream finished due to exceeded streaming time.');
    if (stream.stream === 'final') return refuse(403, 'ContentStreamNotAllowed', 'Content stream is not allowed on an already completed streamed message');
    return undefined;
  }

  /** Why Teams refuses an update: no such message, or one that would become two (text and attachments). */
  function updateRefusal(r: RecordedActivity): Failure | undefined {
    if (findShown(r.conversationId, r.activityId) === undefined) return { status: 404, body: { error: { code: 'ActivityNotFoundInConversation', message: 'Activity not found' } } };
    if (hasText(r.activity) && hasAttachments(r.activity)) return { status: 400, body: { error: { code: 'BadSyntax', message: 'Activity resulted into multiple skype activities' } } };
    return undefined;
  }

  /** What the chat shows after `r`, and the connector's answer to it. */
  function show(r: RecordedActivity): { status: number; body: unknown } {
    const content = (activity: Record<string, any>) => ({ ...activity });
    const add = (activity: Record<string, any>, stream?: ShownMessage['stream']) => {
      const id = `activity-${state.nextId++}`;
      state.shown.push({ id, conversationId: r.conversationId, ...(r.replyToId !== undefined ? { replyToId: r.replyToId } : {}), activity: content(activity), history: [content(activity)], ...(stream ? { stream } : {}), deleted: false });
      return id;
    };
    if (r.method === 'DELETE') {
      const message = findShown(r.conversationId, r.activityId);
      if (message) message.deleted = true;
      return { status: 200, body: {} };
    }
    if (r.method === 'PUT') {
      const message = findShown(r.conversationId, r.activityId)!;
      message.activity = content(r.activity);
      message.history.push(content(r.activity));
      if (message.stream === 'open') message.stream = 'stopped';
      return { status: 200, body: { id: message.id } };
    }
    const info = streamInfo(r);
    if (info !== undefined) {
      if (info.streamId === undefined) {
        r.id = add(r.activity, 'open');
        return { status: 201, body: { id: r.id } };
      }
      const stream = findShown(r.conversationId, info.streamId)!;
      const { attachments, ...rest } = r.activity;
      // A final message with text and a card: the card becomes a message of its own (as in the Agents Playground).
      const split = info.streamType === 'final' && hasText(r.activity) && hasAttachments(r.activity);
      stream.activity = content(split ? rest : r.activity);
      stream.history.push(stream.activity);
      if (info.streamType === 'final') stream.stream = 'final';
      if (split) add({ ...rest, text: undefined, attachments });
      return { status: 202, body: {} };
    }
    if (r.activity.type !== 'message') return { status: 200, body: {} };
    if (hasText(r.activity) && hasAttachments(r.activity)) {
      const { attachments, ...rest } = r.activity;
      add(rest);
      add({ ...rest, text: undefined, attachments });
      return { status: 202, body: {} };
    }
    r.id = add(r.activity);
    return { status: 200, body: { id: r.id } };
  }

  /** A hosted file, as its `trouble` says; a hung or stalled one stays open until the client hangs up (or close()). */
  function serveBlob(res: ServerResponse, path: string, bytes: Buffer, contentType: string): void {
    state.downloads.push(path);
    state.openDownloads += 1;
    res.on('close', () => (state.openDownloads -= 1));
    const trouble = state.troubles.get(path);
    if (trouble === 'hang') return;
    if (trouble === 'forbidden') {
      sendJson(res, 403, { error: { code: 'accessDenied', message: 'Access denied' } });
      return;
    }
    res.writeHead(200, { 'content-type': trouble === 'html' ? 'text/html; charset=utf-8' : contentType, 'content-length': bytes.length });
    if (trouble === 'stall') return void res.write(bytes.subarray(0, bytes.length / 2));
    res.end(bytes);
  }

  const fake: FakeTeams = {
    url: server.url,
    serviceUrl: `${server.url}/`,
    appId,
    appPassword,
    botId: `28:${appId}`,
    endpoints: {
      openIdMetadataUrl: `${server.url}/v1/.well-known/openidconfiguration`,
      tokenIssuer,
      loginUrl: `${server.url}/botframework.com`,
      oAuthScope: tokenIssuer,
      graphUrl: `${server.url}/graph/v1.0`,
      graphLoginUrl: `${server.url}/graph-login`,
    },
    recorded: state.recorded,
    shown(conversationPrefix) {
      return state.shown
        .filter((m) => !m.deleted && (conversationPrefix === undefined || m.conversationId.startsWith(conversationPrefix)))
        .map(({ deleted: _deleted, ...message }) => message);
    },
    expireStreams() {
      for (const m of state.shown) if (m.stream === 'open') m.stream = 'stopped';
    },
    failures: state.failures,
    issuedTokens: state.issuedTokens,
    downloads: state.downloads,
    oneDrive,
    teamAadGroupId: '8d5a2c1e-0000-4000-8000-00000000feed',
    channelDriveId: 'b!finance-documents',
    graphRequests: state.graphRequests,
    connectorDelayMs: 0,
    denyGraph: false,
    refuseStreaming: false,
    async signToken(claims = {}, otherKey = false) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ serviceurl: claims.serviceurl ?? `${server.url}/` })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setIssuer(claims.iss ?? tokenIssuer)
        .setAudience(claims.aud ?? appId)
        .setNotBefore(now - 60)
        .setIssuedAt(now - 60)
        .setExpirationTime(now + (claims.expSeconds ?? 600))
        .sign(otherKey ? other.privateKey : privateKey);
    },
    get openDownloads() {
      return state.openDownloads;
    },
    hostDownload(bytes, trouble) {
      const path = `/download/${state.nextId++}`;
      state.blobs.set(path, bytes);
      if (trouble !== undefined) state.troubles.set(path, trouble);
      return `${server.url}${path}`;
    },
    hostRedirect(location) {
      const path = `/redirect/${state.nextId++}`;
      state.redirects.set(path, location);
      return `${server.url}${path}`;
    },
    hostInlineImage(bytes, trouble) {
      const path = `/v3/attachments/0-eus-d${state.nextId++}/views/original`;
      state.blobs.set(path, bytes);
      if (trouble !== undefined) state.troubles.set(path, trouble);
      return `${server.url}${path}`;
    },
    hostGraphMessage(path, files, options = {}) {
      const attachments = files.map((f, i) => {
        const driveId = f.driveId ?? fake.channelDriveId;
        const folder = f.folder ?? 'General';
        const site = driveId === fake.channelDriveId ? 'sites/Finance/Shared%20Documents' : `personal/${encodeURIComponent(driveId)}/Documents`;
        const contentUrl = `https://contoso.sharepoint.com/${site}/${folder.split('/').map(encodeURIComponent).join('/')}/${encodeURIComponent(f.name)}`;
        const id = `item-${state.nextId++}`;
        state.items.set(`${driveId}/${id}`, { id, name: f.name, driveId, folder, bytes: f.bytes, ...(f.trouble !== undefined ? { trouble: f.trouble } : {}) });
        state.shares.set(contentUrl, `${driveId}/${id}`);
        return { id: `att-${i}`, contentType: 'reference', contentUrl, name: f.name };
      });
      state.graphMessages.set(path, { attachments, ...(options.from !== undefined ? { from: { user: { id: options.from } } } : {}) });
      return attachments;
    },
    oneDriveOf(userId) {
      const driveId = `b!onedrive-${userId}`;
      state.drives.set(driveId, userId);
      return driveId;
    },
    holdGraph() {
      let release!: () => void;
      state.graphGate = new Promise((resolve) => (release = resolve));
      return () => {
        state.graphGate = undefined;
        release();
      };
    },
    failNext(count, failure, method = 'POST') {
      for (let i = 0; i < count; i++) state.pendingFailures.push({ ...failure, method });
    },
    waitFor(predicate, timeoutMs = 10_000) {
      const found = [...state.recorded, ...state.failures].find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('record', onRecord);
          reject(new Error(`fake teams: nothing matching was posted; recorded:\n${JSON.stringify(state.recorded.map(summary), null, 1)}`));
        }, timeoutMs);
        const onRecord = (r: RecordedActivity) => {
          if (!predicate(r)) return;
          clearTimeout(timer);
          events.off('record', onRecord);
          resolve(r);
        };
        events.on('record', onRecord);
      });
    },
    messages(conversationPrefix) {
      return state.recorded.filter(
        (r) => r.method === 'POST' && r.activity.type === 'message' && (conversationPrefix === undefined || r.conversationId.startsWith(conversationPrefix)),
      );
    },
    reset() {
      state.recorded.length = 0;
      state.failures.length = 0;
      state.downloads.length = 0;
      state.pendingFailures.length = 0;
      state.graphRequests.length = 0;
      state.shown.length = 0;
      state.graphGate = undefined;
      fake.connectorDelayMs = 0;
      fake.denyGraph = false;
      fake.refuseStreaming = false;
      oneDrive.reset();
    },
    close: () => server.close(),
  };
  return fake;
}

const hasText = (activity: Record<string, any>) => typeof activity.text === 'string' && activity.text.trim() !== '';
const hasAttachments = (activity: Record<string, any>) => Array.isArray(activity.attachments) && activity.attachments.length > 0;

function summary(r: RecordedActivity) {
  return { method: r.method, conversationId: r.conversationId, type: r.activity.type, text: String(r.activity.text ?? '').slice(0, 80) };
}
