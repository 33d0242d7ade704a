import { App } from '@slack/bolt';
import { WebClient, type WebClientOptions } from '@slack/web-api';
import type { Logger } from 'pino';
import { type Core, CrunchError, greetingText, greetOnce, InFlight, type Platform, raceAbort, type RouteHandler, type Store, type Turn } from '../../src/core/index.js';
import type { FileAccess } from './files/download.js';
import { markdownToSlack } from './markdown.js';
import { prepareFiles } from './prepare.js';
import { createPresenter, type PresentContext, slackErrorCode } from './present.js';
import { buildTurn, teamOf, triageEvent } from './receive.js';
import { apiUrlOption, EventsReceiver, HeldAcks, SocketReceiver, toBoltLogger } from './transport/receivers.js';
import {
  type BotIdentity,
  resolveOptions,
  type SlackAdapter,
  type SlackAdapterConfig,
  type SlackAddress,
  type SlackAppHomeOpenedEvent,
  type SlackEnvelope,
  type SlackFile,
  type SlackMessageEvent,
} from './types.js';

export type { SlackAdapter, SlackAdapterConfig } from './types.js';

export interface SlackAdapterDeps {
  core: Pick<Core, 'handle'>;
  /** Remembers whom Crunch greeted. */
  store: Store;
  logger: Logger;
}

/** Slack's retries of an unacknowledged event: the last one comes about five minutes after the first delivery. */
const LAST_RETRY = 3;

/**
 * Crunch on Slack, with Bolt: Socket Mode when an app token is configured, otherwise the HTTP Events API as a
 * route on the bot's own server. A delivery is verified, made a Turn and handed to the core, and Slack is
 * acknowledged once the core has recorded it (or told to deliver it again when the store cannot); the core's
 * workers then prepare its files and present it through `platform`. A person is greeted once, in their DM with
 * Crunch, when they first open its Messages tab (`app_home_opened`) or, where that event is not subscribed, at
 * their first DM: straight through the Web API rather than as a turn (nothing runs; greetOnce keeps it to once).
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
  const acks = new HeldAcks();
  const receiver = mode === 'http' ? new EventsReceiver(config.signingSecret!, options.now, boltLogger, log, acks) : undefined;
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
  const app = new App({ token: config.botToken, logger: boltLogger, clientOptions: { ...clientOptions }, deferInitialization: true, receiver: receiver ?? socket! });
  const client = new WebClient(config.botToken, clientOptions);
  const quick = new WebClient(config.botToken, { ...clientOptions, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
  const present: PresentContext = { client, quick, options, capabilities: { setStatus: true, streaming: options.streaming } };

  const inflight = new InFlight();
  const track = <T>(work: Promise<T>): Promise<T> => inflight.track(work);
  let ready = false;
  let stopping = false;
  receiver?.onProcessing(track);
  socket?.onProcessing(track, () => !stopping, acks);
  socket?.client.on('reconnecting', () => log.info('Socket Mode: reconnecting (Slack refreshed or dropped the connection)'));
  const allowedBots: ReadonlySet<string> = new Set(config.allowedBotIds ?? []);

  app.error(async (error) => {
    log.error({ err: error }, 'Slack event processing failed');
  });

  app.event('app_mention', receive);
  app.event('message', receive);
  app.event('app_home_opened', async ({ event, body }) => {
    const opened = event as SlackAppHomeOpenedEvent;
    if (opened.tab === 'messages') void track(greet(teamOf(body as SlackEnvelope, opened), opened.user, opened.channel));
  });

  /** A delivery → a Turn handed to the core; Slack is acknowledged once this returns (see HeldAcks). */
  async function receive(args: { event: unknown; body: unknown; context: { botUserId?: string; botId?: string; retryNum?: number } }): Promise<void> {
    const event = args.event as SlackMessageEvent;
    const bot: BotIdentity = { userId: args.context.botUserId, botId: args.context.botId };
    const verdict = triageEvent(event, bot, allowedBots);
    if (verdict.action === 'ignore') {
      // The bot id is logged so that an operator can find the one to put in SLACK_ALLOWED_BOT_IDS.
      log.debug({ type: event.type, subtype: event.subtype, reason: verdict.reason, ...(event.bot_id !== undefined ? { botId: event.bot_id } : {}) }, 'event ignored');
      return;
    }
    const turn = buildTurn(teamOf(args.body as SlackEnvelope, event), event, bot);
    if (verdict.action === 'accept' && verdict.reason === 'dm' && event.bot_id === undefined && event.user !== undefined) void track(greet(turn.conversation.workspace, event.user, event.channel));
    const handled = await deps.core.handle(turn, { onlyIfJoined: verdict.action === 'check-thread' });
    if (handled.status === 'ignored') log.debug({ channel: event.channel }, 'reply in a thread Crunch is not part of: ignored');
    if (handled.status !== 'unavailable') return;
    // The store cannot record it. Slack delivers an unacknowledged event again, three times over about five
    // minutes: the person is told at once that the answer is coming, and, if the last retry fails too, to resend.
    const retryNum = args.context.retryNum ?? 0;
    if (retryNum < LAST_RETRY) acks.refuse(args.body as object);
    if (retryNum === 0 || retryNum >= LAST_RETRY) await apologise(turn, retryNum >= LAST_RETRY);
  }

  /** The greeting, in the person's DM with Crunch, once per person and workspace; after the acknowledgement. */
  async function greet(team: string, user: string, channel: string): Promise<void> {
    try {
      const greeted = await greetOnce(deps.store, `slack:${team}:${user}`, async () => {
        await client.chat.postMessage({ channel, text: markdownToSlack(greetingText()) });
      });
      if (greeted) log.info({ user }, 'greeted a person in their DM');
    } catch (err) {
      log.warn({ err, user }, 'could not greet a person in their DM');
    }
  }

  async function apologise(turn: Turn, final: boolean): Promise<void> {
    const to = turn.platformData as unknown as SlackAddress;
    const text = final
      ? ':warning: I still cannot reach my storage, so I could not take this message. Please send it again in a few minutes.'
      : ':hourglass_flowing_sand: I cannot reach my storage right now, so I will answer this as soon as I can (Slack will pass it to me again).';
    await quick.chat.postMessage({ channel: to.channel, thread_ts: to.threadTs, text }).catch((err: unknown) => log.warn({ err }, 'could not post the apology'));
  }

  const files: FileAccess = {
    botToken: config.botToken,
    downloadTimeoutMs: options.downloadTimeoutMs,
    downloadIdleTimeoutMs: options.downloadIdleTimeoutMs,
    apiUrl: config.apiUrl,
    fileInfo: async (id, signal) => (await raceAbort(client.files.info({ file: id }), signal)).file as SlackFile,
  };

  const platform: Platform = {
    name: 'slack',
    prepare: (turn, signal) => prepareFiles(turn, files, signal),
    present: (turn, ledger) => createPresenter(present, turn.platformData as unknown as SlackAddress, ledger, log.child({ message: turn.messageKey })),
  };

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

  return {
    name: 'slack',
    mode,
    routes,
    platform,
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
      await inflight.idle();
    },
    idle: () => inflight.idle(),
  };
}
