import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { dirname, resolve } from 'node:path';
import type KeyvSqlite from '@keyv/sqlite';
import { CrunchError } from '../errors.js';
import type { InboxEntry } from '../inbox.js';
import type { InboxRows } from './local-inbox.js';

/**
 * The embedded default: one SQLite file holds the key-value store (keyv's table), the inbox of every
 * conversation and the lease that keeps a second `crunch serve` off the same file. WAL journal with
 * synchronous=NORMAL: a commit appends to the log without waiting for a disk flush (a power cut may lose
 * the last commits, a crashed process loses nothing), and readers never wait for the writer.
 */
export type Query = (sql: string, ...params: unknown[]) => Promise<Record<string, unknown>[]>;

export async function openSqlite(url: string): Promise<{ path: string; sqlite: KeyvSqlite; query: Query }> {
  const path = resolve(url.slice('sqlite://'.length));
  mkdirSync(dirname(path), { recursive: true });
  const { default: Sqlite } = await import('@keyv/sqlite');
  const sqlite = new Sqlite({ uri: `sqlite://${path}`, busyTimeout: 5000, table: 'keyv' });
  const query = sqlite.query as Query;
  await query('PRAGMA journal_mode = WAL');
  await query('PRAGMA synchronous = NORMAL');
  await query(`CREATE TABLE IF NOT EXISTS crunch_inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_key TEXT NOT NULL UNIQUE,
    entry TEXT,
    until_ms INTEGER NOT NULL)`);
  await query('CREATE TABLE IF NOT EXISTS crunch_joined (conversation TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)');
  await query('CREATE TABLE IF NOT EXISTS crunch_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until_ms INTEGER NOT NULL)');
  return { path, sqlite, query };
}

/** The inbox's rows in `crunch_inbox`: `entry` is the pending turn's JSON, NULL once it is done. */
export function sqliteRows(query: Query): InboxRows {
  return {
    async insert(entry, dedupeUntilMs) {
      // A known key is taken again only once it is done and its dedupe window has passed (not yet swept).
      const rows = await query(
        `INSERT INTO crunch_inbox (message_key, entry, until_ms) VALUES (?, ?, ?)
         ON CONFLICT (message_key) DO UPDATE SET entry = excluded.entry, until_ms = excluded.until_ms
           WHERE crunch_inbox.entry IS NULL AND crunch_inbox.until_ms <= ?
         RETURNING seq`,
        entry.turn.messageKey,
        JSON.stringify(entry),
        dedupeUntilMs,
        entry.acceptedAt,
      );
      return rows.length === 1;
    },
    async pending() {
      const rows = await query('SELECT entry FROM crunch_inbox WHERE entry IS NOT NULL ORDER BY seq');
      return rows.map((row) => JSON.parse(String(row['entry'])) as InboxEntry);
    },
    async update(entry) {
      await query('UPDATE crunch_inbox SET entry = ? WHERE message_key = ? AND entry IS NOT NULL', JSON.stringify(entry), entry.turn.messageKey);
    },
    async finish(messageKey) {
      await query('UPDATE crunch_inbox SET entry = NULL WHERE message_key = ?', messageKey);
    },
    async isJoined(conversation, nowMs) {
      return (await query('SELECT 1 FROM crunch_joined WHERE conversation = ? AND until_ms > ?', conversation, nowMs)).length > 0;
    },
    async join(conversation, untilMs) {
      await query(
        'INSERT INTO crunch_joined (conversation, until_ms) VALUES (?, ?) ON CONFLICT (conversation) DO UPDATE SET until_ms = excluded.until_ms',
        conversation,
        untilMs,
      );
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
