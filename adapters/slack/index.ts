import { App } from '@slack/bolt';
import { WebClient, type WebClientOptions } from '@slack/web-api';
import type { Logger } from 'pino';
import {
  type ConversationService,
  CrunchError,
  InFlight,
  KeyedSerialQueue,
  type RouteHandler,
  type Store,
  textReply,
  toUserMessage,
} from '../../src/core/index.js';
import { buildTurn, collectFiles, type FileAccess, isDirectMessage, messageKeyOf, teamOf, threadKey, threadOf, triageEvent } from './receive.js';
import { apiUrlOption, EventsReceiver, SocketReceiver, toBoltLogger } from './receivers.js';
import { createTurnPresenter, type RenderContext, slackErrorCode, type TurnPresenter } from './render.js';
import {
  type BotIdentity,
  resolveOptions,
  type SlackAdapter,
  type SlackAdapterConfig,
  type SlackEnvelope,
  type SlackFile,
  type SlackMessageEvent,
} from './types.js';

export type { SlackAdapter, SlackAdapterConfig } from './types.js';

export interface SlackAdapterDeps {
  core: ConversationService;
  store: Store;
  logger: Logger;
}

/** How long this process remembers a message it has seen, so that a twin or a retry shows no second progress. */
const SEEN_TTL_MS = 10 * 60 * 1000;

/**
 * Crunch on Slack, with Bolt. Socket Mode when an app token is configured, otherwise the HTTP Events API as a
 * route on the bot's own server. Every event is acknowledged before any work (Bolt acks Events API requests
 * before listeners run, and listeners only start the turn); the core's `handle` deduplicates retries and twins.
 */
export function createSlackAdapter(config: SlackAdapterConfig, deps: SlackAdapterDeps): SlackAdapter {
  const options = resolveOptions(config);
  const log = deps.logger.child({ adapter: 'slack' });
  const mode = config.appToken !== undefined && config.appToken !== '' ? 'socket' : 'http';
  if (mode === 'http' && !config.signingSecret) {
    throw new CrunchError('config', 'SLACK_SIGNING_SECRET is required for the HTTP Events API (or set SLACK_APP_TOKEN to use Socket Mode).');
  }
  const boltLogger = toBoltLogger(log);
  const clientOptions: WebClientOptions = {
    logger: boltLogger,
    retryConfig: options.retryConfig,
    // Deliberate: answers wait out a 429 (Retry-After) and retry rather than fail; progress uses `quick` below.
    rejectRateLimitedCalls: false,
    timeout: options.requestTimeoutMs,
    ...apiUrlOption(config.apiUrl),
  };
  const receiver = mode === 'http' ? new EventsReceiver(config.signingSecret!, options.now, boltLogger, log) : undefined;
  const socket =
    mode === 'socket'
      ? new SocketReceiver({
          appToken: config.appToken!,
          logger: boltLogger,
          clientPingTimeout: options.socketPingTimeoutMs,
          installerOptions: {
            clientOptions: {
              // apps.connections.open goes to the same API host as every other call (GovSlack, or a fake in tests).
              ...apiUrlOption(config.apiUrl),
              timeout: options.requestTimeoutMs,
              // The SDK's own policy for this call (100 retries, ×1.3), but at most 30 s apart: after a long outage
              // the reconnection is half a minute away, not hours. (A wrong token is not retried: start() fails.)
              retryConfig: { retries: 100, factor: 1.3, maxTimeout: 30_000 },
            },
          },
        })
      : undefined;
  const app = new App({
    token: config.botToken,
    logger: boltLogger,
    clientOptions: { ...clientOptions },
    deferInitialization: true,
    receiver: receiver ?? socket!,
  });
  const client = new WebClient(config.botToken, clientOptions);
  const quick = new WebClient(config.botToken, { ...clientOptions, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
  const render: RenderContext = { client, quick, options, capabilities: { setStatus: true, streaming: options.streaming } };

  const inflight = new InFlight();
  const track = <T>(work: Promise<T>): Promise<T> => inflight.track(work);
  let ready = false;
  let stopping = false;
  receiver?.onProcessing(track);
  socket?.onProcessing(track, () => !stopping);
  socket?.client.on('reconnecting', () => log.info('Socket Mode: reconnecting (Slack refreshed or dropped the connection)'));
  const allowedBots: ReadonlySet<string> = new Set(config.allowedBotIds ?? []);

  const seen = new Map<string, number>();
  function firstSighting(key: string): boolean {
    const now = Date.now();
    if (seen.size > 5000) for (const [k, at] of seen) if (now - at > SEEN_TTL_MS) seen.delete(k);
    const at = seen.get(key);
    seen.set(key, now);
    return at === undefined || now - at > SEEN_TTL_MS;
  }

  app.error(async (error) => {
    log.error({ err: error }, 'Slack event processing failed');
  });

  const listener = async (args: { event: unknown; body: unknown; context: { botUserId?: string; botId?: string; retryNum?: number } }) => {
    const event = args.event as SlackMessageEvent;
    const envelope = args.body as SlackEnvelope;
    const bot: BotIdentity = { userId: args.context.botUserId, botId: args.context.botId };
    const verdict = triageEvent(event, bot, allowedBots);
    if (verdict.action === 'ignore') {
      // The bot id is logged so that an operator can find the one to put in SLACK_ALLOWED_BOT_IDS.
      log.debug({ type: event.type, subtype: event.subtype, reason: verdict.reason, ...(event.bot_id !== undefined ? { botId: event.bot_id } : {}) }, 'event ignored');
      return;
    }
    // Not awaited: the turn runs after this listener returns (the event is already acknowledged).
    void track(
      runTurn(event, envelope, bot, verdict.action === 'check-thread', args.context.retryNum).catch((err: unknown) =>
        log.error({ err }, 'Slack turn failed'),
      ),
    );
  };
  app.event('app_mention', listener);
  app.event('message', listener);

  const files: FileAccess = {
    botToken: config.botToken,
    downloadTimeoutMs: options.downloadTimeoutMs,
    downloadIdleTimeoutMs: options.downloadIdleTimeoutMs,
    apiUrl: config.apiUrl,
    fileInfo: async (id) => (await client.files.info({ file: id })).file as SlackFile,
  };

  /**
   * The steps before `handle`, chained per thread. `handle` takes the turn's place in its conversation when called,
   * so the order of the calls is the order of the answers: a message whose preparation is slow (a Slack Connect file,
   * a slow store) must not let the next message of its thread overtake it. Each link ends once its turn is handed to
   * the core (and its thread remembered), not when it is answered; other threads are not held up.
   */
  const preparing = new KeyedSerialQueue();

  /** Called synchronously from the listener, so that turns of a thread queue up in the order their events arrived. */
  async function runTurn(event: SlackMessageEvent, envelope: SlackEnvelope, bot: BotIdentity, mustKnowThread: boolean, retryNum?: number) {
    const team = teamOf(envelope, event);
    const thread = threadOf(event);
    const key = threadKey(team, event.channel, thread);
    const messageKey = messageKeyOf(team, event);
    const turnLog = log.child({ message: messageKey, ...(retryNum !== undefined ? { retryNum } : {}) });
    let first = false;
    let presenter: TurnPresenter | undefined;
    const show = (): TurnPresenter => {
      first = firstSighting(messageKey);
      presenter = createTurnPresenter(
        render,
        {
          channel: event.channel,
          threadTs: thread,
          userId: event.user ?? '',
          userTeamId: event.user_team ?? event.team ?? team,
          // Another bot gets the answer whole: nobody watches it typed, and a stream's recipient must be a person.
          streaming: event.bot_id === undefined,
        },
        turnLog,
      );
      if (first) presenter.begin();
      return presenter;
    };
    // A message that is certainly for the bot shows progress at once; a thread reply once the thread is known.
    if (!mustKnowThread) show();

    const handed = preparing.run(key, async () => {
      if (mustKnowThread && (await deps.store.get<boolean>(key).catch(() => undefined)) !== true) return undefined;
      const shown = presenter ?? show();
      // Remember the thread before answering, so that a follow-up sent meanwhile is taken too.
      const remembered = isDirectMessage(event)
        ? Promise.resolve()
        : deps.store.set(key, true, options.threadTtlMs).catch((err: unknown) => turnLog.warn({ err }, 'could not remember the thread'));
      const { attachments, notices } = await collectFiles(event.files ?? [], files);
      // The core posts the reply itself, inside the conversation's turn: replies of a thread never interleave.
      const reply = deps.core.handle(buildTurn({ team, event, bot, attachments, notices }), shown.progress, (r) => shown.deliver(r));
      // The next message of this thread is checked against the store only once the thread is remembered.
      await remembered;
      // Wrapped: resolving the link must not wait for the answer.
      return { shown, reply };
    });

    let outcome: Awaited<typeof handed>;
    try {
      outcome = await handed;
    } catch (err) {
      // Not handed to the core (nothing above should throw): answer with the error, outside the conversation's queue.
      turnLog.error({ err }, 'preparing the turn failed');
      if (presenter !== undefined) await presenter.deliver(textReply('error', toUserMessage(err)));
      return;
    }
    if (outcome === undefined) {
      log.debug({ channel: event.channel, thread }, 'reply in a thread Crunch is not part of: ignored');
      return;
    }
    // handle() never rejects; undefined means a retried delivery or a twin that another event already answers.
    if ((await outcome.reply) === undefined && first) await outcome.shown.abandon();
  }

  const routes: RouteHandler[] =
    receiver === undefined
      ? []
      : [
          async (req, res) => {
            if ((req.url ?? '/').split('?')[0] !== options.eventsPath) return false;
            if (req.method !== 'POST') {
              res.writeHead(405, { allow: 'POST' });
              res.end();
              return true;
            }
            if (!ready || stopping) {
              // Not acknowledged: Slack delivers it again, once this bot is up or to another replica.
              res.writeHead(503, { 'retry-after': '5' });
              res.end();
              return true;
            }
            await receiver.handle(req, res);
            return true;
          },
        ];

  async function idle(): Promise<void> {
    await inflight.idle();
  }

  return {
    name: 'slack',
    mode,
    routes,
    async start() {
      try {
        await app.init();
      } catch (err) {
        const code = slackErrorCode(err);
        throw new CrunchError(
          'config',
          code !== undefined
            ? `Slack rejected SLACK_BOT_TOKEN (${code}): copy the Bot User OAuth Token (xoxb-…) from the app's "OAuth & Permissions" page.`
            : `Could not reach Slack to check SLACK_BOT_TOKEN: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (mode === 'socket') {
        try {
          await app.start();
        } catch (err) {
          throw new CrunchError(
            'config',
            `Could not open the Socket Mode connection (${slackErrorCode(err) ?? (err as Error).message}): check SLACK_APP_TOKEN, an app-level token (xapp-…) with the connections:write scope, and that Socket Mode is on in the app settings.`,
            { cause: err },
          );
        }
      }
      ready = true;
      log.info({ mode, ...(allowedBots.size > 0 ? { allowedBotIds: [...allowedBots] } : {}) }, 'Slack adapter ready');
    },
    async stop() {
      stopping = true;
      // Socket Mode: resolves once the connection is closed (Slack redelivers what was not acknowledged).
      if (mode === 'socket') await app.stop().catch((err: unknown) => log.warn({ err }, 'Socket Mode disconnect failed'));
      await idle();
    },
    idle,
  };
}
