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

    it('adds to a counter atomically, even when racing, and starts it again once it expires', async () => {
      const key = `count:${Math.random()}`;
      expect(await store.counters.read(key)).toBe(0);
      const totals = await Promise.all(Array.from({ length: 20 }, () => store.counters.add(key, 5, 150)));
      expect(totals.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 5));
      expect(await store.counters.read(key)).toBe(100);
      await new Promise((r) => setTimeout(r, 200));
      expect(await store.counters.read(key)).toBe(0);
      expect(await store.counters.add(key, 7, 60_000)).toBe(7);
    });

    it('keeps timeline records by time: put, replace, range, remove once, trim', async () => {
      const timeline = store.timeline(`tl-${Math.random()}`);
      await timeline.put('b', 200, { n: 2 });
      await timeline.put('a', 100, { n: 1 });
      await timeline.put('c', 300, { n: 3 });
      expect(await timeline.range(0, 1000)).toEqual([
        { id: 'a', at: 100, value: { n: 1 } },
        { id: 'b', at: 200, value: { n: 2 } },
        { id: 'c', at: 300, value: { n: 3 } },
      ]);
      expect(await timeline.range(100, 300)).toEqual([
        { id: 'a', at: 100, value: { n: 1 } },
        { id: 'b', at: 200, value: { n: 2 } },
      ]);
      expect((await timeline.range(0, 1000, 1)).map((r) => r.id)).toEqual(['a']);
      await timeline.put('a', 400, { n: 4 });
      expect((await timeline.range(0, 1000)).map((r) => [r.id, r.at])).toEqual([['b', 200], ['c', 300], ['a', 400]]);
      const removals = await Promise.all(Array.from({ length: 10 }, () => timeline.remove('b')));
      expect(removals.filter(Boolean)).toHaveLength(1);
      expect(await timeline.trim(350)).toBe(1);
      expect(await timeline.range(0, 1000)).toEqual([{ id: 'a', at: 400, value: { n: 4 } }]);
      expect(await store.timeline(`other-${Math.random()}`).range(0, 1000)).toEqual([]);
    });
  });
}
