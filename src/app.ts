import { type DestinationStream, pino, type Logger } from 'pino';
import type { Config } from './config/index.js';
import {
  type AuditSink,
  type Core,
  createCore,
  CrunchError,
  DEDUPE_TTL_MS,
  DEFAULT_RETENTION_MS,
  type Engine,
  type Governance,
  Intake,
  JOINED_TTL_MS,
  anyBudget,
  openStorage,
  priceOf,
  type Storage,
  type Store,
  withPrices,
} from './core/index.js';

/** The composition root shared by the server, the CLI and the tests: storage + engine + core. */
export interface Crunch {
  config: Config;
  logger: Logger;
  storage: Storage;
  store: Store;
  engine: Engine;
  core: Core;
  /** Deliveries being received: the server counts them, the core's workers start turns in a lull. */
  intake: Intake;
  /** Stops the workers (letting turns finish for up to `drainMs`) and closes the storage. */
  close(drainMs?: number): Promise<void>;
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

/** Logs go to stderr, so stdout stays free for the CLI's answers: JSON lines, or readable lines on a terminal. */
export function createLogger(level: Config['logLevel'], destination: DestinationStream = pino.destination({ fd: 2, sync: false })): Logger {
  return pino({ level, base: { app: 'crunch' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}

/**
 * Where logs go: readable, coloured lines (pino-pretty) when stderr is a terminal, JSON lines otherwise (a
 * log collector, a file); LOG_FORMAT=json or pretty decides instead.
 */
export async function logDestination(format: Config['logFormat'], isTTY = process.stderr.isTTY === true): Promise<DestinationStream | undefined> {
  if (format === 'json' || (format === 'auto' && !isTTY)) return undefined;
  const { default: pretty } = await import('pino-pretty');
  return pretty({ destination: 2, colorize: isTTY, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,app' });
}

/** An engine with what the app needs around it: extra `help` lines and a way to stop it. */
export interface EngineHandle {
  engine: Engine;
  helpLines(): string[];
  close(): Promise<void>;
}

/**
 * The configured engine, started: the local one checks its sandbox first and refuses to run without one.
 * Only the configured engine's module (and its SDK) is loaded.
 */
export async function createEngine(config: Config, logger: Logger): Promise<EngineHandle> {
  if (!config.openai) throw new CrunchError('config', 'No engine is configured: set OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT.');
  const retry = { maxAttempts: config.limits.maxAttempts, baseDelayMs: config.limits.retryBaseDelayMs };
  if (config.engine === 'local') {
    const { createLocalEngine } = await import('./engines/local/index.js');
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
  const api = config.openai;
  // The hosted engine and its SDK load with the first question: the server is up sooner.
  const engine = lazyEngine('responses', async () => {
    const { createResponsesEngine } = await import('./engines/responses/index.js');
    return createResponsesEngine({ api, retry, maxFileBytes: config.limits.maxFileBytes, logger: logger.child({ engine: 'responses' }) });
  });
  return { engine, helpLines: () => [], close: async () => undefined };
}

/** An engine whose module is loaded on first use. */
function lazyEngine(name: string, load: () => Promise<Engine>): Engine {
  let loading: Promise<Engine> | undefined;
  const loaded = () => (loading ??= load());
  return {
    name,
    run: async (input) => (await loaded()).run(input),
    openOutput: async (ref, signal) => (await loaded()).openOutput(ref, signal),
    forget: async (session) => {
      const engine = await loaded();
      return engine.forget ? engine.forget(session) : { files: 0, sandboxes: 0, context: false, failed: 0 };
    },
  };
}

export interface CrunchOptions {
  /** An engine instead of the configured one (tests). */
  engine?: Engine;
  /** The CLI's own turns: an inbox in this process's memory, never the replicas' (see StorageOptions). */
  privateInbox?: boolean;
}

/** Opens the storage, builds the engine and the core. Platforms register with `core` before `core.start()`. */
export async function createCrunch(config: Config, logger: Logger, options: CrunchOptions = {}): Promise<Crunch> {
  const storage = await openStorage(config.storeUrl, {
    dedupeMs: DEDUPE_TTL_MS,
    joinedMs: JOINED_TTL_MS,
    privateInbox: options.privateInbox ?? false,
    takeoverMs: config.limits.takeoverMs,
    onError: throttled(logger),
  });
  let handle: EngineHandle;
  try {
    handle = options.engine ? { engine: options.engine, helpLines: () => [], close: async () => undefined } : await createEngine(config, logger);
  } catch (err) {
    await storage.close();
    throw err;
  }
  const { engine } = handle;
  const intake = new Intake();
  const core = createCore({
    store: storage.store,
    inbox: storage.inbox,
    engine,
    limits: config.limits,
    logger,
    concurrency: config.limits.concurrency,
    intake,
    helpLines: handle.helpLines,
    governance: governance(config, logger),
    // Retention sweeps run where the shared inbox is worked (the server), not in the CLI's own.
    sweep: !(options.privateInbox ?? false),
  });
  return {
    config,
    logger,
    storage,
    store: storage.store,
    engine,
    core,
    intake,
    async close(drainMs = config.limits.drainMs) {
      await core.stop(drainMs);
      await handle.close();
      await storage.close();
    },
  };
}

/** The admin's rules (README, "For admins") from the configuration; the audit log opened when one is set. */
export function governance(config: Config, logger: Logger): Governance {
  const g = config.governance;
  const prices = withPrices(g.prices);
  if (anyBudget(g.budgets) && config.openai && priceOf(config.openai.model, prices) === undefined) {
    logger.warn(
      { model: config.openai.model },
      'a budget is set but the model has no known price, so its turns cost nothing against the budget: add it to CRUNCH_PRICES',
    );
  }
  return {
    access: { workspaces: g.allowedWorkspaces, channels: g.allowedChannels, users: g.allowedUsers, adminContact: g.adminContact },
    budgets: g.budgets,
    prices,
    showCost: g.showCost,
    retentionMs: g.retentionMs ?? DEFAULT_RETENTION_MS,
    audit: g.auditLog === undefined ? undefined : auditLog(g.auditLog),
    auditText: g.auditText,
  };
}

/**
 * The audit log: one JSON line per entry, through pino's file writer (SonicBoom), to a file (its folder made if
 * needed, appended to) or to stdout. Written synchronously: a line must not be lost when the process dies, and
 * there is one per turn.
 */
function auditLog(target: string): AuditSink {
  const destination = target === 'stdout' ? pino.destination({ fd: 1, sync: true }) : pino.destination({ dest: target, mkdir: true, append: true, sync: true });
  return (entry) => void destination.write(`${JSON.stringify(entry)}\n`);
}

/** Logs a background failure of the store at most once per 10 s per kind (a reconnecting client repeats itself). */
function throttled(logger: Logger): (err: unknown, what: string) => void {
  const last = new Map<string, number>();
  return (err, what) => {
    const now = Date.now();
    if (now - (last.get(what) ?? 0) < 10_000) return;
    last.set(what, now);
    logger.error({ err }, `store: ${what} failed`);
  };
}
