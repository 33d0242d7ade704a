import Keyv from 'keyv';
import type { Inbox } from '../inbox.js';
import { openLocalInbox, memoryRows } from './local-inbox.js';
import { closeRedis, connectRedis, type Redis } from './redis.js';
import { openRedisInbox } from './redis-inbox.js';
import { type Counters, memoryRecords, type Records, redisRecords, sqliteRecords, type Timeline } from './records.js';
import { openSqlite, sqliteRows, takeServingLease } from './sqlite.js';

/**
 * The conversation store: engine sessions, delivery ledgers and what adapters must keep across a restart
 * (Teams file offers). Backed by keyv: SQLite by default, Redis for several replicas, memory for tests.
 * Keys are built in keys.ts.
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Sets `key` only if it is absent; true when this caller got it. Atomic within one process, and on Redis across processes. */
  claim(key: string, ttlMs: number): Promise<boolean>;
  /** Integer counters that replicas add to at once (spend against budgets). */
  counters: Counters;
  /** Records kept by time and read back by range (the usage log, conversations by last use). */
  timeline(name: string): Timeline;
  /** Deletes entries whose TTL has passed, for backends that only drop them when read (SQLite); returns how many. */
  sweepExpired(): Promise<number>;
  close(): Promise<void>;
}

/** A store and the inbox that goes with it, on one backend. */
export interface Storage {
  /** "memory", "sqlite" or "redis". */
  kind: 'memory' | 'sqlite' | 'redis';
  store: Store;
  inbox: Inbox;
  /**
   * For `crunch serve` on SQLite: takes the file's serving lease, so that a second process on the same file
   * is refused with a message naming it. A no-op elsewhere.
   */
  claimServing(): Promise<void>;
  /** Resolves once the backend answers a trivial command; rejects when it cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StorageOptions {
  /** How long a message key stays claimed. */
  dedupeMs: number;
  /** How long a conversation stays joined after its last turn. */
  joinedMs: number;
  /** Redis: how long a replica may go silent before another takes its conversations over (default 20 s). */
  takeoverMs?: number;
  /** Told about background failures (a lost Redis connection), to log them. */
  onError?: (err: unknown, what: string) => void;
  /**
   * Keep the inbox in this process's memory whatever the backend (the CLI: its turns are its own, and it
   * must never take a chat platform's turns from the replicas' inbox).
   */
  privateInbox?: boolean;
}

const NAMESPACE = 'crunch';
/** How often the SQLite store deletes expired rows. */
const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

export async function openStorage(url: string, options: StorageOptions): Promise<Storage> {
  const inboxOptions = { dedupeMs: options.dedupeMs, joinedMs: options.joinedMs };
  if (url.startsWith('memory://')) {
    const store = new KeyvStore(new Keyv({ namespace: NAMESPACE }), memoryRecords());
    const inbox = await openLocalInbox(memoryRows(), inboxOptions);
    return { kind: 'memory', store, inbox, claimServing: async () => undefined, ping: async () => undefined, close: closing(inbox, store) };
  }
  if (url.startsWith('sqlite://')) {
    const sqlite = await openSqlite(url);
    // keyv stores {"value":…,"expires":ms} and drops an expired row only when it is read: the sweep deletes the rest.
    const sweep = async () => (await sqlite.query("DELETE FROM keyv WHERE json_extract(value, '$.expires') < ? RETURNING key", Date.now())).length;
    const store = new KeyvStore(new Keyv({ store: sqlite.kv, namespace: NAMESPACE }), await sqliteRecords(sqlite.query), undefined, sweep);
    const inbox = await openLocalInbox(options.privateInbox ? memoryRows() : sqliteRows(sqlite.query), inboxOptions);
    let release: (() => Promise<void>) | undefined;
    return {
      kind: 'sqlite',
      store,
      inbox,
      async claimServing() {
        release ??= await takeServingLease(sqlite.query, sqlite.path);
      },
      ping: async () => void (await sqlite.query('SELECT 1')),
      async close() {
        await release?.();
        await closing(inbox, store)();
        sqlite.close();
      },
    };
  }
  const onError = (err: unknown) => options.onError?.(err, 'the Redis connection');
  const client = await connectRedis(url, { onError });
  const { default: KeyvRedis } = await import('@keyv/redis');
  const adapter = new KeyvRedis(client as never, { throwOnErrors: true, throwOnConnectError: true });
  const store = new KeyvStore(new Keyv({ store: adapter, namespace: NAMESPACE, useKeyPrefix: false, throwOnErrors: true }), redisRecords(client), redisClaim(client));
  if (options.privateInbox) {
    const inbox = await openLocalInbox(memoryRows(), inboxOptions);
    const close = async () => {
      await inbox.close();
      await closeRedis(client);
    };
    return { kind: 'redis', store, inbox, claimServing: async () => undefined, ping: () => pingRedis(client), close };
  }
  // Blocking reads (XREADGROUP … BLOCK) get their own connection, so that they never hold up other commands.
  const reader = await connectRedis(url, { onError, commandTimeoutMs: 10_000 }).catch(async (err: unknown) => {
    await closeRedis(client);
    throw err;
  });
  const inbox = await openRedisInbox(client, reader, {
    ...inboxOptions,
    ...(options.takeoverMs !== undefined ? { takeoverMs: options.takeoverMs } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
  });
  return {
    kind: 'redis',
    store,
    inbox,
    claimServing: async () => undefined,
    ping: () => pingRedis(client),
    async close() {
      await inbox.close();
      await closeRedis(reader);
      await closeRedis(client);
    },
  };
}

async function pingRedis(client: Redis): Promise<void> {
  await client.sendCommand(['PING']);
}

function closing(inbox: Inbox, store: Store): () => Promise<void> {
  return async () => {
    await inbox.close();
    await store.close();
  };
}

type AtomicClaim = (key: string, ttlMs: number) => Promise<boolean>;

function redisClaim(client: Redis): AtomicClaim {
  return async (key, ttlMs) =>
    String(await client.sendCommand(['SET', `${NAMESPACE}::${key}`, JSON.stringify({ value: true }), 'NX', 'PX', String(ttlMs)])) === 'OK';
}

class KeyvStore implements Store {
  /** Serialises claims on one key within this process, for backends without an atomic set-if-absent. */
  private readonly claiming = new Map<string, Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly keyv: Keyv,
    private readonly records: Records,
    private readonly atomicClaim?: AtomicClaim,
    private readonly sweep?: () => Promise<number>,
  ) {
    keyv.on('error', () => {
      // keyv re-throws on the failing call; this only keeps an emitter error from crashing the process.
    });
    if (sweep) this.sweeper = setInterval(() => void this.sweepExpired().catch(() => undefined), SWEEP_INTERVAL_MS).unref();
  }

  get counters(): Counters {
    return this.records.counters;
  }

  timeline(name: string): Timeline {
    return this.records.timeline(name);
  }

  async sweepExpired(): Promise<number> {
    return (this.sweep ? await this.sweep() : 0) + (await this.records.sweep(Date.now()));
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.keyv.get<T>(key)) ?? undefined;
  }

  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    await this.keyv.set(key, value, ttlMs);
  }

  async delete(key: string): Promise<void> {
    await this.keyv.delete(key);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    if (this.atomicClaim) return this.atomicClaim(key, ttlMs);
    const previous = this.claiming.get(key) ?? Promise.resolve();
    const attempt = previous.then(async () => {
      if ((await this.keyv.get(key)) !== undefined) return false;
      await this.keyv.set(key, true, ttlMs);
      return true;
    });
    const settled = attempt.catch(() => undefined);
    this.claiming.set(key, settled);
    void settled.then(() => {
      if (this.claiming.get(key) === settled) this.claiming.delete(key);
    });
    return attempt;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.keyv.disconnect();
  }
}
