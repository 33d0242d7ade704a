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
  /** Records a new entry; false when its message key is known (pending, or done within the dedupe window). */
  insert(entry: InboxEntry, dedupeUntilMs: number): Promise<boolean>;
  /** Pending entries, oldest first. */
  pending(): Promise<InboxEntry[]>;
  /** Saves a pending entry again (its attempts). */
  update(entry: InboxEntry): Promise<void>;
  /** Marks an entry done: it is no longer pending, and its key stays known until its dedupe window ends. */
  finish(messageKey: string): Promise<void>;
  isJoined(conversation: string, nowMs: number): Promise<boolean>;
  join(conversation: string, untilMs: number): Promise<void>;
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
  const entries = new Map<string, InboxEntry>();
  const queues = new Map<string, string[]>();
  const ready: string[] = [];
  const owned = new Set<string>();
  const waiters: (() => void)[] = [];
  const idlers: (() => void)[] = [];
  /** accept() calls run one at a time: the joined check, the claim and the record are one step. */
  let accepting: Promise<unknown> = Promise.resolve();

  for (const entry of await rows.pending()) enqueue(entry);
  const sweeper = setInterval(() => void rows.sweep(now()).catch(() => undefined), SWEEP_INTERVAL_MS).unref();

  function enqueue(entry: InboxEntry): void {
    const conversation = conversationId(entry.turn.conversation);
    entries.set(entry.turn.messageKey, entry);
    const queue = queues.get(conversation) ?? [];
    queue.push(entry.turn.messageKey);
    queues.set(conversation, queue);
    if (!owned.has(conversation) && !ready.includes(conversation)) {
      ready.push(conversation);
      waiters.shift()?.();
    }
  }

  function settleIdle(): void {
    if (queues.size > 0 || owned.size > 0) return;
    for (const resolve of idlers.splice(0)) resolve();
  }

  async function accept(turn: Turn, only: AcceptOptions = {}): Promise<AcceptOutcome> {
    const step = accepting.then(async (): Promise<AcceptOutcome> => {
      const conversation = conversationId(turn.conversation);
      const at = now();
      if (only.onlyIfJoined && !(await rows.isJoined(conversation, at))) return 'ignored';
      const entry: InboxEntry = { turn, attempts: 0, acceptedAt: at };
      if (!(await rows.insert(entry, at + options.dedupeMs))) return 'duplicate';
      await rows.join(conversation, at + options.joinedMs);
      enqueue(entry);
      return 'accepted';
    });
    accepting = step.catch(() => undefined);
    return step;
  }

  function lease(conversation: string): Lease {
    const lost = new AbortController().signal;
    return {
      conversation,
      lost,
      async next() {
        const key = queues.get(conversation)?.[0];
        const entry = key === undefined ? undefined : entries.get(key);
        if (entry === undefined) return undefined;
        entry.attempts += 1;
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
          waiters.shift()?.();
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

/** Rows in memory: the default for tests and the CLI (nothing survives the process). */
export function memoryRows(): InboxRows {
  const known = new Map<string, { entry: InboxEntry | undefined; until: number }>();
  const joined = new Map<string, number>();
  const clone = (entry: InboxEntry): InboxEntry => JSON.parse(JSON.stringify(entry)) as InboxEntry;
  return {
    async insert(entry, dedupeUntilMs) {
      const existing = known.get(entry.turn.messageKey);
      if (existing !== undefined && (existing.entry !== undefined || existing.until > entry.acceptedAt)) return false;
      known.delete(entry.turn.messageKey);
      known.set(entry.turn.messageKey, { entry: clone(entry), until: dedupeUntilMs });
      return true;
    },
    async pending() {
      return [...known.values()].flatMap((k) => (k.entry !== undefined ? [clone(k.entry)] : []));
    },
    async update(entry) {
      const row = known.get(entry.turn.messageKey);
      if (row?.entry !== undefined) row.entry = clone(entry);
    },
    async finish(messageKey) {
      const row = known.get(messageKey);
      if (row !== undefined) row.entry = undefined;
    },
    async isJoined(conversation, nowMs) {
      return (joined.get(conversation) ?? 0) > nowMs;
    },
    async join(conversation, untilMs) {
      joined.set(conversation, untilMs);
    },
    async sweep(nowMs) {
      for (const [key, row] of known) if (row.entry === undefined && row.until <= nowMs) known.delete(key);
      for (const [key, until] of joined) if (until <= nowMs) joined.delete(key);
    },
  };
}
