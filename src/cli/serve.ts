import type { Logger } from 'pino';
import { createCrunch, createLogger, logDestination } from '../app.js';
import { type Config, loadConfig } from '../config/index.js';
import type { ChatAdapter } from '../core/index.js';
import { readinessRoute, startServer } from '../server/index.js';

export async function run(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, await logDestination(config.logFormat));
  const code = await serve(config, logger);
  // Shut down: idle keep-alive sockets of the SDKs' HTTP agents would hold the process for seconds more.
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  process.exit(code);
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
    const timeout = new Promise<string>((resolve) => setTimeout(resolve, 1000, 'the store did not answer within 1 s').unref());
    return Promise.race([crunch.storage.ping().then(() => undefined), timeout]);
  });
  const server = await startServer({ port: config.port, routes: [readiness, ...adapters.flatMap((a) => a.routes)], logger, intake: crunch.intake });

  async function shutdown(): Promise<void> {
    ready = false;
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
