import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/core/index.js';
import { storeContract } from '../contracts/store.contract.js';

const dir = await mkdtemp(join(tmpdir(), 'crunch-store-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

storeContract('memory', () => createStore('memory://'));
storeContract('sqlite', () => createStore(`sqlite://${join(dir, 'contract.sqlite')}`));

const redisUrl = process.env.CRUNCH_TEST_REDIS_URL;
if (redisUrl) storeContract('redis', () => createStore(redisUrl));
else if (process.env.CI) throw new Error('CI must set CRUNCH_TEST_REDIS_URL so the Redis store is tested');

describe('SQLite store', () => {
  it('keeps data across a restart (close and reopen the file)', async () => {
    const url = `sqlite://${join(dir, 'nested', 'restart.sqlite')}`;
    const first = await createStore(url);
    await first.set('session:slack:T1:C1:100.1', { conversationId: 'conv_1', files: [{ sourceId: 'F1', fileId: 'file-1' }] });
    await first.claim('dedupe:slack:T1:C1:100.1', 60_000);
    await first.close();

    const second = await createStore(url);
    expect(await second.get('session:slack:T1:C1:100.1')).toEqual({ conversationId: 'conv_1', files: [{ sourceId: 'F1', fileId: 'file-1' }] });
    expect(await second.claim('dedupe:slack:T1:C1:100.1', 60_000)).toBe(false);
    await second.close();
  });

  it('deletes expired rows when swept, which SQLite does not do by itself', async () => {
    const store = await createStore(`sqlite://${join(dir, 'sweep.sqlite')}`);
    for (let i = 0; i < 20; i++) await store.set(`dedupe:m${i}`, true, 10);
    await store.set('session:kept', { conversationId: 'c' });
    await store.set('dedupe:later', true, 60_000);
    await new Promise((r) => setTimeout(r, 30));
    expect(await store.sweepExpired()).toBe(20);
    expect(await store.sweepExpired()).toBe(0);
    expect(await store.get('session:kept')).toEqual({ conversationId: 'c' });
    expect(await store.get('dedupe:later')).toBe(true);
    await store.close();
  });

  it('refuses an unknown store scheme', async () => {
    await expect(createStore('postgres://x')).rejects.toThrow(/Unsupported STORE_URL/);
  });
});
