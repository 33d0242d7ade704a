import type { Logger } from 'pino';
import type { Interpreter } from './interpreter.js';
import type { WarmPool } from './pool.js';
import type { Workspace } from './workspace.js';

/**
 * The live Python sessions: at most one interpreter per conversation, at most `maxLive` at once. A turn
 * leases its conversation's session; an interpreter idle for `idleMs` is stopped (its folder stays, so it
 * restarts on demand with its files). When every slot is taken, the least recently used idle interpreter
 * is stopped to make room; when none is idle, the turn waits for one instead of exhausting memory.
 */

export interface SessionsOptions {
  workspace: Workspace;
  /** Starts an interpreter in an existing session folder. */
  start: (id: string) => Promise<Interpreter>;
  pool: WarmPool | undefined;
  maxLive: number;
  idleMs: number;
  logger: Logger;
}

interface Entry {
  id: string;
  leased: boolean;
  /** Holds one of the `maxLive` slots (an interpreter running or starting). */
  slot: boolean;
  live: Interpreter | undefined;
  starting: Promise<Interpreter> | undefined;
  lastUsed: number;
  idleTimer: NodeJS.Timeout | undefined;
}

export interface Lease {
  readonly id: string;
  /** This turn found the session's interpreter of an earlier turn still running: its variables are there. */
  readonly resumed: boolean;
  /**
   * The session's interpreter, started if it is not running. `restarted`: an interpreter of this lease
   * had died (killed after a limit), so this is a new one without its variables.
   */
  interpreter(signal: AbortSignal): Promise<{ interpreter: Interpreter; restarted: boolean }>;
  release(): void;
}

export class Sessions {
  private readonly entries = new Map<string, Entry>();
  private waiters = new Set<() => void>();
  private slots = 0;
  private closed = false;

  constructor(private readonly options: SessionsOptions) {}

  /**
   * Leases a session for one turn: `id` of an existing one, or undefined for a new one (which adopts a warm
   * interpreter when the pool has one). The interpreter starts at once, in the background, so that Python
   * is ready by the time the model asks for it. `onWait` is called when the turn has to wait for a slot.
   */
  async acquire(id: string | undefined, signal: AbortSignal, onWait: () => void): Promise<Lease> {
    const entry = id === undefined ? undefined : await this.lease(this.entry(id), signal);
    const resumed = entry?.live?.alive === true;
    // A session whose interpreter died during its last turn still holds its slot.
    const needsSlot = !(entry?.slot ?? false);
    try {
      if (needsSlot) await this.reserve(signal, onWait);
    } catch (err) {
      if (entry) this.release(entry);
      throw err;
    }
    let leased: Entry;
    if (entry === undefined) {
      const warm = this.options.pool?.take();
      leased = this.entry(warm?.id ?? this.options.workspace.newId());
      leased.leased = true;
      // A warm interpreter that fails to start is replaced by a cold one on the turn's first call.
      leased.starting = warm?.interpreter;
    } else leased = entry;
    if (needsSlot) leased.slot = true;
    try {
      await this.options.workspace.create(leased.id);
    } catch (err) {
      this.release(leased);
      throw err;
    }
    let started = false;
    const ensure = async (): Promise<{ interpreter: Interpreter; restarted: boolean }> => {
      if (leased.live?.alive) {
        started = true;
        return { interpreter: leased.live, restarted: false };
      }
      const restarted = started;
      leased.starting ??= this.options.start(leased.id);
      const starting = leased.starting;
      try {
        leased.live = await starting;
      } finally {
        if (leased.starting === starting) leased.starting = undefined;
      }
      started = true;
      return { interpreter: leased.live, restarted };
    };
    ensure().catch(() => undefined); // errors surface on the turn's own call
    return {
      id: leased.id,
      resumed,
      interpreter: (turnSignal) => abortable(ensure(), turnSignal),
      release: () => this.release(leased),
    };
  }

  /** Stops the session's interpreter and deletes its folder (a reset). */
  async forget(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (entry) this.stop(entry);
    this.entries.delete(id);
    await this.options.workspace.remove(id);
  }

  /** Whether the session is live here (its folder must not be swept). */
  inUse(id: string): boolean {
    return this.entries.has(id) || (this.options.pool?.has(id) ?? false);
  }

  get liveCount(): number {
    return this.slots;
  }

  async close(): Promise<void> {
    this.closed = true;
    const live = [...this.entries.values()].flatMap((entry) => (entry.live ? [entry.live] : []));
    for (const entry of this.entries.values()) this.stop(entry);
    this.entries.clear();
    this.wake();
    await Promise.all(live.map((interpreter) => interpreter.exited));
  }

  private entry(id: string): Entry {
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { id, leased: false, slot: false, live: undefined, starting: undefined, lastUsed: Date.now(), idleTimer: undefined };
      this.entries.set(id, entry);
    }
    return entry;
  }

  private async lease(entry: Entry, signal: AbortSignal): Promise<Entry> {
    while (entry.leased) await this.changed(signal);
    entry.leased = true;
    clearTimeout(entry.idleTimer);
    return entry;
  }

  /** Takes a slot: stops the least recently used idle interpreter when all are taken, or waits. */
  private async reserve(signal: AbortSignal, onWait: () => void): Promise<void> {
    let told = false;
    while (this.slots >= this.options.maxLive) {
      const idle = [...this.entries.values()].filter((e) => e.slot && !e.leased).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (idle) {
        this.options.logger.info({ session: idle.id }, 'stopping an idle interpreter to make room');
        this.stop(idle);
        this.entries.delete(idle.id);
        continue;
      }
      if (!told) onWait();
      told = true;
      await this.changed(signal);
    }
    this.slots += 1;
  }

  private release(entry: Entry): void {
    entry.leased = false;
    entry.lastUsed = Date.now();
    void this.options.workspace.touch(entry.id);
    if (!entry.slot || this.closed) this.entries.delete(entry.id);
    else {
      entry.idleTimer = setTimeout(() => {
        this.options.logger.debug({ session: entry.id }, 'idle interpreter stopped');
        this.stop(entry);
        this.entries.delete(entry.id);
      }, this.options.idleMs).unref();
    }
    this.wake();
  }

  private stop(entry: Entry): void {
    clearTimeout(entry.idleTimer);
    entry.live?.kill();
    void entry.starting?.then((interpreter) => interpreter.kill(), () => undefined);
    entry.live = undefined;
    if (entry.slot) {
      entry.slot = false;
      this.slots -= 1;
      this.wake();
    }
  }

  private changed(signal: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the local engine is shutting down'));
    return abortable(new Promise<void>((resolve) => this.waiters.add(resolve)), signal);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const resolve of waiters) resolve();
  }
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
