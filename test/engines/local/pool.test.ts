import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Interpreter } from '../../../src/engines/local/interpreter.js';
import { WarmPool } from '../../../src/engines/local/pool.js';
import { Sessions } from '../../../src/engines/local/sessions.js';
import { Workspace } from '../../../src/engines/local/workspace.js';

/**
 * The bookkeeping of sessions and the warm pool, with stand-in interpreters (the real ones are exercised
 * by the other local engine tests): which interpreter a turn gets, when one is started, stopped or waited for.
 */

class Stub {
  alive = true;
  private done!: () => void;
  readonly exited = new Promise<void>((resolve) => (this.done = resolve));
  constructor(readonly id: string) {}
  kill(): void {
    this.alive = false;
    this.done();
  }
}

let root: string;
let workspace: Workspace;
let started: Stub[];
let failNext: boolean;
const logger = pino({ level: 'silent' });
const signal = new AbortController().signal;

async function start(id: string): Promise<Interpreter> {
  await workspace.create(id);
  if (failNext) {
    failNext = false;
    throw new Error('sandbox failed');
  }
  const stub = new Stub(id);
  started.push(stub);
  return stub as unknown as Interpreter;
}

function sessions(options: { pool?: WarmPool; maxLive?: number; idleMs?: number } = {}): Sessions {
  return new Sessions({ workspace, start, pool: options.pool, maxLive: options.maxLive ?? 4, idleMs: options.idleMs ?? 60_000, logger });
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'crunch-pool-'));
  workspace = new Workspace(root, undefined);
  started = [];
  failNext = false;
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('warm pool and sessions', () => {
  it('hands a new conversation the ready warm interpreter itself, and starts exactly one replacement', async () => {
    const pool = new WarmPool({ size: 1, newId: () => workspace.newId(), start, discard: (id) => workspace.remove(id), logger });
    pool.fill();
    await pool.settled();
    const [warm] = started;
    const lease = await sessions({ pool }).acquire(undefined, signal, () => undefined);
    const { interpreter, restarted } = await lease.interpreter(signal);
    expect(interpreter).toBe(warm);
    expect(lease.id).toBe(warm!.id);
    expect(restarted).toBe(false);
    await pool.settled();
    expect(started).toHaveLength(2);
    await pool.close();
  });

  it('falls back to a cold start when the warm interpreter fails to start', async () => {
    failNext = true;
    const pool = new WarmPool({ size: 1, newId: () => workspace.newId(), start, discard: async () => undefined, logger });
    pool.fill();
    const lease = await sessions({ pool }).acquire(undefined, signal, () => undefined);
    const { interpreter } = await lease.interpreter(signal);
    // Started cold in the conversation's own folder (the pool has meanwhile started a replacement of its own).
    expect(interpreter).toBe(started.find((stub) => stub.id === lease.id));
    await pool.close();
  });

  it('restarts a dead interpreter within the turn and says so; resumes a live one on the next turn', async () => {
    const live = sessions();
    const first = await live.acquire(undefined, signal, () => undefined);
    const one = await first.interpreter(signal);
    one.interpreter.kill();
    const two = await first.interpreter(signal);
    expect(two.restarted).toBe(true);
    expect(two.interpreter).not.toBe(one.interpreter);
    first.release();
    const next = await live.acquire(first.id, signal, () => undefined);
    expect(next.resumed).toBe(true);
    expect((await next.interpreter(signal)).interpreter).toBe(two.interpreter);
  });

  it('stops the least recently used idle interpreter for room, and queues turns while all are busy', async () => {
    const live = sessions({ maxLive: 1 });
    const a = await live.acquire(undefined, signal, () => undefined);
    const aInterpreter = (await a.interpreter(signal)).interpreter as unknown as Stub;
    let waited = false;
    const b = live.acquire(undefined, signal, () => (waited = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(waited).toBe(true);
    a.release();
    const bLease = await b;
    await bLease.interpreter(signal);
    expect(aInterpreter.alive).toBe(false);
    expect(live.liveCount).toBe(1);

    const controller = new AbortController();
    const c = live.acquire(undefined, controller.signal, () => undefined);
    controller.abort(new Error('deadline'));
    await expect(c).rejects.toThrow('deadline');
    bLease.release();
    const back = await live.acquire(a.id, signal, () => undefined);
    expect(back.resumed).toBe(false);
    expect(live.liveCount).toBe(1);
  });

  it('stops an interpreter left idle, keeping its folder', async () => {
    const live = sessions({ idleMs: 50 });
    const lease = await live.acquire(undefined, signal, () => undefined);
    const stub = (await lease.interpreter(signal)).interpreter as unknown as Stub;
    lease.release();
    await stub.exited;
    expect(live.liveCount).toBe(0);
    expect(await workspace.exists(lease.id)).toBe(true);
  });
});
