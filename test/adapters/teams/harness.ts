import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { deflateSync } from 'node:zlib';
import { pino, type Logger } from 'pino';
import { afterEach } from 'vitest';
import { createTeamsAdapter, type TeamsAdapterConfig, type TeamsChatAdapter } from '../../../adapters/teams/index.js';
import { type Core, createCore, type Governance, openGovernance, openStorage, type RouteHandler, type Store } from '../../../src/core/index.js';
import { createFakeEngine, type FakeEngine, type FakeScript } from '../../fakes/engine.js';
import { startServer, type BotServer } from '../../../src/server/index.js';
import type { FakeOpenAI } from '../../fakes/openai.js';
import { startFakeTeams, type FakeTeams, type FakeTeamsOptions } from '../../fakes/teams.js';
import { startStack as startCrunchStack } from '../../support/stack.js';

/**
 * The Teams adapter behind the real server, talking to the fake connector/token issuer over HTTP, on
 * either the whole real stack (core + responses engine + fake OpenAI, from test/support/stack.ts) or, for
 * tests that need to pause the engine between progress events, the real core with a scripted engine.
 */

export interface Stack {
  fake: FakeTeams;
  bot: BotServer;
  adapter: TeamsChatAdapter;
  core: Core;
  store: Store;
  /** The fake OpenAI behind the real engine (undefined with a scripted engine). */
  openai: FakeOpenAI;
  /** The scripted engine, when the stack was started with `script`. */
  engine: FakeEngine;
  logs: () => Array<Record<string, unknown>>;
  tenantId: string;
  clock: { now: number };
  /** A fixture with its placeholders filled in. */
  fixture(name: string, vars?: Record<string, string>): Record<string, any>;
  /** POSTs an activity to /api/messages; token: a string, null for none, undefined for a valid one. */
  send(activity: Record<string, any>, token?: string | null): Promise<Response>;
  /** Sends and waits until the bot has posted everything for it. */
  ask(activity: Record<string, any>): Promise<void>;
  /** Waits until every request received is handled and every turn accepted is answered. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export interface StackOptions {
  auth?: boolean;
  config?: Partial<TeamsAdapterConfig>;
  fake?: FakeTeamsOptions;
  /** Use a scripted engine instead of the real responses engine + fake OpenAI. */
  script?: FakeScript;
  /** The admin's rules, with a scripted engine (TEAMS_ALLOWED_TENANTS comes from `config.allowedTenants`). */
  governance?: Partial<Governance>;
  /** More configuration for the real app stack (without `script`), e.g. CRUNCH_ENGINE=local. */
  crunchEnv?: Record<string, string>;
  /** The store of a scripted stack (default memory://), e.g. a SQLite file that outlives the stack. */
  storeUrl?: string;
}

export const TENANT = '72f988bf-0000-4000-8000-00000000c0de';

/** A `stack(options)` that starts stacks for one test file and closes them all after each test. */
export function stacksClosedAfterEach(): (options?: StackOptions) => Promise<Stack> {
  const stacks: Stack[] = [];
  afterEach(async () => {
    while (stacks.length > 0) await stacks.pop()!.close();
  });
  return async (options = {}) => {
    const s = await startStack(options);
    stacks.push(s);
    return s;
  };
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const auth = options.auth ?? true;
  const fake = await startFakeTeams({ requireBotToken: auth, ...options.fake });
  let core: Core;
  let store: Store;
  let logger: Logger;
  let logs: () => Array<Record<string, unknown>>;
  let openai: FakeOpenAI | undefined;
  let closeCore: () => Promise<void>;
  const engine = createFakeEngine(options.script ?? { text: 'ok' });
  const tenants = options.config?.allowedTenants ?? [];
  if (options.script === undefined) {
    const crunch = await startCrunchStack({ CRUNCH_MAX_FILE_BYTES: String(5 * 1024 * 1024), TEAMS_ALLOWED_TENANTS: tenants.join(','), ...options.crunchEnv });
    ({ core, store, logger } = crunch.crunch);
    logs = crunch.logs;
    openai = crunch.openai;
    closeCore = async () => {
      crunch.expectSpecClean();
      await crunch.close();
    };
  } else {
    const lines: Array<Record<string, unknown>> = [];
    logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      }),
    );
    logs = () => lines;
    const storage = await openStorage(options.storeUrl ?? 'memory://', { dedupeMs: 60 * 60_000, joinedMs: 60 * 60_000 });
    store = storage.store;
    core = createCore({
      store,
      inbox: storage.inbox,
      engine,
      limits: { maxFileBytes: 5 * 1024 * 1024, maxFilesPerTurn: 5, turnTimeoutMs: 60_000 },
      logger,
      concurrency: 8,
      // TEAMS_ALLOWED_TENANTS, as the app hands it to the core.
      governance: openGovernance({
        ...options.governance,
        access: { workspaces: { teams: tenants }, channels: [], users: [], adminContact: undefined, ...options.governance?.access },
      }),
    });
    core.start();
    closeCore = async () => {
      await core.stop(0);
      await storage.close();
    };
  }
  const clock = { now: Date.now() };
  let route: RouteHandler[] = [];
  const bot = await startServer({
    port: 0,
    host: '127.0.0.1',
    logger,
    routes: [async (req, res) => { for (const r of route) if (await r(req, res)) return true; return false; }],
  });
  const adapter = createTeamsAdapter(
    {
      appId: auth ? fake.appId : undefined,
      appPassword: auth ? fake.appPassword : undefined,
      appType: 'MultiTenant',
      tenantId: undefined,
      allowedTenants: [],
      publicUrl: bot.url,
      typingIntervalMs: 60_000,
      ...(auth ? { endpoints: fake.endpoints } : {}),
      now: () => clock.now,
      ...options.config,
    },
    { core, store, logger },
  );
  core.register(adapter.platform);
  route = adapter.routes;
  await adapter.start();

  const stack: Stack = {
    fake,
    bot,
    adapter,
    core,
    store,
    engine,
    get openai(): FakeOpenAI {
      if (openai === undefined) throw new Error('this stack runs a scripted engine');
      return openai;
    },
    logs,
    tenantId: TENANT,
    clock,
    fixture(name, vars = {}) {
      const all: Record<string, string> = { serviceUrl: fake.serviceUrl, botId: fake.botId, tenantId: TENANT, downloadUrl: '', imageUrl: '', ...vars };
      const text = readFileSync(new URL(`../../fixtures/teams/${name}.json`, import.meta.url), 'utf8').replace(
        /\{\{(\w+)\}\}/g,
        (_m, key: string) => JSON.stringify(all[key] ?? '').slice(1, -1),
      );
      return JSON.parse(text) as Record<string, any>;
    },
    async send(activity, token) {
      const bearer = token === undefined ? (auth ? await fake.signToken({ serviceurl: activity.serviceUrl as string }) : undefined) : token;
      return fetch(`${bot.url}/api/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        body: JSON.stringify(activity),
      });
    },
    async ask(activity) {
      const response = await stack.send(activity);
      if (response.status !== 200) throw new Error(`bot answered ${response.status}: ${await response.text()}`);
      await stack.settle();
    },
    async settle() {
      await adapter.idle();
      await core.idle();
      await adapter.idle();
    },
    async close() {
      await adapter.stop();
      await bot.close();
      await fake.close();
      await closeCore();
    },
  };
  return stack;
}

/** The user text of each request the real engine sent to the fake OpenAI, in order. */
export function modelInputs(s: Stack): string[] {
  return [...s.openai.responses.values()].map((r) => {
    const input = (r.request.input ?? []) as Array<{ content?: Array<{ type: string; text?: string }> }>;
    return input.flatMap((item) => item.content ?? []).filter((c) => c.type === 'input_text').map((c) => c.text ?? '').join('\n');
  });
}

/** Files the real engine uploaded to the fake OpenAI. */
export function uploadedFiles(s: Stack): Array<{ filename: string; data: Buffer }> {
  return [...s.openai.files.values()].map((f) => ({ filename: f.filename, data: f.data }));
}

/**
 * What each message the chat shows reads, oldest first: its text, or its card's TextBlocks (the code behind
 * "Show the code" aside), joined by blank lines.
 */
export function shownTexts(fake: FakeTeams, conversationPrefix?: string): string[] {
  return fake.shown(conversationPrefix).map((m) => {
    if (typeof m.activity.text === 'string' && m.activity.text !== '') return m.activity.text;
    return cardsOf(m.activity)
      .flatMap((c) => (c.body ?? []) as Array<Record<string, any>>)
      .filter((e) => e.type === 'TextBlock')
      .map((e) => String(e.text))
      .join('\n\n');
  });
}

/** The Adaptive Cards of the messages the chat shows, oldest first. */
export function shownCards(fake: FakeTeams, conversationPrefix?: string): Array<Record<string, any>> {
  return fake.shown(conversationPrefix).flatMap((m) => cardsOf(m.activity));
}

function cardsOf(activity: Record<string, any>): Array<Record<string, any>> {
  return ((activity.attachments ?? []) as Array<{ contentType: string; content: Record<string, any> }>)
    .filter((a) => a.contentType === 'application/vnd.microsoft.card.adaptive')
    .map((a) => a.content);
}

/** A valid PNG of about `size` bytes: a 1×1 image padded with a private ancillary chunk. */
export function fakePng(size: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
  const idat = deflateSync(Buffer.from([0, 255, 0, 0, 255]));
  const fixed = 8 + 25 + 12 + idat.length + 12 + 12;
  const padding = Buffer.alloc(Math.max(0, size - fixed));
  for (let i = 0; i < padding.length; i++) padding[i] = (i * 7919) % 251;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('crNc', padding),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
