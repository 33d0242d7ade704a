import type { AcceptOptions, AcceptOutcome, Inbox, InboxEntry, Lease } from '../inbox.js';
import { conversationId, type Turn } from '../turn.js';

/**
 * The inbox of one process: turns kept in `rows` (memory, or a SQLite table that survives a restart), and
 * scheduled in memory. A conversation is owned by at most one worker; the others are ready in the order
 * their first pending turn arrived. On start, every turn left pending by a previous run of the process (a
 * crash, a kill -9) is scheduled again, in its original order.
 *
 * Several processes must not share one SQLite file this way: `crunch serve` takes a lease on the file first
 * (store/sqlite.ts), so a second one is refused at start-up.
 */
export interface InboxRows {
  /**
   * In one atomic step: when `onlyIfJoined`, checks that the conversation is joined; records the entry unless
   * its message key is known (pending, or done within its dedupe window); marks the conversation joined until
   * `joinedUntilMs`. Returns the entry's sequence number (arrival order), or what stopped it.
   */
  accept(entry: InboxEntry, limits: { dedupeUntilMs: number; joinedUntilMs: number; onlyIfJoined: boolean }): Promise<number | 'duplicate' | 'ignored'>;
  /** Pending entries with their sequence numbers, oldest first. */
  pending(): Promise<{ seq: number; entry: InboxEntry }[]>;
  /** Saves a pending entry again (its attempts). */
  update(entry: InboxEntry): Promise<void>;
  /** Marks an entry done: it is no longer pending, and its key stays known until its dedupe window ends. */
  finish(messageKey: string): Promise<void>;
  /** Forgets done entries and joined marks past their time. */
  sweep(nowMs: number): Promise<void>;
}

export interface LocalInboxOptions {
  /** How long a message key stays claimed after it was accepted (retries and twins arrive within it). */
  dedupeMs: number;
  /** How long a conversation stays joined after its last accepted turn. */
  joinedMs: number;
  now?: () => number;
}

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

export async function openLocalInbox(rows: InboxRows, options: LocalInboxOptions): Promise<Inbox> {
  const now = options.now ?? Date.now;
  const entries = new Map<string, InboxEntry & { seq: number }>();
  const queues = new Map<string, string[]>();
  const ready: string[] = [];
  const owned = new Set<string>();
  const waiters: (() => void)[] = [];
  const waking: (() => void)[] = [];
  const idlers: (() => void)[] = [];
  for (const { seq, entry } of await rows.pending()) enqueue(entry, seq);
  const sweeper = setInterval(() => void rows.sweep(now()).catch(() => undefined), SWEEP_INTERVAL_MS).unref();

  /** Queues an entry in its conversation by arrival (sequence) order: concurrent accepts may return out of order. */
  function enqueue(entry: InboxEntry, seq: number): void {
    const conversation = conversationId(entry.turn.conversation);
    entries.set(entry.turn.messageKey, { ...entry, seq });
    const queue = queues.get(conversation) ?? [];
    let at = queue.length;
    while (at > 0 && entries.get(queue[at - 1]!)!.seq > seq) at -= 1;
    queue.splice(at, 0, entry.turn.messageKey);
    queues.set(conversation, queue);
    if (!owned.has(conversation) && !ready.includes(conversation)) {
      ready.push(conversation);
      wakeWorker();
    }
  }

  /**
   * Wakes an idle worker after the I/O already waiting has been handled, and one worker per turn of the event
   * loop (setImmediate runs after its poll phase): under a burst, every request that has arrived is
   * acknowledged before the next turn's work starts.
   */
  function wakeWorker(): void {
    const wake = waiters.shift();
    if (wake === undefined) return;
    waking.push(wake);
    if (waking.length === 1) setImmediate(wakeNext);
  }
  function wakeNext(): void {
    waking.shift()?.();
    if (waking.length > 0) setImmediate(wakeNext);
  }

  function settleIdle(): void {
    if (queues.size > 0 || owned.size > 0) return;
    for (const resolve of idlers.splice(0)) resolve();
  }

  async function accept(turn: Turn, only: AcceptOptions = {}): Promise<AcceptOutcome> {
    const at = now();
    const entry: InboxEntry = { turn, attempts: 0, acceptedAt: at };
    const accepted = await rows.accept(entry, {
      dedupeUntilMs: at + options.dedupeMs,
      // 0 joins nothing: a join only ever extends.
      joinedUntilMs: only.join === false ? 0 : at + options.joinedMs,
      onlyIfJoined: only.onlyIfJoined ?? false,
    });
    if (typeof accepted !== 'number') return accepted;
    enqueue(entry, accepted);
    return 'accepted';
  }

  function lease(conversation: string): Lease {
    const lost = new AbortController().signal;
    return {
      conversation,
      lost,
      async next() {
        const key = queues.get(conversation)?.[0];
        const queued = key === undefined ? undefined : entries.get(key);
        if (queued === undefined) return undefined;
        queued.attempts += 1;
        const { seq: _seq, ...entry } = queued;
        await rows.update(entry);
        return entry;
      },
      async done(messageKey) {
        await rows.finish(messageKey);
        entries.delete(messageKey);
        const queue = queues.get(conversation) ?? [];
        const rest = queue.filter((k) => k !== messageKey);
        if (rest.length > 0) queues.set(conversation, rest);
        else queues.delete(conversation);
      },
      async release() {
        if (queues.has(conversation)) return false;
        owned.delete(conversation);
        settleIdle();
        return true;
      },
      async handBack() {
        owned.delete(conversation);
        if (queues.has(conversation)) {
          ready.unshift(conversation);
          wakeWorker();
        }
        settleIdle();
      },
    };
  }

  return {
    accept,
    async take(signal) {
      while (!signal.aborted) {
        const conversation = ready.shift();
        if (conversation !== undefined) {
          owned.add(conversation);
          return lease(conversation);
        }
        await new Promise<void>((resolve) => {
          const wake = () => {
            signal.removeEventListener('abort', wake);
            const at = waiters.indexOf(wake);
            if (at >= 0) waiters.splice(at, 1);
            resolve();
          };
          waiters.push(wake);
          signal.addEventListener('abort', wake, { once: true });
        });
      }
      return undefined;
    },
    idle() {
      if (queues.size === 0 && owned.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idlers.push(resolve));
    },
    async close() {
      clearInterval(sweeper);
      for (const wake of waiters.splice(0)) wake();
    },
  };
}

/** Rows in memory: the default for tests and the CLI (nothing survives the process). Each call is atomic. */
export function memoryRows(): InboxRows {
  const known = new Map<string, { entry: InboxEntry | undefined; until: number; seq: number }>();
  const joined = new Map<string, number>();
  let seq = 0;
  const clone = (entry: InboxEntry): InboxEntry => JSON.parse(JSON.stringify(entry)) as InboxEntry;
  return {
    async accept(entry, limits) {
      const conversation = conversationId(entry.turn.conversation);
      if (limits.onlyIfJoined && (joined.get(conversation) ?? 0) <= entry.acceptedAt) return 'ignored';
      const existing = known.get(entry.turn.messageKey);
      if (existing !== undefined && (existing.entry !== undefined || existing.until > entry.acceptedAt)) return 'duplicate';
      known.delete(entry.turn.messageKey);
      known.set(entry.turn.messageKey, { entry: clone(entry), until: limits.dedupeUntilMs, seq: ++seq });
      if (limits.joinedUntilMs > (joined.get(conversation) ?? 0)) joined.set(conversation, limits.joinedUntilMs);
      return seq;
    },
    async pending() {
      return [...known.values()].flatMap((k) => (k.entry !== undefined ? [{ seq: k.seq, entry: clone(k.entry) }] : []));
    },
    async update(entry) {
      const row = known.get(entry.turn.messageKey);
      if (row?.entry !== undefined) row.entry = clone(entry);
    },
    async finish(messageKey) {
      const row = known.get(messageKey);
      if (row !== undefined) row.entry = undefined;
    },
    async sweep(nowMs) {
      for (const [key, row] of known) if (row.entry === undefined && row.until <= nowMs) known.delete(key);
      for (const [key, until] of joined) if (until <= nowMs) joined.delete(key);
    },
  };
}
