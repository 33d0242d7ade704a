import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { createCrunch, createLogger, logDestination } from '../app.js';
import { type Config, loadConfig, type OpenAIConfig } from '../config/index.js';
import type { ChatAdapter } from '../core/index.js';
import { readinessRoute, startServer } from '../server/index.js';
import { type Check, modelCheck } from './checks.js';

/** How long start-up waits for the key check before it says it is up (the check goes on; its result still counts). */
const KEY_CHECK_WAIT_MS = 3000;
/** While the key is refused, how often it is checked again (a key re-enabled, credit added). */
const KEY_RECHECK_MS = 60_000;

export async function run(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, await logDestination(config.logFormat));
  const code = await serve(config, logger);
  // Shut down: idle keep-alive sockets of the SDKs' HTTP agents would hold the process for seconds more.
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  process.exit(code);
}

/**
 * The engine's key and model, checked at start-up and logged in words an operator acts on. A refused key or
 * a missing model does not stop the server: people still get a reply saying the service refused the
 * credentials (rather than silence), the check is repeated, and `/readyz` answers 503 meanwhile, so an
 * orchestrator keeps a bad rollout from replacing working replicas. A provider that does not answer is only
 * a warning: that is an outage, not the configuration.
 */
function watchEngineKey(api: OpenAIConfig, logger: Logger): { problem(): string | undefined; started: Promise<unknown>; stop(): void } {
  let problem: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const check = async (): Promise<void> => {
    const result: Check = await modelCheck(api).catch((err: unknown) => ({ outcome: 'unreachable', subject: 'engine', detail: String(err) }) as Check);
    const before = problem;
    problem = result.outcome === 'fix' ? `${result.detail}: ${result.fix}` : undefined;
    if (result.outcome === 'fix') {
      if (before === undefined) logger.error({ fix: result.fix }, `${result.detail}. Crunch is serving, but every question gets an error and /readyz answers 503 until this is fixed: ${result.fix}`);
      timer ??= setInterval(() => void check(), KEY_RECHECK_MS).unref();
    } else {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      if (before !== undefined) logger.info(`${result.subject}: ${result.detail} now`);
      if (result.outcome === 'unreachable') logger.warn({ fix: result.fix }, `could not check the ${result.subject} key: ${result.detail}`);
    }
  };
  return { problem: () => problem, started: check(), stop: () => clearInterval(timer) };
}

/**
 * `crunch serve`: the bot server with every configured adapter (each platform's SDK is loaded only when it
 * is configured). On SIGINT/SIGTERM it stops taking messages, lets turns in flight finish for up to
 * CRUNCH_DRAIN_MS, hands the rest back (another replica, or the next start, resumes them), closes its
 * connections and exits.
 */
export async function serve(config: Config, logger: Logger): Promise<number> {
  // One bad turn must never take the bot down: a stray rejection from an SDK is logged, not fatal.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled promise rejection'));

  const crunch = await createCrunch(config, logger);
  try {
    await crunch.storage.claimServing();
  } catch (err) {
    await crunch.close(0);
    throw err;
  }
  const engineKey = watchEngineKey(config.openai!, logger);
  const deps = { core: crunch.core, store: crunch.store, logger };
  const adapters: ChatAdapter[] = [];
  if (config.slack) {
    const { createSlackAdapter } = await import('../../adapters/slack/index.js');
    adapters.push(createSlackAdapter(config.slack, deps));
  }
  if (config.teams.enabled) {
    const { createTeamsAdapter } = await import('../../adapters/teams/index.js');
    adapters.push(createTeamsAdapter({ ...config.teams, publicUrl: config.publicUrl }, deps));
  }
  if (adapters.length === 0) {
    logger.warn('no chat platform configured: set SLACK_BOT_TOKEN and/or MicrosoftAppId (see .env.example); serving /healthz only');
  }
  for (const adapter of adapters) crunch.core.register(adapter.platform);
  let ready = false;
  const readiness = readinessRoute(async () => {
    if (!ready) return 'starting or stopping';
    const refused = engineKey.problem();
    if (refused !== undefined) return refused;
    const timeout = new Promise<string>((resolve) => setTimeout(resolve, 1000, 'the store did not answer within 1 s').unref());
    return Promise.race([crunch.storage.ping().then(() => undefined), timeout]);
  });
  const server = await startServer({ port: config.port, routes: [readiness, ...adapters.flatMap((a) => a.routes)], logger, intake: crunch.intake });

  async function shutdown(): Promise<void> {
    ready = false;
    engineKey.stop();
    for (const adapter of adapters) await adapter.stop();
    await crunch.close();
    await server.close();
  }

  try {
    for (const adapter of adapters) await adapter.start();
  } catch (err) {
    await shutdown();
    throw err;
  }
  // Turns left unanswered by a previous run (a crash, a kill) are resumed now.
  crunch.core.start();
  await Promise.race([engineKey.started, delay(KEY_CHECK_WAIT_MS, undefined, { ref: false })]);
  ready = true;
  logger.info(
    { url: server.url, adapters: adapters.map((a) => a.name), store: crunch.storage.kind, concurrency: config.limits.concurrency },
    'crunch is up',
  );

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info({ drainMs: config.limits.drainMs }, 'shutting down: finishing turns in flight');
  await shutdown();
  logger.info('stopped');
  return 0;
}
