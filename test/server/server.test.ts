import { afterEach, describe, expect, it } from 'vitest';
import { type BotServer, startServer } from '../../src/server/index.js';
import { memoryLogger } from '../support/logger.js';

describe('bot server', () => {
  let server: BotServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers /healthz, tries routes in order, and 404s the rest', async () => {
    const { logger } = memoryLogger();
    server = await startServer({
      port: 0,
      host: '127.0.0.1',
      logger,
      routes: [
        (req, res) => {
          if (req.url !== '/slack/events') return false;
          res.end('slack');
          return true;
        },
      ],
    });
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${server.url}/slack/events`, { method: 'POST' })).text()).toBe('slack');
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  it('answers 500 when a route throws, and keeps serving', async () => {
    const { logger, lines } = memoryLogger();
    server = await startServer({
      port: 0,
      host: '127.0.0.1',
      logger,
      routes: [
        () => {
          throw new Error('broken route');
        },
      ],
    });
    expect((await fetch(`${server.url}/anything`)).status).toBe(500);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(lines().some((l) => l.msg === 'route failed')).toBe(true);
  });
});
