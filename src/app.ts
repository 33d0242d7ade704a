import { type DestinationStream, pino, type Logger } from 'pino';
import type { Config } from './config/index.js';
import { type ConversationService, createConversationService, createStore, CrunchError, type Engine, helpText, type Reply, type Store } from './core/index.js';
import { createLocalEngine } from './engines/local/index.js';
import { createResponsesEngine } from './engines/responses/index.js';

/** The composition root shared by the server, the CLI and the tests: store + engine + core. */
export interface Crunch {
  config: Config;
  logger: Logger;
  store: Store;
  engine: Engine;
  core: ConversationService;
  close(): Promise<void>;
}

/**
 * Where credentials can appear in what gets logged: request headers on SDK errors (openai, axios in
 * botbuilder, Slack's WebClient), token fields of configs. Censored before a line is written.
 */
export const REDACTED_PATHS = [
  'headers.authorization',
  'headers["api-key"]',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["api-key"]',
  'err.config.headers.Authorization',
  'err.config.headers.authorization',
  'err.request.headers.authorization',
  'err.response.config.headers.Authorization',
  '*.token',
  '*.botToken',
  '*.appToken',
  '*.apiKey',
  '*.appPassword',
  '*.signingSecret',
  '*.client_secret',
];

/** Logs go to stderr as JSON lines, so stdout stays free for the CLI's answers. */
export function createLogger(level: Config['logLevel'], destination: DestinationStream = pino.destination({ fd: 2, sync: false })): Logger {
  return pino({ level, base: { app: 'crunch' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}

/** An engine with what the app needs around it: extra `help` lines and a way to stop it. */
export interface EngineHandle {
  engine: Engine;
  helpLines(): string[];
  close(): Promise<void>;
}

/** The configured engine, started: the local one checks its sandbox first and refuses to run without one. */
export async function createEngine(config: Config, logger: Logger): Promise<EngineHandle> {
  if (!config.openai) throw new CrunchError('config', 'No engine is configured: set OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT.');
  const retry = { maxAttempts: config.limits.maxAttempts, baseDelayMs: config.limits.retryBaseDelayMs };
  if (config.engine === 'local') {
    const engine = createLocalEngine({
      ...config.local,
      api: config.openai,
      retry,
      maxFileBytes: config.limits.maxFileBytes,
      logger: logger.child({ engine: 'local' }),
    });
    await engine.start();
    return { engine, helpLines: () => engine.helpLines(), close: () => engine.close() };
  }
  const engine = createResponsesEngine({ api: config.openai, retry, maxFileBytes: config.limits.maxFileBytes, logger: logger.child({ engine: 'responses' }) });
  return { engine, helpLines: () => [], close: async () => undefined };
}

export async function createCrunch(config: Config, logger: Logger, engine?: Engine): Promise<Crunch> {
  const handle: EngineHandle = engine ? { engine, helpLines: () => [], close: async () => undefined } : await createEngine(config, logger);
  let store: Store;
  try {
    store = await createStore(config.storeUrl);
  } catch (err) {
    await handle.close();
    throw err;
  }
  const service = createConversationService({ store, engine: handle.engine, limits: config.limits, logger });
  const core = withEngineHelp(service, helpText(config.limits), handle.helpLines);
  return {
    config,
    logger,
    store,
    engine: handle.engine,
    core,
    async close() {
      await core.idle();
      await handle.close();
      await store.close();
    },
  };
}

/**
 * Adds the engine's own lines (where code runs, its limits, the Python packages) to the core's `help`
 * answer, on every platform: the reply handed back and the one delivered.
 */
function withEngineHelp(core: ConversationService, help: string, lines: () => string[]): ConversationService {
  const extend = (reply: Reply): Reply => {
    const extra = lines();
    return reply.kind === 'help' && reply.text === help && extra.length > 0 ? { ...reply, text: `${help}\n${extra.join('\n')}` } : reply;
  };
  return {
    handle: async (turn, progress, deliver) => {
      const reply = await core.handle(turn, progress, deliver && ((r) => deliver(extend(r))));
      return reply && extend(reply);
    },
    idle: () => core.idle(),
  };
}
