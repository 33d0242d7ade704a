import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStorage, type StorageOptions } from '../../src/core/index.js';
import { inboxContract } from '../contracts/inbox.contract.js';
import { storeContract } from '../contracts/store.contract.js';

const dir = await mkdtemp(join(tmpdir(), 'crunch-store-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const options: StorageOptions = { dedupeMs: 60_000, joinedMs: 60_000 };
const open = (url: string) => () => openStorage(url, options);

storeContract('memory', open('memory://'));
storeContract('sqlite', open(`sqlite://${join(dir, 'contract.sqlite')}`));
inboxContract('memory', open('memory://'));
inboxContract('sqlite', open(`sqlite://${join(dir, 'inbox.sqlite')}`));

const redisUrl = process.env.CRUNCH_TEST_REDIS_URL;
if (redisUrl) {
  storeContract('redis', open(redisUrl));
  inboxContract('redis', open(redisUrl));
} else if (process.env.CI) throw new Error('CI must set CRUNCH_TEST_REDIS_URL so the Redis store is tested');

describe('SQLite storage', () => {
  it('keeps data and pending turns across a restart (close and reopen the file)', async () => {
    const url = `sqlite://${join(dir, 'nested', 'restart.sqlite')}`;
    const first = await openStorage(url, options);
    await first.store.set('session:slack:T1:C1:100.1', { contextId: 'conv_1', files: [{ sourceId: 'F1', fileId: 'file-1' }] });
    const turn = { conversation: { platform: 'slack', workspace: 'T1', channel: 'C1', thread: '100.1' }, messageKey: 'k1', user: { id: 'U' }, text: 'hi', files: [], platformData: {} };
    expect(await first.inbox.accept(turn)).toBe('accepted');
    await first.close();

    const second = await openStorage(url, options);
    expect(await second.store.get('session:slack:T1:C1:100.1')).toEqual({ contextId: 'conv_1', files: [{ sourceId: 'F1', fileId: 'file-1' }] });
    expect(await second.inbox.accept(turn)).toBe('duplicate');
    const lease = await second.inbox.take(AbortSignal.timeout(1000));
    expect((await lease?.next())?.turn.text).toBe('hi');
    await second.close();
  });

  it('deletes expired rows when swept, which SQLite does not do by itself', async () => {
    const { store, close } = await openStorage(`sqlite://${join(dir, 'sweep.sqlite')}`, options);
    for (let i = 0; i < 20; i++) await store.set(`twin:m${i}`, true, 10);
    await store.set('session:kept', { contextId: 'c' });
    await store.set('twin:later', true, 60_000);
    await new Promise((r) => setTimeout(r, 30));
    expect(await store.sweepExpired()).toBe(20);
    expect(await store.sweepExpired()).toBe(0);
    expect(await store.get('session:kept')).toEqual({ contextId: 'c' });
    expect(await store.get('twin:later')).toBe(true);
    await close();
  });
});

describe('the local inbox under a burst', () => {
  for (const url of ['memory://', `sqlite://${join(dir, 'burst.sqlite')}`]) {
    it(`acknowledges every turn that arrived before a waiting worker starts one (${url.split(':')[0]})`, async () => {
      const storage = await openStorage(url, options);
      const order: string[] = [];
      const worker = storage.inbox.take(AbortSignal.timeout(5000)).then(() => order.push('worker starts'));
      // Three requests read in one pass of the event loop, each handled in its own callback (as I/O is).
      await Promise.all(
        ['1', '2', '3'].map(
          (n) =>
            new Promise<void>((handled) =>
              setImmediate(async () => {
                const turn = { conversation: { platform: 'test', workspace: 'T', channel: 'C', thread: n }, messageKey: `burst:${n}`, user: { id: 'U' }, text: n, files: [], platformData: {} };
                await storage.inbox.accept(turn);
                order.push(`accepted ${n}`);
                handled();
              }),
            ),
        ),
      );
      await worker;
      expect(order).toEqual(['accepted 1', 'accepted 2', 'accepted 3', 'worker starts']);
      await storage.close();
    });
  }
});
