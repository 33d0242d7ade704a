import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Activity, CloudAdapter, type ConversationReference, TurnContext } from 'botbuilder';
import type { Logger } from 'pino';
import { type ChatAdapter, type Core, InFlight, type Platform, type RouteHandler, type Store } from '../../src/core/index.js';
import { type BotAuthentication, createBotAuthentication } from './auth/auth.js';
import { type LocalRefusal, localRequestRefusal, localServiceUrlRefusal } from './auth/local.js';
import { urlPolicy } from './auth/urls.js';
import { createFileOffers } from './files/file-consent.js';
import { graphSource } from './files/graph.js';
import { createGreeter, installationOf } from './transport/greeting.js';
import { createFileHost, fileUrlSecret } from './files/signed-urls.js';
import { prepareFiles } from './prepare.js';
import { createPresenter } from './present.js';
import { channelRefusal, receiveActivity } from './receive.js';
import { ProactiveTurns } from './transport/turns.js';
import { DEFAULTS, type TeamsAdapterConfig } from './types.js';

export type { TeamsAdapterConfig, TeamsEndpoints } from './types.js';

/** The Teams ChatAdapter, plus `idle()` for tests and graceful shutdown. */
export interface TeamsChatAdapter extends ChatAdapter {
  /** Resolves when every request received so far has been handled (refusals and consent uploads posted). */
  idle(): Promise<void>;
}

export interface TeamsAdapterDeps {
  core: Pick<Core, 'handle'>;
  store: Store;
  logger: Logger;
}

/** Teams activities are a few KB; anything this large is not one. */
const MAX_BODY_BYTES = 1024 * 1024;

const TENANT_REFUSAL =
  'Sorry, this Crunch bot is only available to specific organisations, and yours is not one of them. Please contact whoever installed it.';
const STORE_DOWN = '⚠️ I cannot reach my storage right now, so I could not take your message. Please send it again in a minute.';

/**
 * Crunch on Teams, with botbuilder's CloudAdapter: `POST /api/messages` verifies the Bot Framework token, makes
 * the activity a Turn and hands it to the core, and answers 200 once the core has recorded it (Teams gives up
 * after 15 s and resends). The core's workers then prepare its files and present it through `platform`, in a
 * proactive turn on the conversation's reference. `GET /files/<id>` serves signed links; `fileConsent/invoke`
 * (a file consent card accepted or declined) is checked and claimed, answered like the SDK's InvokeResponse
 * (HTTP 200, no body), and the upload runs afterwards. An install in a personal chat is greeted once (transport/greeting.ts).
 */
export function createTeamsAdapter(config: TeamsAdapterConfig, deps: TeamsAdapterDeps): TeamsChatAdapter {
  const logger = deps.logger.child({ adapter: 'teams' });
  const auth: BotAuthentication = createBotAuthentication(config, logger);
  const adapter = new CloudAdapter(auth);
  adapter.onTurnError = async (_context, err) => logger.error({ err }, 'teams turn failed');
  const now = config.now ?? Date.now;
  const authenticationOff = config.appId === undefined;
  const files = createFileHost({
    store: deps.store,
    publicUrl: config.publicUrl,
    secret: fileUrlSecret(config.fileUrlSecret, config.appPassword),
    ttlMs: config.fileUrlTtlMs ?? DEFAULTS.fileUrlTtlMs,
    now,
    logger,
  });
  const offers = createFileOffers({ store: deps.store, files, now, logger });
  const turns = new ProactiveTurns(adapter, config.appId ?? '', logger);
  const downloads = {
    startMs: config.downloadTimeoutMs ?? DEFAULTS.downloadTimeoutMs,
    idleMs: config.downloadIdleTimeoutMs ?? DEFAULTS.downloadIdleTimeoutMs,
  };
  const graph = graphSource(config, downloads, logger);
  const inflight = new InFlight();
  const greet = createGreeter({ store: deps.store, turns, allowedTenants: config.allowedTenants, logger });
  let stopping = false;

  const platform: Platform = {
    name: 'teams',
    prepare: (turn, signal) => prepareFiles(turn, signal, { turns, graph, authenticationOff, downloads, logger }),
    present: (turn, ledger) =>
      createPresenter(turn, ledger, {
        turns,
        files,
        offers,
        streaming: config.streaming ?? true,
        fileConsent: config.fileConsent ?? true,
        typingIntervalMs: config.typingIntervalMs ?? DEFAULTS.typingIntervalMs,
        maxMessageBytes: config.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
        now,
        logger,
      }),
  };

  const messages: RouteHandler = async (req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/api/messages') return false;
    const reply = (status: number, body: unknown = {}) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      return true;
    };
    if (req.method !== 'POST') return reply(405, { error: 'method_not_allowed' });
    if (stopping) return reply(503, { error: 'shutting_down' });
    // With authentication off, only the Agents Playground on this machine, refused before anything runs (auth/local.ts).
    const refuse = (refusal: LocalRefusal) => {
      logger.warn({ remote: req.socket.remoteAddress, ...refusal.details }, `teams request refused: authentication is off and ${refusal.reason}`);
      return reply(refusal.status, { error: refusal.error });
    };
    const notLocal = authenticationOff ? localRequestRefusal(req) : undefined;
    if (notLocal !== undefined) return refuse(notLocal);
    const activity = await readJson(req).catch(() => undefined);
    if (activity === undefined || typeof activity.type !== 'string') return reply(400, { error: 'bad_activity' });
    const elsewhere = authenticationOff ? localServiceUrlRefusal(activity.serviceUrl) : undefined;
    if (elsewhere !== undefined) return refuse(elsewhere);
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
    const installation = installationOf(activity);
    if (installation !== undefined) {
      track(greet(activity, installation));
      return reply(200);
    }
    const received = receiveActivity(activity);
    if (received.kind === 'ignore') {
      logger.debug({ reason: received.reason }, 'teams activity ignored');
      return reply(200);
    }
    const reference = TurnContext.getConversationReference(activity) as ConversationReference;
    if (received.kind === 'refuse') {
      logger.warn({ tenant: received.tenantId }, 'teams tenant refused: channelData names another tenant than the conversation');
      track(turns.run(reference, async (io) => void (await io.send({ type: 'message', text: TENANT_REFUSAL }))));
      return reply(200);
    }
    const handled = await deps.core.handle(received.turn);
    // Teams does not reliably deliver an activity again, so the person is told to resend it.
    if (handled.status === 'unavailable') track(turns.run(reference, async (io) => void (await io.send({ type: 'message', text: STORE_DOWN }))));
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
    track(turns.run(reference, (io) => offers.settle(decision, io, log, urls)));
    return true;
  }

  function track(work: Promise<void>): void {
    void inflight.track(work.catch((err: unknown) => logger.error({ err }, 'teams background work failed')));
  }

  const idle = () => inflight.idle();

  return {
    name: 'teams',
    routes: [messages, files.route],
    platform,
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
