import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { metrics, registry, type RouteHandler } from '../core/index.js';

export interface BotServer {
  /** The base URL the server listens on, e.g. http://127.0.0.1:3978. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface BotServerOptions {
  port: number;
  /** Defaults to all interfaces; tests pass 127.0.0.1. */
  host?: string;
  routes: RouteHandler[];
  logger: Logger;
  /** Told when a request arrives and when it is answered (the core's Intake). */
  intake?: { enter(): void; leave(): void };
}

/** `GET /healthz`: the process is up and serving. */
export const healthRoute: RouteHandler = (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/healthz' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ status: 'ok' }));
  return true;
};

/**
 * `GET /readyz`: ready to take messages: started (adapters connected, workers running) and the store
 * answering within a second. 503 otherwise, with the reason; `/healthz` stays 200 meanwhile, so that an
 * orchestrator stops routing to the process without restarting it.
 */
export function readinessRoute(check: () => Promise<string | undefined>): RouteHandler {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/readyz' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const problem = await check().catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    res.writeHead(problem === undefined ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify(problem === undefined ? { status: 'ready' } : { status: 'not_ready', reason: problem }));
    return true;
  };
}

/** `GET /metrics`: Prometheus' text format (prom-client). */
export const metricsRoute: RouteHandler = async (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics' || req.method !== 'GET') return false;
  res.writeHead(200, { 'content-type': registry.contentType });
  res.end(await registry.metrics());
  return true;
};

/** The bot's HTTP server: a list of route handlers tried in order, then 404. */
export async function startServer(options: BotServerOptions): Promise<BotServer> {
  const routes = [healthRoute, metricsRoute, ...options.routes];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    options.intake?.enter();
    const finished = metrics.requestSeconds.startTimer();
    res.once('close', () => {
      finished();
      options.intake?.leave();
    });
    void (async () => {
      for (const route of routes) {
        if (await route(req, res)) return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not_found' }));
    })().catch((err: unknown) => {
      options.logger.error({ err, url: req.url }, 'route failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'internal_error' }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? 'localhost';
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
