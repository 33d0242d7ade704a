import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Activity, CloudAdapter, type ConversationReference, TeamsInfo, TurnContext } from 'botbuilder';
import type { Logger } from 'pino';
import {
  type Attachment,
  type ChatAdapter,
  type ConversationService,
  conversationId,
  InFlight,
  type Reply,
  type RouteHandler,
  type Store,
} from '../../src/core/index.js';
import { authorizationFrom } from './attachments.js';
import { type BotAuthentication, createBotAuthentication, type RequestSigner } from './auth.js';
import { createFileOffers, type OfferRecipient } from './file-consent.js';
import { graphRefusedNotice, GraphPermissionError, graphSource, unreachableFileNotice } from './graph.js';
import { ProgressPresenter, type TurnIO } from './progress.js';
import { channelRefusal, receiveActivity, type Received } from './receive.js';
import { type LoadedOutput, loadReply, renderReply } from './render.js';
import { postActivity, withThrottleRetry } from './send.js';
import { createFileHost, fileUrlSecret } from './signed-urls.js';
import { DEFAULTS, type TeamsAdapterConfig } from './types.js';
import { urlPolicy } from './urls.js';

export type { TeamsAdapterConfig, TeamsEndpoints } from './types.js';

/** The Teams ChatAdapter, plus `idle()` for tests and graceful shutdown. */
export interface TeamsChatAdapter extends ChatAdapter {
  /** Resolves when every turn accepted so far has posted its answer. */
  idle(): Promise<void>;
}

export interface TeamsAdapterDeps {
  core: ConversationService;
  store: Store;
  logger: Logger;
}

/** The most of one chart or file this adapter reads into memory to post it. */
const MAX_OUTPUT_BYTES = 512 * 1024 * 1024;
/** Teams activities are a few KB; anything this large is not one. */
const MAX_BODY_BYTES = 1024 * 1024;
/** Conversation references are kept so that a restart (or a later proactive post) can still reply. */
const REFERENCE_TTL_MS = 30 * 24 * 60 * 60 * 1000;

const TENANT_REFUSAL =
  'Sorry, this Crunch bot is only available to specific organisations, and yours is not one of them. Please contact whoever installed it.';

type Turned = Extract<Received, { kind: 'turn' }>;

/** Headers a reverse proxy or tunnel adds: behind one, a remote request arrives from a local address. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

/**
 * The Teams adapter: `POST /api/messages` verifies the Bot Framework token, answers 200 at once (Teams
 * gives up after 15 s and resends), and works on the turn afterwards, posting through
 * `continueConversationAsync` with the saved conversation reference. `GET /files/<id>` serves signed links.
 * `fileConsent/invoke` (a file consent card accepted or declined) is checked and claimed, answered like the
 * SDK's InvokeResponse (HTTP 200, no body), and the upload runs afterwards the same way.
 *
 * Turns reach the core in the order their requests were accepted: each takes a place in its conversation's
 * hand-off line at once, prepares (opens the proactive context, looks up channel files through Graph), and
 * calls `core.handle` when the turns before it have been handed over. The answer is posted by the core's
 * `deliver` callback, inside the conversation's slot, so the replies of one conversation never interleave.
 */
export function createTeamsAdapter(config: TeamsAdapterConfig, deps: TeamsAdapterDeps): TeamsChatAdapter {
  const logger = deps.logger.child({ adapter: 'teams' });
  const auth: BotAuthentication = createBotAuthentication(config, logger);
  const adapter = new CloudAdapter(auth);
  adapter.onTurnError = async (_context, err) => logger.error({ err }, 'teams turn failed');
  const now = config.now ?? Date.now;
  const appId = config.appId ?? '';
  const authenticationOff = config.appId === undefined;
  const maxMessageBytes = config.maxMessageBytes ?? DEFAULTS.maxMessageBytes;
  const files = createFileHost({
    store: deps.store,
    publicUrl: config.publicUrl,
    secret: fileUrlSecret(config.fileUrlSecret, config.appPassword),
    ttlMs: config.fileUrlTtlMs ?? DEFAULTS.fileUrlTtlMs,
    now,
    logger,
  });
  const offers = createFileOffers({ store: deps.store, files, now, logger });
  const graph = graphSource(config, logger);
  const inflight = new InFlight();
  const handoffs = new HandOffLine();
  let stopping = false;

  const messages: RouteHandler = async (req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/api/messages') return false;
    const reply = (status: number, body: unknown = {}) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return true;
    };
    if (req.method !== 'POST') return reply(405, { error: 'method_not_allowed' });
    if (stopping) return reply(503, { error: 'shutting_down' });
    if (authenticationOff) {
      // Unauthenticated mode is for the local Playground: an exposed server would let anyone run the engine
      // and make the bot call any serviceUrl they name.
      if (!isLoopback(req.socket.remoteAddress)) {
        logger.warn({ remote: req.socket.remoteAddress }, 'teams request refused: authentication is off, so only local requests are accepted');
        return reply(401, { error: 'unauthorized' });
      }
      // A reverse proxy or tunnel on this machine makes remote requests look local; they say so in these headers.
      const forwarded = FORWARDING_HEADERS.filter((h) => req.headers[h] !== undefined);
      if (forwarded.length > 0) {
        logger.warn(
          { remote: req.socket.remoteAddress, headers: forwarded },
          'teams request refused: authentication is off and the request came through a proxy or tunnel (forwarding headers), so it may not be local',
        );
        return reply(401, { error: 'unauthorized' });
      }
    }
    const activity = await readJson(req).catch(() => undefined);
    if (activity === undefined || typeof activity.type !== 'string') return reply(400, { error: 'bad_activity' });
    try {
      await auth.authenticateRequest(activity as Activity, req.headers.authorization ?? '');
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode === 500 ? 503 : 401;
      logger.warn({ err: { message: (err as Error).message }, status }, 'teams request refused: token not valid');
      return reply(status, { error: status === 401 ? 'unauthorized' : 'cannot_verify_token' });
    }
    const notTeams = channelRefusal(activity, authenticationOff);
    if (notTeams !== undefined) {
      logger.warn({ channel: activity.channelId }, `teams request refused: ${notTeams}`);
      return reply(403, { error: 'channel_not_supported' });
    }
    if (activity.type === 'invoke') return invoke(activity, res);
    const received = receiveActivity(activity, {
      allowedTenants: config.allowedTenants,
      authorization: () => turnAuthorization(received),
      urls: urlPolicy(activity.serviceUrl, authenticationOff),
    });
    if (received.kind === 'ignore') {
      logger.debug({ reason: received.reason }, 'teams activity ignored');
      return reply(200);
    }
    const reference = TurnContext.getConversationReference(activity) as ConversationReference;
    if (received.kind === 'refuse') {
      logger.warn(
        { tenant: received.tenantId, reason: received.reason },
        received.reason === 'conflict' ? 'teams tenant refused: channelData names another tenant than the conversation' : 'teams tenant not in TEAMS_ALLOWED_TENANTS: refused',
      );
      track(post(reference, async (io) => void (await io.send({ type: 'message', text: TENANT_REFUSAL }))));
      return reply(200);
    }
    // The turn's place among its conversation's turns is taken now, before anything asynchronous.
    track(runTurn(received, reference, handoffs.take(conversationId(received.turn.conversation))));
    return reply(200);
  };

  /** Invokes: only `fileConsent/invoke`. Answered before the upload, which can take longer than Teams waits. */
  async function invoke(activity: Partial<Activity>, res: ServerResponse): Promise<true> {
    const verdict = await offers.decide(activity, config.allowedTenants);
    res.writeHead(verdict.status);
    res.end();
    if (verdict.status !== 200) {
      logger.info({ name: activity.name, status: verdict.status }, 'teams invoke not handled');
      return true;
    }
    const { decision } = verdict;
    const reference = TurnContext.getConversationReference(activity) as ConversationReference;
    // Replies go under the consent card, not under the invoke.
    reference.activityId = ('offer' in decision ? decision.offer.activityId : undefined) ?? activity.replyToId ?? activity.id;
    const log = logger.child({ conversation: reference.conversation.id, consent: decision.kind });
    const urls = urlPolicy(activity.serviceUrl, authenticationOff);
    track(post(reference, (io) => offers.settle(decision, io, log, urls)));
    return true;
  }

  /** Per-turn bot authorization for pasted images, set while the turn's proactive context is open. */
  const signers = new WeakMap<Received, RequestSigner | undefined>();
  const turnAuthorization = (received: Received) => authorizationFrom(signers.get(received));

  function track(work: Promise<void>): void {
    void inflight.track(work.catch((err: unknown) => logger.error({ err }, 'teams background work failed')));
  }

  /** Runs `work` inside a proactive turn on `reference`, replying to the user's message. */
  async function post(
    reference: ConversationReference,
    work: (io: TurnIO, signer: RequestSigner | undefined, context: TurnContext) => Promise<void>,
  ) {
    await adapter.continueConversationAsync(appId, reference, async (context) => {
      // The continuation activity has a random id; replying to the user's message keeps channel threads.
      if (reference.activityId !== undefined) context.activity.id = reference.activityId;
      const connector = context.turnState.get<{ credentials?: RequestSigner } | undefined>(adapter.ConnectorClientKey);
      await work(turnIO(context, reference, connector?.credentials), connector?.credentials, context);
    });
  }

  function turnIO(context: TurnContext, reference: ConversationReference, signer: RequestSigner | undefined): TurnIO {
    return {
      send: async (activity) => (await withThrottleRetry(() => context.sendActivity(activity), logger))?.id,
      update: async (activity) => void (await withThrottleRetry(() => context.updateActivity(activity), logger)),
      sendRaw: async (activity, options) => {
        const full = TurnContext.applyConversationReference({ ...activity }, reference) as Partial<Activity>;
        delete full.replyToId;
        return postActivity(full, await authorizationFrom(signer), options.attempts, logger);
      },
    };
  }

  async function runTurn(received: Turned, reference: ConversationReference, place: HandOffPlace): Promise<void> {
    const log = logger.child({ conversation: conversationId(received.turn.conversation), message: received.turn.messageKey });
    try {
      await deps.store.set(`teams:ref:${reference.conversation.id}`, reference, REFERENCE_TTL_MS).catch((err: unknown) => log.warn({ err }, 'could not save the conversation reference'));
      await post(reference, async (io, signer, context) => {
        signers.set(received, signer);
        const presenter = new ProgressPresenter(io, {
          typingIntervalMs: config.typingIntervalMs ?? DEFAULTS.typingIntervalMs,
          streamIntervalMs: 1000,
          streaming: (config.streaming ?? true) && received.scope === 'personal',
          // No typing in channels: Teams does not show it there, and the Playground drops the next message.
          typing: received.scope !== 'channel',
          logger: log,
          now,
        });
        const extra = await channelFiles(received, context, log);
        const turn = { ...received.turn, attachments: [...received.turn.attachments, ...extra.attachments], notices: extra.notices };
        const { id: userId, aadObjectId } = reference.user ?? { id: '' };
        const offerTo: OfferRecipient = { conversationId: reference.conversation.id, userId, ...(aadObjectId !== undefined ? { aadObjectId } : {}) };
        const answerTo = received.scope === 'personal' && (config.fileConsent ?? true) ? offerTo : undefined;
        // Earlier turns of this conversation go to the core first, however long they took to prepare.
        await place.ready;
        // Typing waits for the core: a resent activity must not show any (see ProgressPresenter.start).
        presenter.start();
        const handled = deps.core.handle(turn, presenter.sink, async (answer) => {
          await presenter.close(answer.kind === 'error' ? 'failed' : 'done');
          await deliver(answer, presenter, io, log, answerTo);
        });
        place.handedOver();
        if ((await handled) === undefined) await presenter.close('duplicate');
      });
    } finally {
      place.handedOver();
    }
  }

  /** Files Teams only hinted at: fetched through Graph when enabled, otherwise explained. */
  async function channelFiles(received: Turned, context: TurnContext, log: Logger): Promise<{ attachments: Attachment[]; notices: string[] }> {
    const hints = received.fileHints;
    if (hints.length === 0) return { attachments: [], notices: [] };
    if (graph !== undefined && received.graph !== undefined && received.tenantId !== undefined) {
      try {
        let locator = received.graph;
        if (locator.kind === 'channel' && locator.teamId === undefined) {
          // Graph addresses a team by its Azure AD group id, which message activities usually lack.
          locator = { ...locator, teamId: (await TeamsInfo.getTeamDetails(context, locator.teamThreadId)).aadGroupId };
        }
        const found = await graph.files(received.tenantId, locator);
        if (found.attachments.length > 0 || found.notices.length > 0) return found;
      } catch (err) {
        log.warn({ err }, 'microsoft graph file lookup failed');
        if (err instanceof GraphPermissionError) return { attachments: [], notices: hints.map((h) => graphRefusedNotice(h, err.permission)) };
      }
    }
    return { attachments: [], notices: hints.map((h) => unreachableFileNotice(h, received.scope, graph !== undefined)) };
  }

  /** Posts the answer's parts in order; `offerTo` (personal chat) offers files with consent cards. */
  async function deliver(reply: Reply, presenter: ProgressPresenter, io: TurnIO, log: Logger, offerTo?: OfferRecipient): Promise<void> {
    const parts = await renderReply(await loadReply(reply, MAX_OUTPUT_BYTES), {
      maxMessageBytes,
      host: (file) => files.put(file),
      textOnly: presenter.streaming,
      ...(offerTo !== undefined ? { offer: (file: LoadedOutput) => offers.offer(file, offerTo) } : {}),
    });
    let rest = parts;
    if (presenter.streaming && parts[0]?.part === 'text' && (await presenter.endStream(parts[0].activity))) rest = parts.slice(1);
    let textFailed = false;
    for (const part of rest) {
      try {
        const id = await io.send(part.activity);
        await part.sent?.(id).catch((err: unknown) => log.warn({ err }, 'teams could not record a sent activity'));
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        log.warn({ err: { message: (err as Error).message, status }, part: part.part }, 'teams could not post part of the answer');
        if (part.fallback !== undefined) {
          const retried = await part.fallback().then((a) => io.send(a)).then(() => true, () => false);
          if (retried) continue;
        }
        if (part.part === 'text') textFailed = true;
      }
    }
    if (textFailed) {
      await io
        .send({ type: 'message', text: '⚠️ I finished, but Teams would not accept my answer message. Please ask again, perhaps for a shorter answer.' })
        .catch((err: unknown) => log.error({ err }, 'teams could not post the fallback message'));
    }
  }

  const idle = () => inflight.idle();

  return {
    name: 'teams',
    routes: [messages, files.route],
    async start() {
      if (config.appId !== undefined && !config.publicUrl.startsWith('https://')) {
        logger.warn({ publicUrl: config.publicUrl }, 'PUBLIC_URL is not https: Teams cannot load large charts or file links from it');
      }
      logger.info({ auth: config.appId !== undefined, graphFiles: graph !== undefined, tenants: config.allowedTenants.length }, 'teams adapter ready');
    },
    idle,
    async stop() {
      stopping = true;
      await idle();
    },
  };
}

interface HandOffPlace {
  /** Resolves once every earlier turn of the conversation has been handed to the core. */
  ready: Promise<void>;
  /** This turn was handed to the core (or gave up): the next one may go. Idempotent. */
  handedOver(): void;
}

/** Per conversation, the order in which turns are handed to the core: the order their requests were accepted. */
class HandOffLine {
  private readonly tails = new Map<string, Promise<void>>();

  take(key: string): HandOffPlace {
    const ready = this.tails.get(key) ?? Promise.resolve();
    let handedOver!: () => void;
    const mine = new Promise<void>((resolve) => (handedOver = resolve));
    const tail = ready.then(() => mine);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return { ready, handedOver };
  }
}

function isLoopback(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

async function readJson(req: IncomingMessage): Promise<Partial<Activity> & Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk);
  }
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
  return parsed as Partial<Activity> & Record<string, unknown>;
}
