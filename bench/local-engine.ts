/**
 * The local engine on this machine, each figure next to the baseline it is measured against in the same run:
 *
 *  1. first execution in a new conversation (session folder, lease, interpreter, a cell using pandas and
 *     matplotlib), through the engine's sessions: with the warm pool vs starting the sandbox and Python
 *     cold; the aim is at least 10x and under 150 ms
 *  2. one small execution in a live session vs `python3 -c` on the same code
 *  3. memory of an idle session (its sandbox and interpreter: RSS, and PSS sharing libraries fairly)
 *  4. turns per minute with a fake model (in another process): 4 conversations at once, each turn one
 *     Python call on sales.xlsx with a chart, then the answer
 *
 *   npm run bench
 */
import { execFile, fork } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import type { EngineSession } from '../src/core/index.js';
import { createLocalEngine, type LocalEngineOptions } from '../src/engines/local/index.js';
import { type ExecutionLimits, Interpreter, runnerConfig } from '../src/engines/local/interpreter.js';
import { sandboxCommand, workdirFor } from '../src/engines/local/sandbox.js';
import { WarmPool } from '../src/engines/local/pool.js';
import { Sessions } from '../src/engines/local/sessions.js';
import { prepareSandbox, sandboxOwner } from '../src/engines/local/setup.js';
import { Workspace } from '../src/engines/local/workspace.js';

const LIMITS: ExecutionLimits = { wallMs: 60_000, cpuSeconds: 60, memoryBytes: 2 * 1024 ** 3, maxProcesses: 32, maxFileBytes: 512 * 1024 ** 2, maxOutputChars: 2_000_000 };
const FIRST_CELL = "import pandas as pd\nimport matplotlib.pyplot as plt\npd.DataFrame({'a': [1, 2, 3]})['a'].sum()";
const SMALL_CELL = 'print(sum(range(1000)))';
const SCRIPTS = fileURLToPath(new URL('../src/engines/local/python', import.meta.url));
const SALES = await readFile(fileURLToPath(new URL('../../test/fixtures/files/sales.xlsx', import.meta.url)));

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (from: number) => performance.now() - from;
const signal = new AbortController().signal;

const root = await mkdtemp(join(tmpdir(), 'crunch-bench-'));
await chmod(root, 0o711);
const workspace = new Workspace(root, sandboxOwner());
await workspace.prepare();
const { spec } = await prepareSandbox({ mode: 'bwrap', python: '/usr/bin/python3', scripts: SCRIPTS, tmpBytes: 512 * 1024 ** 2, hidden: [process.cwd()] }, workspace);

function interpreterIn(id: string): Promise<Interpreter> {
  const data = workspace.dataDir(id);
  return Interpreter.start(sandboxCommand(spec, data, 'runner.py', [runnerConfig(LIMITS, workdirFor(spec, data), true)]), 60_000);
}

async function interpreter(): Promise<Interpreter> {
  const id = workspace.newId();
  await workspace.create(id);
  return interpreterIn(id);
}

/** RSS and PSS (kB) of a process and all its descendants. */
async function memoryOf(pid: number): Promise<{ rss: number; pss: number }> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    parents.set(Number(entry), ppid);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  let rss = 0;
  let pss = 0;
  for (const p of tree) {
    const rollup = await readFile(`/proc/${p}/smaps_rollup`, 'utf8').catch(() => '');
    rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
    pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
  }
  return { rss, pss };
}

const rows: [string, string, string][] = [];
try {
  // 1. First execution in a new conversation, through the engine's own sessions: cold start vs the warm pool.
  const logger = pino({ level: 'silent' });
  const start = async (id: string) => {
    await workspace.create(id);
    return interpreterIn(id);
  };
  const pool = new WarmPool({ size: 1, newId: () => workspace.newId(), start, discard: (id) => workspace.remove(id), logger });
  const withPool = new Sessions({ workspace, start, pool, maxLive: 8, idleMs: 60_000, logger });
  const withoutPool = new Sessions({ workspace, start, pool: undefined, maxLive: 8, idleMs: 60_000, logger });
  const firstExecution = async (sessions: Sessions) => {
    const started = performance.now();
    const lease = await sessions.acquire(undefined, signal, () => undefined);
    const { interpreter } = await lease.interpreter(signal);
    const outcome = await interpreter.execute(FIRST_CELL, LIMITS.wallMs, signal);
    const took = ms(started);
    if (outcome.kind !== 'result' || outcome.value !== '6') throw new Error(`unexpected outcome ${JSON.stringify(outcome)}`);
    lease.release();
    await sessions.forget(lease.id);
    return took;
  };
  const cold: number[] = [];
  for (let i = 0; i < 5; i++) cold.push(await firstExecution(withoutPool));
  const warm: number[] = [];
  pool.fill();
  for (let i = 0; i < 5; i++) {
    await pool.settled(); // measured as a conversation finds it: the pool's interpreter ready
    warm.push(await firstExecution(withPool));
  }
  await Promise.all([withPool.close(), withoutPool.close(), pool.close()]);
  rows.push(['first execution, new conversation: warm pool', `${median(warm).toFixed(0)} ms`, `${(median(cold) / median(warm)).toFixed(0)}x faster than cold (${median(cold).toFixed(0)} ms)`]);

  // 2. A small execution in a live session vs python3 -c.
  const live = await interpreter();
  const small: number[] = [];
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    await live.execute(SMALL_CELL, LIMITS.wallMs, signal);
    small.push(ms(started));
  }
  const direct: number[] = [];
  for (let i = 0; i < 15; i++) {
    const started = performance.now();
    await promisify(execFile)('/usr/bin/python3', ['-c', SMALL_CELL]);
    direct.push(ms(started));
  }
  rows.push(['small execution in a live session', `${median(small).toFixed(1)} ms`, `${(median(direct) / median(small)).toFixed(1)}x faster than python3 -c (${median(direct).toFixed(1)} ms)`]);

  // 3. Memory of an idle session.
  const idle = [live, await interpreter(), await interpreter()];
  const memory = await Promise.all(idle.map((i) => memoryOf(i.pid!)));
  rows.push([
    'memory per idle session (sandbox + Python with numpy, pandas, matplotlib)',
    `${(median(memory.map((m) => m.rss)) / 1024).toFixed(0)} MB RSS`,
    `${(median(memory.map((m) => m.pss)) / 1024).toFixed(0)} MB PSS (libraries shared between sessions)`,
  ]);
  for (const i of idle) i.kill();

  // 4. Turns per minute with the fake model in another process.
  const child = fork(fileURLToPath(new URL('./fake-chat-process.js', import.meta.url)), { stdio: 'inherit' });
  const { url, apiKey } = await new Promise<{ url: string; apiKey: string }>((resolve) => child.once('message', resolve as never));
  const options: LocalEngineOptions = {
    api: { provider: 'openai', apiKey, baseURL: `${url}/v1`, apiVersion: undefined, model: 'bench', instructions: 'You are Crunch.' },
    retry: { maxAttempts: 1, baseDelayMs: 0 },
    maxFileBytes: 100 * 1024 ** 2,
    logger: pino({ level: 'silent' }),
    sandbox: 'bwrap',
    sessionsDir: join(root, 'engine'),
    python: '/usr/bin/python3',
    limits: LIMITS,
    tmpBytes: 512 * 1024 ** 2,
    poolSize: 2,
    maxSessions: 8,
    idleMs: 15 * 60_000,
    maxToolRounds: 12,
    contextTokens: 32_000,
  };
  const engine = createLocalEngine(options);
  await engine.start();
  const conversations = 4;
  const turnsEach = 8;
  const latencies: number[] = [];
  const began = performance.now();
  await Promise.all(
    Array.from({ length: conversations }, async () => {
      let session: EngineSession | undefined;
      for (let turn = 0; turn < turnsEach; turn++) {
        const started = performance.now();
        const file = { sourceId: 'sales', name: 'sales.xlsx', mimeType: 'application/octet-stream', open: async () => Readable.from([SALES]) };
        const result = await engine.run({ session, text: 'plot revenue by month', files: turn === 0 ? [file] : [], progress: () => undefined, signal, checkpoint: async () => undefined });
        if (result.outputs.length !== 1) throw new Error(`expected one chart, got ${result.outputs.length}`);
        session = result.session;
        latencies.push(ms(started));
      }
    }),
  );
  const minutes = ms(began) / 60_000;
  await engine.close();
  child.disconnect();
  rows.push([
    `turns per minute (${conversations} conversations at once, ${cpus().length} cores)`,
    `${((conversations * turnsEach) / minutes).toFixed(0)} turns/min`,
    `turn p50 ${median(latencies).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`,
  ]);
} finally {
  await rm(root, { recursive: true, force: true });
}

console.log('local engine (bubblewrap sandbox, /usr/bin/python3)');
const width = Math.max(...rows.map((r) => r[0].length));
for (const [what, value, ratio] of rows) console.log(`  ${what.padEnd(width)}  ${value.padStart(14)}   ${ratio}`);
