import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { dirname, resolve } from 'node:path';
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { CrunchError } from '../errors.js';
import type { InboxEntry } from '../inbox.js';
import { conversationId } from '../turn.js';
import type { InboxRows } from './local-inbox.js';

/**
 * The embedded default: one SQLite file holds the key-value store (keyv's table, through `SqliteMap`), the
 * inbox of every conversation and the lease that keeps a second `crunch serve` off the same file.
 *
 * Through Node's own `node:sqlite`, synchronously: a statement takes microseconds, so running it on the
 * event loop costs less than handing it to a thread and back, and nothing queues behind anything else (with
 * @keyv/sqlite's sqlite3, every query waited on libuv's four-thread pool, and under a burst Slack's
 * acknowledgements, which wait for their turn to be recorded, queued behind the turns' own writes). WAL
 * journal with synchronous=NORMAL: a commit appends to the log without waiting for a disk flush (a power cut
 * may lose the last commits, a crashed process loses nothing).
 */
export type Query = (sql: string, ...params: SQLInputValue[] | [Record<string, SQLInputValue>]) => Promise<Record<string, unknown>[]>;

export interface Sqlite {
  path: string;
  query: Query;
  /** keyv's table as a Map-like store: keyv serialises values (and their expiry) to strings itself. */
  kv: SqliteMap;
  close(): void;
}

export async function openSqlite(url: string): Promise<Sqlite> {
  const path = resolve(url.slice('sqlite://'.length));
  mkdirSync(dirname(path), { recursive: true });
  const { DatabaseSync } = await importNodeSqlite();
  const db = new DatabaseSync(path, { timeout: 5000 });
  const statements = new Map<string, ReturnType<DatabaseSync['prepare']>>();
  const run = (sql: string, params: unknown[]) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement.all(...(params as SQLInputValue[])) as Record<string, unknown>[];
  };
  const query: Query = async (sql, ...params) => run(sql, params);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS keyv (key VARCHAR(255) PRIMARY KEY, value TEXT)');
  db.exec(`CREATE TABLE IF NOT EXISTS crunch_inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_key TEXT NOT NULL UNIQUE,
    conversation TEXT NOT NULL,
    entry TEXT,
    until_ms INTEGER NOT NULL,
    joined_until INTEGER NOT NULL)`);
  db.exec('CREATE TABLE IF NOT EXISTS crunch_joined (conversation TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)');
  // Recording a turn joins its conversation, in the same statement (a trigger), so that accepting is one write.
  // A join only ever extends (a refusal or the core's own turn records joined_until 0). The triggers are made
  // afresh at every start, so that a file written by an earlier version gets these.
  const join = `INSERT INTO crunch_joined (conversation, until_ms) VALUES (NEW.conversation, NEW.joined_until)
    ON CONFLICT (conversation) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms);`;
  db.exec('DROP TRIGGER IF EXISTS crunch_inbox_joins');
  db.exec('DROP TRIGGER IF EXISTS crunch_inbox_rejoins');
  db.exec(`CREATE TRIGGER crunch_inbox_joins AFTER INSERT ON crunch_inbox WHEN NEW.joined_until > 0 BEGIN ${join} END`);
  db.exec(`CREATE TRIGGER crunch_inbox_rejoins AFTER UPDATE OF entry ON crunch_inbox
    WHEN OLD.entry IS NULL AND NEW.entry IS NOT NULL AND NEW.joined_until > 0 BEGIN ${join} END`);
  db.exec('CREATE TABLE IF NOT EXISTS crunch_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until_ms INTEGER NOT NULL)');
  return { path, query, kv: new SqliteMap((sql, params) => run(sql, params)), close: () => db.close() };
}

/** A Map-like view of keyv's table, which is all keyv needs of a store (get, set, delete, clear). */
export class SqliteMap {
  constructor(private readonly run: (sql: string, params: unknown[]) => Record<string, unknown>[]) {}

  get(key: string): string | undefined {
    const row = this.run('SELECT value FROM keyv WHERE key = ?', [key])[0];
    return row === undefined ? undefined : String(row['value']);
  }

  set(key: string, value: string): this {
    this.run('INSERT INTO keyv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
    return this;
  }

  delete(key: string): boolean {
    return this.run('DELETE FROM keyv WHERE key = ? RETURNING key', [key]).length > 0;
  }

  clear(): void {
    this.run('DELETE FROM keyv', []);
  }
}

/**
 * node:sqlite announces itself as experimental when first loaded (Node 22; stable API in the versions Crunch
 * supports): that one notice is kept off the operator's console, every other warning still shows.
 */
async function importNodeSqlite(): Promise<typeof import('node:sqlite')> {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes('SQLite is an experimental feature')) return;
    (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return await import('node:sqlite');
  } finally {
    process.emitWarning = emit;
  }
}

/** The inbox's rows in `crunch_inbox`: `entry` is the pending turn's JSON, NULL once it is done. */
export function sqliteRows(query: Query): InboxRows {
  return {
    async accept(entry, limits) {
      const conversation = conversationId(entry.turn.conversation);
      // One statement: the joined check, the claim (a known key is taken again only once it is done and its
      // dedupe window has passed, not yet swept) and the record; the trigger joins the conversation.
      const rows = await query(
        `INSERT INTO crunch_inbox (message_key, conversation, entry, until_ms, joined_until)
         SELECT $key, $conversation, $entry, $until, $joinedUntil
         WHERE NOT $onlyIfJoined OR EXISTS (SELECT 1 FROM crunch_joined WHERE conversation = $conversation AND until_ms > $now)
         ON CONFLICT (message_key) DO UPDATE SET entry = excluded.entry, until_ms = excluded.until_ms, joined_until = excluded.joined_until
           WHERE crunch_inbox.entry IS NULL AND crunch_inbox.until_ms <= $now
         RETURNING seq`,
        {
          $key: entry.turn.messageKey,
          $conversation: conversation,
          $entry: JSON.stringify(entry),
          $until: limits.dedupeUntilMs,
          $joinedUntil: limits.joinedUntilMs,
          $onlyIfJoined: limits.onlyIfJoined ? 1 : 0,
          $now: entry.acceptedAt,
        },
      );
      if (rows.length === 1) return Number(rows[0]!['seq']);
      if (!limits.onlyIfJoined) return 'duplicate';
      const joined = await query('SELECT 1 FROM crunch_joined WHERE conversation = ? AND until_ms > ?', conversation, entry.acceptedAt);
      return joined.length > 0 ? 'duplicate' : 'ignored';
    },
    async pending() {
      const rows = await query('SELECT seq, entry FROM crunch_inbox WHERE entry IS NOT NULL ORDER BY seq');
      return rows.map((row) => ({ seq: Number(row['seq']), entry: JSON.parse(String(row['entry'])) as InboxEntry }));
    },
    async update(entry) {
      await query('UPDATE crunch_inbox SET entry = ? WHERE message_key = ? AND entry IS NOT NULL', JSON.stringify(entry), entry.turn.messageKey);
    },
    async finish(messageKey) {
      await query('UPDATE crunch_inbox SET entry = NULL WHERE message_key = ?', messageKey);
    },
    async sweep(nowMs) {
      await query('DELETE FROM crunch_inbox WHERE entry IS NULL AND until_ms <= ?', nowMs);
      await query('DELETE FROM crunch_joined WHERE until_ms <= ?', nowMs);
    },
  };
}

/** How long the serving lease lasts without a heartbeat, and how often it is renewed. */
const LEASE_MS = 15_000;
const HEARTBEAT_MS = 5_000;

/**
 * Takes the file's serving lease for this process, so that a second `crunch serve` on the same SQLite file
 * is refused at start-up (two processes would each run the other's recovered turns, and answer twice). A
 * lease left by a process that died is taken over at once when that process was on this host (its pid is
 * gone), otherwise once it has not been renewed for LEASE_MS (start-up waits that long to find out).
 * Returns the release function.
 */
export async function takeServingLease(query: Query, path: string, now: () => number = Date.now): Promise<() => Promise<void>> {
  const owner = `${hostname()}:${process.pid}`;
  const read = async () => (await query('SELECT owner, until_ms FROM crunch_lease WHERE name = ?', 'serve'))[0];
  let held = await read();
  const foreign = (row: typeof held) => row !== undefined && String(row['owner']) !== owner && Number(row['until_ms']) > now();
  const refuse = (row: NonNullable<typeof held>) =>
    new CrunchError(
      'config',
      `Another Crunch process (${String(row['owner'])}) is serving from ${path}. Stop it first, or run several replicas on Redis (STORE_URL=redis://…); one SQLite file serves one process.`,
    );
  if (foreign(held)) {
    const holder = String(held!['owner']);
    if (onThisHost(holder)) {
      if (alive(holder)) throw refuse(held!);
    } else {
      // A process elsewhere (another container on this volume), maybe dead: its lease runs out unless renewed.
      await delay(Math.max(0, Number(held!['until_ms']) - now()) + 100);
      held = await read();
      if (foreign(held)) throw refuse(held!);
    }
  }
  const holder = held === undefined ? undefined : String(held['owner']);
  // Compare-and-set on what was read: of two processes starting at once, one wins.
  const taken = await query(
    `INSERT INTO crunch_lease (name, owner, until_ms) VALUES ('serve', ?, ?)
     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms WHERE crunch_lease.owner = ?
     RETURNING owner`,
    owner,
    now() + LEASE_MS,
    holder ?? owner,
  );
  if (taken.length !== 1) throw new CrunchError('config', `Another Crunch process took ${path} at the same moment; one SQLite file serves one process.`);
  const heartbeat = setInterval(() => {
    void query("UPDATE crunch_lease SET until_ms = ? WHERE name = 'serve' AND owner = ?", now() + LEASE_MS, owner).catch(() => undefined);
  }, HEARTBEAT_MS).unref();
  return async () => {
    clearInterval(heartbeat);
    await query("DELETE FROM crunch_lease WHERE name = 'serve' AND owner = ?", owner).catch(() => undefined);
  };
}

function onThisHost(holder: string): boolean {
  return holder.slice(0, holder.lastIndexOf(':')) === hostname();
}

/** Whether the process `host:pid` of this host is running. */
function alive(holder: string): boolean {
  const at = holder.lastIndexOf(':');
  try {
    process.kill(Number(holder.slice(at + 1)), 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
