import { type DestinationStream, pino, type Logger } from 'pino';
import type { Config } from './config/index.js';
import { type ConversationService, createConversationService, createStore, CrunchError, type Engine, type Store } from './core/index.js';
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

export function createEngine(config: Config, logger: Logger): Engine {
  if (!config.openai) throw new CrunchError('config', 'No engine is configured: set OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT.');
  return createResponsesEngine({
    api: config.openai,
    retry: { maxAttempts: config.limits.maxAttempts, baseDelayMs: config.limits.retryBaseDelayMs },
    maxFileBytes: config.limits.maxFileBytes,
    logger: logger.child({ engine: 'responses' }),
  });
}

export async function createCrunch(config: Config, logger: Logger, engine?: Engine): Promise<Crunch> {
  const store = await createStore(config.storeUrl);
  const usedEngine = engine ?? createEngine(config, logger);
  const core = createConversationService({ store, engine: usedEngine, limits: config.limits, logger });
  return {
    config,
    logger,
    store,
    engine: usedEngine,
    core,
    async close() {
      await core.idle();
      await store.close();
    },
  };
}
