import type { Json } from '../engine.js';
import type { Redis } from './redis.js';
import type { Query } from './sqlite.js';

/**
 * What a key-value store cannot do atomically or in order, for governance: counters that replicas add to
 * at once (spend against a budget), and timelines — records kept by time and read back by range (the usage
 * log, conversations by their last use for retention). One implementation per backend: memory, SQLite
 * (tables beside keyv's), Redis (INCRBY, sorted sets).
 */
export interface Counters {
  /** Adds `by` (an integer) to `key` and returns the new total; a new counter lives `ttlMs` from its first add. */
  add(key: string, by: number, ttlMs: number): Promise<number>;
  /** The counter's total, 0 when absent or expired. */
  read(key: string): Promise<number>;
}

export interface TimelineRecord<T extends Json = Json> {
  id: string;
  /** ms since the epoch. */
  at: number;
  value: T;
}

export interface Timeline {
  /** Adds the record, or moves and replaces the one with the same id. */
  put(id: string, at: number, value: Json): Promise<void>;
  /** Records with `from <= at < to`, oldest first, at most `limit`. */
  range(from: number, to: number, limit?: number): Promise<TimelineRecord[]>;
  /** Removes the record; true for the one caller that removed it (a claim across replicas). */
  remove(id: string): Promise<boolean>;
  /** Removes the records older than `before`; returns how many. */
  trim(before: number): Promise<number>;
}

export interface Records {
  counters: Counters;
  timeline(name: string): Timeline;
  /** Deletes expired counters (SQLite keeps them until swept). */
  sweep(now: number): Promise<number>;
}

const UNLIMITED = Number.MAX_SAFE_INTEGER;

export function memoryRecords(): Records {
  const counters = new Map<string, { value: number; until: number }>();
  const timelines = new Map<string, Map<string, { at: number; value: Json }>>();
  const live = (key: string) => {
    const counter = counters.get(key);
    return counter !== undefined && counter.until > Date.now() ? counter : undefined;
  };
  return {
    counters: {
      async add(key, by, ttlMs) {
        const counter = live(key) ?? { value: 0, until: Date.now() + ttlMs };
        counter.value += by;
        counters.set(key, counter);
        return counter.value;
      },
      read: async (key) => live(key)?.value ?? 0,
    },
    timeline(name) {
      let rows = timelines.get(name);
      if (rows === undefined) {
        rows = new Map();
        timelines.set(name, rows);
      }
      const all = rows;
      return {
        async put(id, at, value) {
          all.set(id, { at, value: structuredClone(value) });
        },
        async range(from, to, limit = UNLIMITED) {
          return [...all]
            .filter(([, row]) => row.at >= from && row.at < to)
            .sort((a, b) => a[1].at - b[1].at)
            .slice(0, limit)
            .map(([id, row]) => ({ id, at: row.at, value: structuredClone(row.value) }));
        },
        remove: async (id) => all.delete(id),
        async trim(before) {
          let removed = 0;
          for (const [id, row] of all) if (row.at < before && all.delete(id)) removed += 1;
          return removed;
        },
      };
    },
    async sweep(now) {
      let removed = 0;
      for (const [key, counter] of counters) if (counter.until <= now && counters.delete(key)) removed += 1;
      return removed;
    },
  };
}

export async function sqliteRecords(query: Query): Promise<Records> {
  await query('CREATE TABLE IF NOT EXISTS crunch_counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, until_ms INTEGER NOT NULL)');
  await query(`CREATE TABLE IF NOT EXISTS crunch_timeline (
    name TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, id))`);
  await query('CREATE INDEX IF NOT EXISTS crunch_timeline_at ON crunch_timeline (name, at)');
  return {
    counters: {
      async add(key, by, ttlMs) {
        const now = Date.now();
        // An expired counter starts again from `by`, in the same statement.
        const rows = await query(
          `INSERT INTO crunch_counters (key, value, until_ms) VALUES ($key, $by, $until)
           ON CONFLICT (key) DO UPDATE SET
             value = CASE WHEN until_ms <= $now THEN excluded.value ELSE value + excluded.value END,
             until_ms = CASE WHEN until_ms <= $now THEN excluded.until_ms ELSE until_ms END
           RETURNING value`,
          { $key: key, $by: by, $until: now + ttlMs, $now: now },
        );
        return Number(rows[0]!['value']);
      },
      async read(key) {
        const rows = await query('SELECT value FROM crunch_counters WHERE key = ? AND until_ms > ?', key, Date.now());
        return rows.length === 0 ? 0 : Number(rows[0]!['value']);
      },
    },
    timeline(name) {
      return {
        async put(id, at, value) {
          await query(
            'INSERT INTO crunch_timeline (name, id, at, value) VALUES (?, ?, ?, ?) ON CONFLICT (name, id) DO UPDATE SET at = excluded.at, value = excluded.value',
            name,
            id,
            at,
            JSON.stringify(value),
          );
        },
        async range(from, to, limit = UNLIMITED) {
          const rows = await query('SELECT id, at, value FROM crunch_timeline WHERE name = ? AND at >= ? AND at < ? ORDER BY at LIMIT ?', name, from, to, limit);
          return rows.map((row) => ({ id: String(row['id']), at: Number(row['at']), value: JSON.parse(String(row['value'])) as Json }));
        },
        async remove(id) {
          return (await query('DELETE FROM crunch_timeline WHERE name = ? AND id = ? RETURNING id', name, id)).length > 0;
        },
        async trim(before) {
          return (await query('DELETE FROM crunch_timeline WHERE name = ? AND at < ? RETURNING id', name, before)).length;
        },
      };
    },
    async sweep(now) {
      return (await query('DELETE FROM crunch_counters WHERE until_ms <= ? RETURNING key', now)).length;
    },
  };
}

/** INCRBY, and the expiry set by the add that created the counter. */
const ADD = `
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return total`;
const PUT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`;
const REMOVE = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return removed`;
const TRIM = `
local ids = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE')
for i = 1, #ids, 500 do redis.call('HDEL', KEYS[2], unpack(ids, i, math.min(i + 499, #ids))) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return #ids`;

/** Redis: a counter is a string key; a timeline a sorted set of ids by time plus a hash of their values. */
export function redisRecords(client: Redis): Records {
  const run = async (script: string, keys: string[], args: (string | number)[]) =>
    client.sendCommand(['EVAL', script, String(keys.length), ...keys, ...args.map(String)]);
  const counterKey = (key: string) => `crunch:count:${key}`;
  return {
    counters: {
      add: async (key, by, ttlMs) => Number(await run(ADD, [counterKey(key)], [Math.round(by), Math.max(1, Math.round(ttlMs))])),
      async read(key) {
        const value = await client.sendCommand(['GET', counterKey(key)]);
        return value === null ? 0 : Number(value);
      },
    },
    timeline(name) {
      const order = `crunch:timeline:${name}`;
      const values = `crunch:timeline:${name}:values`;
      return {
        async put(id, at, value) {
          await run(PUT, [order, values], [id, at, JSON.stringify(value)]);
        },
        async range(from, to, limit = UNLIMITED) {
          const ids = (await client.sendCommand(['ZRANGE', order, String(from), `(${to}`, 'BYSCORE', 'LIMIT', '0', String(limit), 'WITHSCORES'])) as string[];
          if (ids.length === 0) return [];
          const found: { id: string; at: number }[] = [];
          for (let i = 0; i < ids.length; i += 2) found.push({ id: ids[i]!, at: Number(ids[i + 1]) });
          const stored = (await client.sendCommand(['HMGET', values, ...found.map((f) => f.id)])) as (string | null)[];
          return found.flatMap((f, i) => (stored[i] == null ? [] : [{ ...f, value: JSON.parse(stored[i]!) as Json }]));
        },
        remove: async (id) => Number(await run(REMOVE, [order, values], [id])) === 1,
        trim: async (before) => Number(await run(TRIM, [order, values], [before])),
      };
    },
    // Redis expires counters itself.
    sweep: async () => 0,
  };
}
