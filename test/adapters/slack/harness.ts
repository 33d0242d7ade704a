import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSlackAdapter, type SlackAdapter, type SlackAdapterConfig } from '../../../adapters/slack/index.js';
import { type Core, createCore, type Governance, openGovernance, openStorage, type Storage, type Store } from '../../../src/core/index.js';
import { type BotServer, startServer } from '../../../src/server/index.js';
import { type DeliverOptions, deliverEvent, type FakeSlack, startFakeSlack } from '../../fakes/slack.js';
import { memoryLogger } from '../../support/logger.js';
import { createFakeEngine, type FakeEngine } from '../../fakes/engine.js';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));

/** A captured Slack payload from test/fixtures/slack, with Slack's file host pointed at the fake. */
export function fixture<T = Record<string, unknown>>(name: string, fake: FakeSlack): T {
  const text = readFileSync(`${fixtures}slack/${name}.json`, 'utf8').replaceAll('https://files.slack.com/', `${fake.url}/`);
  return JSON.parse(text) as T;
}

export function sampleFile(name: string): Buffer {
  return readFileSync(`${fixtures}files/${name}`);
}

export interface Harness {
  fake: FakeSlack;
  store: Store;
  core: Core;
  adapter: SlackAdapter;
  server: BotServer;
  engine: FakeEngine;
  logs: () => Record<string, unknown>[];
  /** Delivers a payload to the bot's /slack/events, signed with the fake's secret. */
  deliver(payload: unknown, options?: Partial<DeliverOptions>): Promise<Response>;
  /** Waits until every delivered event and every turn it started is done. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** A core to drive instead of the one on the fake engine (e.g. the real responses engine from test/support/stack.ts), already started. */
export interface Backend {
  core: Core;
  store: Store;
  logs: () => Record<string, unknown>[];
}

/** Adapter settings on top of the harness's; as a function it can use the fake's tokens and ids. */
export type HarnessConfig = Partial<SlackAdapterConfig> | ((fake: FakeSlack) => Partial<SlackAdapterConfig>);

/**
 * The real Bolt adapter on the bot's real server and a fake Slack; by default a real core on a memory store
 * with a scripted engine, or the given backend. HTTP Events API unless the config sets `appToken` (Socket Mode:
 * `fake.socket` then delivers the events).
 */
export async function startHarness(config: HarnessConfig = {}, backend?: Backend, governance: Partial<Governance> = {}): Promise<Harness> {
  const fake = await startFakeSlack();
  const engine = createFakeEngine();
  const { logger, lines } = memoryLogger();
  let storage: Storage | undefined;
  let core: Core;
  let store: Store;
  if (backend === undefined) {
    storage = await openStorage('memory://', { dedupeMs: 60 * 60_000, joinedMs: 60 * 60_000 });
    store = storage.store;
    core = createCore({
      store,
      inbox: storage.inbox,
      engine,
      limits: { maxFileBytes: 5 * 1024 * 1024, maxFilesPerTurn: 5, turnTimeoutMs: 60_000 },
      logger,
      concurrency: 8,
      governance: openGovernance(governance),
    });
  } else {
    ({ core, store } = backend);
  }
  const adapter = createSlackAdapter(
    {
      botToken: fake.botToken,
      signingSecret: fake.signingSecret,
      appToken: undefined,
      apiUrl: fake.apiUrl,
      retryConfig: { retries: 2, factor: 1, minTimeout: 0, maxTimeout: 10 },
      statusIntervalMs: 0,
      firstStatusMs: 0,
      streamIntervalMs: 0,
      ...(typeof config === 'function' ? config(fake) : config),
    },
    { core, store, logger },
  );
  core.register(adapter.platform);
  if (backend === undefined) core.start();
  await adapter.start();
  const server = await startServer({ port: 0, host: '127.0.0.1', routes: adapter.routes, logger });
  return {
    fake,
    store,
    core,
    adapter,
    server,
    engine,
    logs: () => [...lines(), ...(backend?.logs() ?? [])],
    deliver: (payload, options = {}) => deliverEvent(`${server.url}/slack/events`, payload, { signingSecret: fake.signingSecret, ...options }),
    async settle() {
      await adapter.idle();
      await core.idle();
    },
    async close() {
      await adapter.stop();
      await server.close();
      if (storage !== undefined) {
        await core.stop(0);
        await storage.close();
      }
      await fake.close();
    },
  };
}
