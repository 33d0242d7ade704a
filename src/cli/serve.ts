import type { Logger } from 'pino';
import { createSlackAdapter } from '../../adapters/slack/index.js';
import { createTeamsAdapter } from '../../adapters/teams/index.js';
import { createCrunch } from '../app.js';
import type { Config } from '../config/index.js';
import type { ChatAdapter } from '../core/index.js';
import { startServer } from '../server/index.js';

/** `crunch serve`: the bot server with every configured adapter; stops cleanly on SIGINT/SIGTERM. */
export async function serve(config: Config, logger: Logger): Promise<number> {
  // One bad turn must never take the bot down: a stray rejection from an SDK is logged, not fatal.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled promise rejection'));

  const crunch = await createCrunch(config, logger);
  const deps = { core: crunch.core, store: crunch.store, logger };
  const adapters: ChatAdapter[] = [];
  if (config.slack) adapters.push(createSlackAdapter(config.slack, deps));
  if (config.teams.enabled) adapters.push(createTeamsAdapter({ ...config.teams, publicUrl: config.publicUrl }, deps));
  if (adapters.length === 0) {
    logger.warn('no chat platform configured: set SLACK_BOT_TOKEN and/or MicrosoftAppId (see .env.example); serving /healthz only');
  }
  const server = await startServer({ port: config.port, routes: adapters.flatMap((a) => a.routes), logger });

  async function shutdown(): Promise<void> {
    for (const adapter of adapters) await adapter.stop();
    await server.close();
    await crunch.close();
  }

  try {
    for (const adapter of adapters) await adapter.start();
  } catch (err) {
    await shutdown();
    throw err;
  }
  logger.info({ url: server.url, adapters: adapters.map((a) => a.name), store: config.storeUrl.split(':')[0] }, 'crunch is up');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info('shutting down: finishing turns in flight');
  await shutdown();
  return 0;
}
