import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Attachment,
  type AuditEntry,
  type Core,
  createCore,
  type Governance,
  keys,
  openGovernance,
  openStorage,
  type Storage,
  usageReport,
} from '../../src/core/index.js';
import { createFakeEngine, type FakeEngine } from '../fakes/engine.js';
import { memoryLogger } from '../support/logger.js';
import { createTestPlatform, type TestPlatform } from '../support/platform.js';

/** Allow-lists, budgets, receipts, the usage log, retention, `forget` and the audit log, through the core's journey. */

interface Setup {
  core: Core;
  engine: FakeEngine;
  platform: TestPlatform;
  storage: Storage;
  audit: AuditEntry[];
  lines: () => Record<string, unknown>[];
}

const running: Core[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((core) => core.stop(0)));
});

async function setup(governance: Partial<Governance> = {}, options: { storage?: Storage; engine?: FakeEngine; sweep?: boolean; now?: () => Date } = {}): Promise<Setup> {
  const storage = options.storage ?? (await openStorage('memory://', { dedupeMs: 60_000, joinedMs: 60_000 }));
  const engine = options.engine ?? createFakeEngine();
  const audit: AuditEntry[] = [];
  const { logger, lines } = memoryLogger();
  const core = createCore({
    store: storage.store,
    inbox: storage.inbox,
    engine,
    logger,
    limits: { maxFileBytes: 1024 * 1024, maxFilesPerTurn: 3, turnTimeoutMs: 60_000 },
    concurrency: 4,
    governance: openGovernance({ audit: (entry) => audit.push(entry), ...governance }),
    sweep: options.sweep ?? false,
    ...(options.now ? { now: options.now } : {}),
  });
  const platform = createTestPlatform();
  core.register(platform);
  core.start();
  running.push(core);
  return { core, engine, platform, storage, audit, lines };
}

/** A file whose downloads are counted. */
function countedFile(name: string, data: string): { attachment: Attachment; opened: () => number } {
  let opened = 0;
  const attachment: Attachment = {
    sourceId: `src:${name}`,
    name,
    sizeBytes: data.length,
    open: async () => {
      opened += 1;
      return Readable.from([Buffer.from(data)]);
    },
  };
  return { attachment, opened: () => opened };
}

const access = (rules: Partial<Governance['access']>): Pick<Governance, 'access'> => ({
  access: { workspaces: {}, channels: [], users: [], adminContact: undefined, ...rules },
});

describe('allow-lists', () => {
  it('answers a channel outside CRUNCH_ALLOWED_CHANNELS with one line naming whom to ask: no download, no model call', async () => {
    const { core, engine, platform, audit } = await setup(access({ channels: ['C-OK'], adminContact: '#it-help' }));
    const file = countedFile('sales.csv', 'month,revenue\nJan,10\n');
    const reply = await platform.ask(core, { thread: 't1', channel: 'C-OTHER', text: 'plot revenue', attachments: [file.attachment] });
    expect(reply).toMatchObject({ kind: 'refused', refused: 'channel' });
    expect(reply.text).toBe('Crunch is not enabled in this channel. Ask #it-help to enable it, or use it where it is enabled.');
    expect(engine.calls).toHaveLength(0);
    expect(file.opened()).toBe(0);
    expect(platform.progress.get(platform.delivered[0]!.messageKey)).toEqual([]);
    expect(audit).toMatchObject([{ outcome: 'refused', reason: 'channel', channel: 'C-OTHER', files: [{ name: 'sales.csv', sizeBytes: 21 }] }]);

    // A refusal does not join the thread: a reply there without a mention is ignored, not refused again.
    const reply2 = platform.turn({ thread: 't1', channel: 'C-OTHER', text: 'please?' });
    expect(await core.handle(reply2, { onlyIfJoined: true })).toEqual({ status: 'ignored' });

    const allowed = await platform.ask(core, { thread: 't2', channel: 'C-OK', text: 'hello' });
    expect(allowed.kind).toBe('answer');
    expect(engine.calls).toHaveLength(1);
  });

  it('allows direct messages only when the list says `dm`', async () => {
    const closed = await setup(access({ channels: ['C-OK'] }));
    const refused = await closed.platform.ask(closed.core, { thread: 'd1', channel: 'D1', direct: true, text: 'hi' });
    expect(refused.text).toBe('Crunch is not enabled in direct messages. Ask your workspace admin to enable it, or use it where it is enabled.');
    const open = await setup(access({ channels: ['C-OK', 'dm'] }));
    expect((await open.platform.ask(open.core, { thread: 'd1', channel: 'D1', direct: true, text: 'hi' })).kind).toBe('answer');
    expect((await open.platform.ask(open.core, { thread: 'c1', channel: 'C-ELSE', text: 'hi' })).kind).toBe('refused');
  });

  it('refuses people outside CRUNCH_ALLOWED_USERS and workspaces outside their platform list, case aside', async () => {
    const { core, engine, platform } = await setup(access({ users: ['u-ana'], workspaces: { test: ['T-OK'] } }));
    expect((await platform.ask(core, { thread: 'a', user: 'U-ANA', workspace: 't-ok', text: 'hi' })).kind).toBe('answer');
    const user = await platform.ask(core, { thread: 'b', user: 'U-BOB', workspace: 'T-OK', text: 'hi' });
    expect(user).toMatchObject({ refused: 'user', text: 'Crunch is not enabled for you yet. Ask your workspace admin for access.' });
    const workspace = await platform.ask(core, { thread: 'c', user: 'U-ANA', workspace: 'T-ELSEWHERE', text: 'hi' });
    expect(workspace).toMatchObject({ refused: 'workspace', text: 'Crunch is not enabled for this workspace. Ask your workspace admin if you need it here.' });
    expect(engine.calls).toHaveLength(1);
  });

  it('does not apply to the operator’s own terminal (a platform marked `operator`)', async () => {
    const { core, platform } = await setup(access({ channels: ['C-OK'], users: ['U-ANA'] }));
    const terminal = { ...createTestPlatform('cli'), operator: true };
    core.register(terminal);
    expect((await terminal.ask(core, { thread: 'x', channel: 'chat', user: 'local', text: 'hi' })).kind).toBe('answer');
    expect((await platform.ask(core, { thread: 'x', channel: 'chat', user: 'local', text: 'hi' })).kind).toBe('refused');
  });
});

describe('costs, budgets and receipts', () => {
  it('prices each answer from the usage the engine reports and shows the receipt with CRUNCH_SHOW_COST', async () => {
    const { core, platform, audit } = await setup({ showCost: true });
    const first = await platform.ask(core, { thread: 'r', text: 'first' });
    // 1,000 input and 100 output tokens of gpt-4.1 ($2 and $8 per million) plus a new 1 GB sandbox ($0.03).
    expect(first.usage).toEqual({ model: 'gpt-4.1', inputTokens: 1000, cachedTokens: 0, outputTokens: 100, sandboxSessions: 1, costUsd: expect.closeTo(0.0328, 10) });
    expect(first.receipt).toBe('1,100 tokens · 1 sandbox session · ≈ $0.03');
    const second = await platform.ask(core, { thread: 'r', text: 'second' });
    expect(second.receipt).toBe('1,100 tokens · ≈ $0.0028');
    expect(audit.map((e) => [e.outcome, e.tokens, e.costUsd])).toEqual([
      ['answered', { input: 1000, cached: 0, output: 100 }, expect.closeTo(0.0328, 10)],
      ['answered', { input: 1000, cached: 0, output: 100 }, expect.closeTo(0.0028, 10)],
    ]);
  });

  it('leaves the receipt out by default, and says when the model has no price', async () => {
    const plain = await setup();
    expect((await plain.platform.ask(plain.core, { thread: 'p', text: 'hi' })).receipt).toBeUndefined();
    const engine = createFakeEngine({ usage: { model: 'my-deployment', inputTokens: 10, cachedTokens: 0, outputTokens: 5, sandboxes: {} } });
    const unpriced = await setup({ showCost: true }, { engine });
    const reply = await unpriced.platform.ask(unpriced.core, { thread: 'p', text: 'hi' });
    expect(reply.receipt).toBe('15 tokens · cost unknown (no price for my-deployment)');
    expect(reply.usage?.costUsd).toBeUndefined();
  });

  it('prices cached input lower, and takes a dated snapshot at its family price', async () => {
    const engine = createFakeEngine({ usage: { model: 'gpt-4.1-2025-04-14', inputTokens: 10_000, cachedTokens: 8000, outputTokens: 0, sandboxes: {} } });
    const { core, platform } = await setup({ showCost: true }, { engine });
    const reply = await platform.ask(core, { thread: 'c', text: 'hi' });
    // 2,000 fresh at $2 and 8,000 cached at $0.50 per million.
    expect(reply.usage?.costUsd).toBeCloseTo(0.008, 10);
    expect(reply.receipt).toBe('10,000 tokens (8,000 cached) · ≈ $0.008');
  });

  it('refuses a person over a tiny daily budget after the first answer, with no second model call', async () => {
    const now = () => new Date('2026-12-02T18:30:00Z');
    const { core, engine, platform, audit } = await setup({ budgets: { userDailyUsd: 0.01, channelDailyUsd: undefined, monthlyUsd: undefined } }, { now });
    expect((await platform.ask(core, { thread: 'b1', user: 'U-ANA', text: 'first' })).kind).toBe('answer');
    const refused = await platform.ask(core, { thread: 'b2', user: 'U-ANA', text: 'second' });
    expect(refused).toMatchObject({ kind: 'refused', refused: 'budget' });
    expect(refused.text).toBe(
      "You have used today's Crunch budget ($0.01 a person a day). It resets at midnight UTC, in 5 h 30 min. Ask your workspace admin if you need more.",
    );
    expect(engine.calls.map((c) => c.text)).toEqual(['first']);
    // Someone else still has their own budget.
    expect((await platform.ask(core, { thread: 'b3', user: 'U-BOB', text: 'mine' })).kind).toBe('answer');
    expect(audit.map((e) => [e.user, e.outcome, e.reason])).toEqual([
      ['U-ANA', 'answered', undefined],
      ['U-ANA', 'refused', 'budget'],
      ['U-BOB', 'answered', undefined],
    ]);
  });

  it('refuses everyone once the monthly budget is spent, naming when it resets', async () => {
    const now = () => new Date('2026-12-02T10:00:00Z');
    const { core, engine, platform } = await setup({ budgets: { userDailyUsd: undefined, channelDailyUsd: undefined, monthlyUsd: 0.02 }, ...access({ adminContact: 'Dana' }) }, { now });
    await platform.ask(core, { thread: 'm1', user: 'U-ANA', text: 'first' });
    const refused = await platform.ask(core, { thread: 'm2', user: 'U-BOB', channel: 'C-2', text: 'second' });
    expect(refused.text).toBe("Crunch has used this month's budget ($0.02 for everyone). It resets on 1 January 2027 (UTC). Ask Dana if it should be raised.");
    expect(engine.calls).toHaveLength(1);
  });

  it('counts a channel’s spend across its people', async () => {
    const { core, engine, platform } = await setup({ budgets: { userDailyUsd: undefined, channelDailyUsd: 0.03, monthlyUsd: undefined } });
    await platform.ask(core, { thread: 'c1', user: 'U-ANA', channel: 'C-9', text: 'one' });
    const refused = await platform.ask(core, { thread: 'c2', user: 'U-BOB', channel: 'C-9', text: 'two' });
    expect(refused.refused).toBe('budget');
    expect(refused.text).toMatch(/^This conversation's channel has used today's Crunch budget \(\$0\.03 a day\)\. It resets at midnight UTC, in /);
    expect((await platform.ask(core, { thread: 'c3', user: 'U-BOB', channel: 'C-10', text: 'three' })).kind).toBe('answer');
    expect(engine.calls).toHaveLength(2);
  });

  it('keeps a usage log that sums turns, tokens and cost per person and per channel', async () => {
    const { core, platform, storage } = await setup();
    await platform.ask(core, { thread: 'u1', user: 'U-ANA', channel: 'C-1', text: 'a' });
    await platform.ask(core, { thread: 'u1', user: 'U-ANA', channel: 'C-1', text: 'b' });
    await platform.ask(core, { thread: 'u2', user: 'U-BOB', channel: 'C-1', text: 'c' });
    await platform.ask(core, { thread: 'help', user: 'U-BOB', channel: 'C-2', text: 'help' });
    const period = { since: Date.now() - 60_000, until: Date.now() + 60_000 };
    const byUser = await usageReport(storage.store, { ...period, by: 'user' });
    expect(byUser.map((r) => [r.id, r.turns, r.inputTokens, r.outputTokens, r.sandboxSessions])).toEqual([
      ['U-ANA', 2, 2000, 200, 1],
      ['U-BOB', 1, 1000, 100, 1],
    ]);
    expect(byUser[0]!.costUsd).toBeCloseTo(0.0328 + 0.0028, 10);
    const byChannel = await usageReport(storage.store, { ...period, by: 'channel' });
    expect(byChannel.map((r) => [r.key, r.turns])).toEqual([['test/W/C-1', 3]]);
    expect(await usageReport(storage.store, { since: Date.now() + 60_000, until: Date.now() + 120_000, by: 'user' })).toEqual([]);
  });
});

describe('retention and forget', () => {
  it('deletes a conversation idle past CRUNCH_RETENTION everywhere; a later message starts fresh', async () => {
    const { core, engine, platform, storage, audit } = await setup({ retentionMs: 1500 }, { sweep: true });
    const conversation = 'test:W:C:old';
    await platform.ask(core, { thread: 'old', text: 'remember 42' });
    const session = await storage.store.get(keys.session(conversation));
    expect(session).toBeDefined();
    await platform.ask(core, { thread: 'busy', text: 'keep me' });

    // Still in use: the busy conversation keeps being used, the old one idles past the retention.
    const deadline = Date.now() + 10_000;
    while (engine.forgotten.length === 0 && Date.now() < deadline) {
      await platform.ask(core, { thread: 'busy', text: 'still here' });
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(engine.forgotten).toEqual([session]);
    // The engine forgets first, then the store: wait for the expire turn to finish.
    await core.idle();
    expect(await storage.store.get(keys.session(conversation))).toBeUndefined();
    expect(await storage.store.get(keys.session('test:W:C:busy'))).toBeDefined();
    expect(audit.filter((e) => e.outcome === 'deleted')).toMatchObject([{ conversation, reason: 'retention' }]);

    await platform.ask(core, { thread: 'old', text: 'what was the number?' });
    expect(engine.calls.at(-1)?.session).toBeUndefined();
  });

  it('`forget` deletes the conversation at once and says what it removed', async () => {
    const { core, engine, platform, storage } = await setup();
    const file = countedFile('sales.csv', 'a,b\n1,2\n');
    await platform.ask(core, { thread: 'f', text: 'look', attachments: [file.attachment] });
    const reply = await platform.ask(core, { thread: 'f', text: 'forget' });
    expect(reply).toMatchObject({ kind: 'forget' });
    expect(reply.text).toBe('Deleted this conversation: 1 shared file, its Python sandbox, its history with the AI service and my record of it. Mention me to start afresh.');
    expect(engine.forgotten).toHaveLength(1);
    expect(await storage.store.get(keys.session('test:W:C:f'))).toBeUndefined();
    expect(await storage.store.timeline('conversations').range(0, Date.now() + 1)).toEqual([]);
    expect((await platform.ask(core, { thread: 'g', text: 'delete' })).text).toBe(
      'Done: I held nothing for this conversation, and now hold nothing at all. Mention me to start afresh.',
    );
  });

  it('keeps what could not be deleted upstream as a leftover and deletes it on a later sweep (at start-up too)', async () => {
    const storage = await openStorage('memory://', { dedupeMs: 60_000, joinedMs: 60_000 });
    const engine = createFakeEngine();
    const first = await setup({}, { storage, engine });
    await first.platform.ask(first.core, { thread: 'l', text: 'hello' });
    engine.forgetFails = true;
    const reply = await first.platform.ask(first.core, { thread: 'l', text: 'forget' });
    expect(reply.text).toContain('I could not reach the AI service to delete 1 more item just now; I will keep trying until it is gone.');
    await first.core.stop(0);
    const leftovers = await storage.store.timeline('leftovers').range(0, Number.MAX_SAFE_INTEGER);
    expect(leftovers).toHaveLength(1);

    // A restart (a new core on the same store) sweeps at once; the leftover waits out its retry delay first.
    engine.forgetFails = false;
    await storage.store.timeline('leftovers').put(leftovers[0]!.id, Date.now() - 1, leftovers[0]!.value);
    const second = await setup({}, { storage, engine, sweep: true });
    const deadline = Date.now() + 5000;
    while (engine.forgotten.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(engine.forgotten).toHaveLength(1);
    expect(await storage.store.timeline('leftovers').range(0, Number.MAX_SAFE_INTEGER)).toEqual([]);
    await second.core.stop(0);
  });
});

describe('the audit log', () => {
  it('has one line per turn, refusals and commands too, with file names and sizes, and the text only when asked', async () => {
    const quiet = await setup(access({ users: ['U1'] }));
    const file = countedFile('q3.xlsx', 'not really xlsx');
    await quiet.platform.ask(quiet.core, { thread: 'a', text: 'secret plans', attachments: [file.attachment] });
    await quiet.platform.ask(quiet.core, { thread: 'a', text: 'help' });
    await quiet.platform.ask(quiet.core, { thread: 'b', user: 'U-OUT', text: 'let me in' });
    expect(quiet.audit.map((e) => [e.outcome, e.reason ?? null, e.files])).toEqual([
      ['answered', null, [{ name: 'q3.xlsx', sizeBytes: 15 }]],
      ['command', 'help', []],
      ['refused', 'user', []],
    ]);
    expect(JSON.stringify(quiet.audit)).not.toContain('secret plans');
    expect(quiet.audit[0]).toMatchObject({ platform: 'test', workspace: 'W', channel: 'C', user: 'U1', conversation: 'test:W:C:a', model: 'gpt-4.1' });

    const verbose = await setup({ auditText: true });
    await verbose.platform.ask(verbose.core, { thread: 'a', text: 'secret plans' });
    expect(verbose.audit[0]?.text).toBe('secret plans');
  });
});
