import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Core, createCore, openStorage, type Storage } from '../../src/core/index.js';
import { createFakeEngine, type FakeEngine } from '../fakes/engine.js';
import { memoryLogger } from '../support/logger.js';
import { createTestPlatform, type TestPlatform } from '../support/platform.js';

const dir = await mkdtemp(join(tmpdir(), 'crunch-durability-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const options = { dedupeMs: 60_000, joinedMs: 60_000 };

function coreOn(storage: Storage, engine: FakeEngine, turnTimeoutMs = 60_000): { core: Core; platform: TestPlatform } {
  const core = createCore({
    store: storage.store,
    inbox: storage.inbox,
    engine,
    logger: memoryLogger().logger,
    limits: { maxFileBytes: 1024 * 1024, maxFilesPerTurn: 3, turnTimeoutMs },
    concurrency: 2,
  });
  const platform = createTestPlatform();
  core.register(platform);
  return { core, platform };
}

describe('a turn outlives its process', () => {
  it('answers once, after a restart, a turn that was acknowledged but not answered (SQLite)', async () => {
    const url = `sqlite://${join(dir, 'restart.sqlite')}`;
    const before = await openStorage(url, options);
    const first = coreOn(before, createFakeEngine());
    // Recorded (the platform was acknowledged), then the process went away before a worker ran it.
    expect((await first.core.handle(first.platform.turn({ thread: 't', text: 'sum it', messageKey: 'k1' }))).status).toBe('accepted');
    await before.close();

    const after = await openStorage(url, options);
    const engine = createFakeEngine();
    const second = coreOn(after, engine);
    second.core.start();
    await second.core.idle();
    expect(engine.calls.map((c) => c.text)).toEqual(['sum it']);
    expect(second.platform.delivered.map((d) => d.messageKey)).toEqual(['k1']);
    // The redelivery Slack may still send is a duplicate.
    expect((await second.core.handle(second.platform.turn({ thread: 't', text: 'sum it', messageKey: 'k1' }))).status).toBe('duplicate');
    await second.core.stop(0);
    await after.close();
  });

  it('hands a running turn back at shutdown once the drain time is over, and the next start answers it', async () => {
    const storage = await openStorage('memory://', options);
    const slow = createFakeEngine({ hang: true });
    const first = coreOn(storage, slow);
    first.core.start();
    await first.core.handle(first.platform.turn({ thread: 't', text: 'long job', messageKey: 'k2' }));
    await expect.poll(() => slow.calls.length).toBe(1);
    await first.core.stop(50);
    expect(first.platform.suspended).toEqual(['k2']);
    expect(first.platform.delivered).toEqual([]);

    const engine = createFakeEngine();
    const second = coreOn(storage, engine);
    second.core.start();
    await second.core.idle();
    expect(second.platform.delivered.map((d) => d.reply.text)).toEqual(['You said: long job']);
    await second.core.stop(0);
    await storage.close();
  });

  it('finishes the delivery of a resumed turn from the reply its first attempt saved, without running the engine again', async () => {
    const storage = await openStorage('memory://', options);
    const first = coreOn(storage, createFakeEngine({ text: 'the saved answer' }));
    // The first attempt answered and posted; its worker died before the turn left the inbox.
    const turn = first.platform.turn({ thread: 't', text: 'question', messageKey: 'k3' });
    await first.core.handle(turn);
    const lease = (await storage.inbox.take(AbortSignal.timeout(1000)))!;
    await lease.next();
    await storage.store.set('delivery:k3', { reply: { kind: 'answer', text: 'the saved answer', outputs: [], code: [], notices: [] }, posted: [], memo: {} });
    await lease.handBack();

    const engine = createFakeEngine({ text: 'a different answer' });
    const second = coreOn(storage, engine);
    second.core.start();
    await second.core.idle();
    expect(engine.calls).toEqual([]);
    expect(second.platform.delivered.map((d) => d.reply.text)).toEqual(['the saved answer']);
    // Once delivered and out of the inbox, the turn's record is gone.
    expect(await storage.store.get('delivery:k3')).toBeUndefined();
    await second.core.stop(0);
    await storage.close();
  });

  it('never posts a part an earlier attempt posted', async () => {
    const storage = await openStorage('memory://', options);
    const { core, platform } = coreOn(storage, createFakeEngine());
    await core.handle(platform.turn({ thread: 't', text: 'q', messageKey: 'k4' }));
    const lease = (await storage.inbox.take(AbortSignal.timeout(1000)))!;
    await lease.next();
    await storage.store.set('delivery:k4', { reply: { kind: 'answer', text: 'posted already', outputs: [], code: [], notices: [] }, posted: ['text'], memo: {} });
    await lease.handBack();
    core.start();
    await core.idle();
    expect(platform.delivered).toEqual([]);
    await core.stop(0);
    await storage.close();
  });

  it('gives up, with one line, on a turn that was interrupted again and again', async () => {
    const storage = await openStorage('memory://', options);
    const engine = createFakeEngine();
    const { core, platform } = coreOn(storage, engine);
    await core.handle(platform.turn({ thread: 't', text: 'poison', messageKey: 'k5' }));
    for (let i = 0; i < 3; i++) {
      const lease = (await storage.inbox.take(AbortSignal.timeout(1000)))!;
      await lease.next();
      await lease.handBack();
    }
    core.start();
    await core.idle();
    expect(engine.calls).toEqual([]);
    expect(platform.delivered.map((d) => d.reply)).toEqual([expect.objectContaining({ kind: 'error', text: expect.stringMatching(/interrupted several times/) })]);
    await core.stop(0);
    await storage.close();
  });
});

describe('Slack twins', () => {
  it('gives a mention recorded without files the files its message twin brings', async () => {
    const storage = await openStorage('memory://', options);
    const engine = createFakeEngine();
    const { core, platform } = coreOn(storage, engine);
    core.start();
    const mention = { ...platform.turn({ thread: 't', text: 'plot this', messageKey: 'twin1' }), twin: 'awaits' as const };
    expect((await core.handle(mention)).status).toBe('accepted');
    const withFile = platform.turn({ thread: 't', text: 'plot this', messageKey: 'twin1', attachments: [{ sourceId: 'F1', name: 'a.csv', sizeBytes: 4, open: async () => (await import('node:stream')).Readable.from([Buffer.from('a,b\n')]) }] });
    expect((await core.handle({ ...withFile, twin: 'completes' })).status).toBe('duplicate');
    await core.idle();
    expect(engine.calls.map((c) => c.files.map((f) => f.name))).toEqual([['a.csv']]);
    expect(platform.delivered).toHaveLength(1);
    await core.stop(0);
    await storage.close();
  });
});
