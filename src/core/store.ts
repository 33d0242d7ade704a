import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Keyv from 'keyv';

/**
 * The conversation store: engine sessions, dedupe claims and whatever adapters must keep across a restart
 * (e.g. Teams conversation references). Backed by keyv: SQLite by default, Redis for several replicas,
 * memory for tests. Keys are built by the helpers below so that one name means one thing everywhere.
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Sets `key` only if it is absent; true when this caller got it. Atomic within one process for every
   * backend, and across processes on Redis (SET NX).
   */
  claim(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Deletes entries whose TTL has passed, for backends that only drop them when read (SQLite); returns how
   * many. The store also runs it periodically. Redis and memory expire entries themselves.
   */
  sweepExpired(): Promise<number>;
  close(): Promise<void>;
}

export const keys = {
  session: (conversationId: string) => `session:${conversationId}`,
  dedupe: (messageKey: string) => `dedupe:${messageKey}`,
  lock: (conversationId: string) => `lock:${conversationId}`,
};

const NAMESPACE = 'crunch';
/** How often the SQLite store deletes expired rows (dedupe claims, thread markers, hosted files). */
const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

export async function createStore(url: string): Promise<Store> {
  if (url.startsWith('memory://')) return new KeyvStore(new Keyv({ namespace: NAMESPACE }));
  if (url.startsWith('sqlite://')) {
    const path = resolve(url.slice('sqlite://'.length));
    mkdirSync(dirname(path), { recursive: true });
    const { default: KeyvSqlite } = await import('@keyv/sqlite');
    const sqlite = new KeyvSqlite({ uri: `sqlite://${path}`, busyTimeout: 5000, table: 'keyv' });
    // @keyv/sqlite has no TTL support: expired rows stay until read. keyv stores {"value":…,"expires":ms}.
    const sweep = async () => {
      const before = (await sqlite.query('SELECT COUNT(*) AS n FROM keyv')) as { n: number }[];
      await sqlite.query("DELETE FROM keyv WHERE json_extract(value, '$.expires') < ?", Date.now());
      const after = (await sqlite.query('SELECT COUNT(*) AS n FROM keyv')) as { n: number }[];
      return (before[0]?.n ?? 0) - (after[0]?.n ?? 0);
    };
    return new KeyvStore(new Keyv({ store: sqlite, namespace: NAMESPACE }), undefined, sweep);
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { default: KeyvRedis } = await import('@keyv/redis');
    const redis = new KeyvRedis(url);
    return new KeyvStore(new Keyv({ store: redis, namespace: NAMESPACE, useKeyPrefix: false }), async (key, ttlMs) => {
      const client = (await redis.getClient()) as unknown as {
        set(key: string, value: string, options: { NX: true; PX: number }): Promise<string | null>;
      };
      return (await client.set(`${NAMESPACE}::${key}`, JSON.stringify({ value: true }), { NX: true, PX: ttlMs })) === 'OK';
    });
  }
  throw new Error(`Unsupported STORE_URL scheme: ${url}`);
}

type AtomicClaim = (key: string, ttlMs: number) => Promise<boolean>;

class KeyvStore implements Store {
  /** Serialises claims on one key within this process, for backends without an atomic set-if-absent. */
  private readonly claiming = new Map<string, Promise<unknown>>();

  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly keyv: Keyv,
    private readonly atomicClaim?: AtomicClaim,
    private readonly sweep?: () => Promise<number>,
  ) {
    keyv.on('error', () => {
      // keyv re-throws on the failing call; this only keeps an emitter error from crashing the process.
    });
    if (sweep) this.sweeper = setInterval(() => void sweep().catch(() => undefined), SWEEP_INTERVAL_MS).unref();
  }

  async sweepExpired(): Promise<number> {
    return this.sweep ? this.sweep() : 0;
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
