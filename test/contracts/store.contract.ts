import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/core/index.js';

/** One suite that every store backend runs (memory, SQLite, Redis). */
export function storeContract(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let close: () => Promise<void>;
    beforeEach(async () => {
      ({ store, close } = await open());
    });
    afterEach(async () => {
      await close();
    });

    it('round-trips JSON values and deletes them', async () => {
      const key = `t:${Math.random()}`;
      expect(await store.get(key)).toBeUndefined();
      await store.set(key, { a: 1, nested: { list: ['x', 'y'] } });
      expect(await store.get(key)).toEqual({ a: 1, nested: { list: ['x', 'y'] } });
      await store.delete(key);
      expect(await store.get(key)).toBeUndefined();
    });

    it('expires values after their TTL', async () => {
      const key = `ttl:${Math.random()}`;
      await store.set(key, 'soon gone', 50);
      expect(await store.get(key)).toBe('soon gone');
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.get(key)).toBeUndefined();
    });

    it('claims a key exactly once, even when racing', async () => {
      const key = `claim:${Math.random()}`;
      const results = await Promise.all(Array.from({ length: 20 }, () => store.claim(key, 60_000)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.claim(key, 60_000)).toBe(false);
    });

    it('lets a claim be taken again once it is deleted', async () => {
      const key = `released:${Math.random()}`;
      expect(await store.claim(key, 60_000)).toBe(true);
      expect(await store.claim(key, 60_000)).toBe(false);
      await store.delete(key);
      expect(await store.claim(key, 60_000)).toBe(true);
    });

    it('lets a claim be taken again once its TTL has passed', async () => {
      const key = `claim-ttl:${Math.random()}`;
      expect(await store.claim(key, 50)).toBe(true);
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.claim(key, 50)).toBe(true);
    });
  });
}
