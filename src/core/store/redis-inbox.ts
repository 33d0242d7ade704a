import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { AcceptOptions, AcceptOutcome, Inbox, InboxEntry, Lease } from '../inbox.js';
import { redisKeys as k } from '../keys.js';
import { conversationId, type Turn } from '../turn.js';
import type { Redis } from './redis.js';

/**
 * The inbox on Redis, for several replicas. Each conversation's pending turns are a LIST (`inbox:<c>`) of
 * message keys with their entries beside it; a conversation that has work is announced once on the
 * `ready` STREAM, read by one consumer group. The consumer that reads the announcement owns the
 * conversation for as long as the announcement is pending in its PEL, renewing it (XCLAIM to itself)
 * while it works; it runs the conversation's turns oldest first, and acknowledges the announcement when
 * the list is empty. If its replica dies, the announcement goes idle and another replica takes it over
 * with XAUTOCLAIM after STALE_MS and resumes the unfinished turn: a conversation is never run by two
 * replicas at once, its turns run in arrival order, and a turn is lost only with Redis itself.
 *
 * Accepting a turn (claim, record, announce) and letting a conversation go (ack only if the list is empty)
 * are Lua scripts, so no announcement is ever lost between a worker deciding it is done and a new turn.
 */

/** By default, an owner that has not renewed its conversation for this long is taken for dead. */
export const TAKEOVER_MS = 20_000;
const BLOCK_MS = 2_000;
/** A recorded turn is kept at most this long (a week), even if something went wrong with its conversation. */
const ENTRY_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const ACCEPT = `
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[6]) == 0 then return 'ignored' end
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) then return 'duplicate' end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ${ENTRY_TTL_MS})
redis.call('RPUSH', KEYS[3], ARGV[1])
if ARGV[5] ~= '0' then redis.call('SET', KEYS[6], '1', 'PX', ARGV[5]) end
if redis.call('SET', KEYS[4], '1', 'NX') then redis.call('XADD', KEYS[5], '*', 'c', ARGV[3]) end
return 'accepted'`;

/** Lets the conversation go if its list is empty; with ARGV[3] = '1' (hand back) re-announces it otherwise. */
const RELEASE = `
local empty = redis.call('LLEN', KEYS[1]) == 0
if not empty and ARGV[3] ~= '1' then return 0 end
redis.call('XACK', KEYS[3], '${k.group}', ARGV[1])
redis.call('XDEL', KEYS[3], ARGV[1])
if empty then redis.call('DEL', KEYS[2]) else redis.call('XADD', KEYS[3], '*', 'c', ARGV[2]) end
return 1`;

/** Renews the announcements this consumer still owns; returns the ones another consumer took over. */
const RENEW = `
local lost = {}
for i = 2, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], '${k.group}', ARGV[i], ARGV[i], 1)
  if #p == 0 or p[1][2] ~= ARGV[1] then table.insert(lost, ARGV[i])
  else redis.call('XCLAIM', KEYS[1], '${k.group}', ARGV[1], 0, ARGV[i], 'JUSTID') end
end
return lost`;

export interface RedisInboxOptions {
  dedupeMs: number;
  joinedMs: number;
  /** How long a conversation's owner may go without renewing it before another replica takes it over. */
  takeoverMs?: number;
  onError?: (err: unknown, what: string) => void;
}

interface Owned {
  announcement: string;
  lost: AbortController;
}

export async function openRedisInbox(client: Redis, reader: Redis, options: RedisInboxOptions): Promise<Inbox> {
  const consumer = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const takeoverMs = options.takeoverMs ?? TAKEOVER_MS;
  const renewMs = Math.max(250, Math.floor(takeoverMs / 4));
  const owned = new Map<string, Owned>();
  let recoveredAt = 0;
  /** Message keys accepted here and not yet seen done, for idle(). */
  const acceptedHere = new Set<string>();
  let reading: Promise<unknown> = Promise.resolve();
  const cmd = (args: string[]) => client.sendCommand(args) as Promise<unknown>;
  const report = (what: string) => (err: unknown) => options.onError?.(err, what);

  // A take() that stops waiting unblocks the reader's XREADGROUP at once, instead of waiting out BLOCK_MS.
  const readerId = String(await reader.sendCommand(['CLIENT', 'ID']));
  const unblock = () => void cmd(['CLIENT', 'UNBLOCK', readerId]).catch(() => undefined);
  /** The consumer group, made once; again after Redis lost it (a restart without persistence). */
  const createGroup = () =>
    cmd(['XGROUP', 'CREATE', k.ready, k.group, '0', 'MKSTREAM']).catch((err: unknown) => {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    });
  await createGroup();

  const renewer = setInterval(() => void renew().catch(report('renewing owned conversations')), renewMs).unref();

  async function renew(): Promise<void> {
    if (owned.size === 0) return;
    const byAnnouncement = new Map([...owned.values()].map((o) => [o.announcement, o]));
    const lost = (await client.sendCommand(['EVAL', RENEW, '1', k.ready, consumer, ...byAnnouncement.keys()])) as string[];
    for (const id of lost) byAnnouncement.get(id)?.lost.abort(new Error('another replica took this conversation over'));
  }

  /**
   * Takes over one conversation whose owner stopped renewing it (its replica died). Only a worker that is
   * free asks (from take()), so what is taken over is worked on, and renewed, at once.
   */
  async function recoverOne(): Promise<{ conversation: string; announcement: string } | undefined> {
    const reply = (await cmd(['XAUTOCLAIM', k.ready, k.group, consumer, String(takeoverMs), '0-0', 'COUNT', '1'])) as [string, ([string, string[]] | null)[]];
    const [id, fields] = reply[1]?.find((e) => e !== null && e[1] !== null) ?? [];
    if (id === undefined || fields === undefined || owned.has(field(fields, 'c'))) return undefined;
    return { conversation: field(fields, 'c'), announcement: id };
  }

  function lease(conversation: string, announcement: string): Lease {
    const lost = new AbortController();
    owned.set(conversation, { announcement, lost });
    const let_go = async (handBack: boolean) => {
      const released = (await client.sendCommand([
        'EVAL', RELEASE, '3', k.inbox(conversation), k.active(conversation), k.ready, announcement, conversation, handBack ? '1' : '0',
      ])) as number;
      if (released === 1) owned.delete(conversation);
      return released === 1;
    };
    return {
      conversation,
      lost: lost.signal,
      async next() {
        for (;;) {
          const key = (await cmd(['LINDEX', k.inbox(conversation), '0'])) as string | null;
          if (key === null) return undefined;
          const raw = (await cmd(['GET', k.entry(key)])) as string | null;
          if (raw === null) {
            // Its record expired (a week old): nothing left to run.
            await cmd(['LREM', k.inbox(conversation), '1', key]);
            continue;
          }
          const entry = JSON.parse(raw) as InboxEntry;
          entry.attempts += 1;
          await cmd(['SET', k.entry(key), JSON.stringify(entry), 'KEEPTTL']);
          return entry;
        }
      },
      async done(messageKey) {
        await client.multi().addCommand(['LREM', k.inbox(conversation), '1', messageKey]).addCommand(['DEL', k.entry(messageKey)]).exec();
        acceptedHere.delete(messageKey);
      },
      release: () => let_go(false),
      async handBack() {
        await let_go(true);
      },
    };
  }

  /** The next conversation for a free worker: one taken over from a dead replica, or the next announcement. */
  async function nextAnnouncement(signal: AbortSignal): Promise<{ conversation: string; announcement: string } | undefined> {
    if (Date.now() - recoveredAt >= renewMs) {
      recoveredAt = Date.now();
      const abandoned = await recoverOne();
      if (abandoned !== undefined) return abandoned;
    }
    const reply = (await reader.sendCommand(['XREADGROUP', 'GROUP', k.group, consumer, 'COUNT', '1', 'BLOCK', String(BLOCK_MS), 'STREAMS', k.ready, '>'])) as
      | [string, [string, string[]][]][]
      | null;
    const [id, fields] = reply?.[0]?.[1]?.[0] ?? [];
    if (id === undefined || fields === undefined) return undefined;
    const conversation = field(fields, 'c');
    if (owned.has(conversation)) {
      // Already worked on here: the announcement is redundant.
      await client.multi().addCommand(['XACK', k.ready, k.group, id]).addCommand(['XDEL', k.ready, id]).exec();
      return undefined;
    }
    if (signal.aborted) {
      // Read just as this replica stopped: give it straight back.
      await client.sendCommand(['EVAL', RELEASE, '3', k.inbox(conversation), k.active(conversation), k.ready, id, conversation, '1']);
      return undefined;
    }
    return { conversation, announcement: id };
  }

  return {
    async accept(turn: Turn, only: AcceptOptions = {}): Promise<AcceptOutcome> {
      const conversation = conversationId(turn.conversation);
      const entry: InboxEntry = { turn, attempts: 0, acceptedAt: Date.now() };
      const outcome = (await client.sendCommand([
        'EVAL', ACCEPT, '6',
        k.claim(turn.messageKey), k.entry(turn.messageKey), k.inbox(conversation), k.active(conversation), k.ready, k.joined(conversation),
        turn.messageKey, JSON.stringify(entry), conversation, String(options.dedupeMs), only.join === false ? '0' : String(options.joinedMs), only.onlyIfJoined ? '1' : '0',
      ])) as AcceptOutcome;
      if (outcome === 'accepted') acceptedHere.add(turn.messageKey);
      return outcome;
    },

    async take(signal) {
      signal.addEventListener('abort', unblock, { once: true });
      try {
        while (!signal.aborted) {
          // One blocking read at a time, on the reader's own connection.
          const read = reading.then(() => (signal.aborted ? undefined : nextAnnouncement(signal)));
          reading = read.catch(() => undefined);
          try {
            const next = await read;
            if (next !== undefined) return lease(next.conversation, next.announcement);
          } catch (err) {
            if (signal.aborted) break;
            if (String((err as Error).message).includes('NOGROUP')) await createGroup().catch(() => undefined);
            else report('reading the ready stream')(err);
            await delay(1000, undefined, { signal }).catch(() => undefined);
          }
        }
        return undefined;
      } finally {
        signal.removeEventListener('abort', unblock);
      }
    },

    async idle() {
      for (;;) {
        const pending = [...acceptedHere];
        if (pending.length === 0 && owned.size === 0) return;
        const left = pending.length === 0 ? 0 : ((await cmd(['EXISTS', ...pending.map((key) => k.entry(key))])) as number);
        if (left === 0) acceptedHere.clear();
        if (left === 0 && owned.size === 0) return;
        await delay(50);
      }
    },

    async close() {
      clearInterval(renewer);
      await reading;
    },
  };
}

function field(fields: string[], name: string): string {
  const at = fields.indexOf(name);
  return at >= 0 ? fields[at + 1]! : '';
}
