/**
 * The turn's journey under load: N people each start a new thread with Crunch at the same moment, over the
 * HTTP Events API, against the fake Slack and OpenAI (every API request takes BENCH_API_LATENCY_MS, the
 * model BENCH_MODEL_MS more). Measured: the time until every thread has its answer, the acknowledgement
 * latency Slack sees (p50/p99) while it happens, and the requests each turn costs, for
 *   - the baseline: a bare Bolt app doing a turn's minimum (one model call, one message),
 *   - Crunch on one replica (SQLite), and on two replicas sharing a redis-server.
 *
 *   npm run bench                       # N = 1, 200 and 1000
 *   BENCH_THREADS=1,200 npm run bench
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deliverEvent } from '../test/fakes/slack.js';
import { freePort, type Replica, startRedis, startReplica, waitFor } from '../test/support/processes.js';

interface Fakes {
  slack: { url: string; apiUrl: string; botToken: string; signingSecret: string; teamId: string };
  openai: { url: string; apiKey: string };
}
interface Stats {
  answered: number;
  slack: Record<string, number>;
  openai: Record<string, number>;
}

const counts = (process.env.BENCH_THREADS ?? '1,200,1000').split(',').map(Number);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const fakesProcess = fork(here('./fakes-process.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const fakes = await new Promise<Fakes>((resolve) => fakesProcess.once('message', resolve as never));
const ask = <T>(cmd: string): Promise<T> =>
  new Promise((resolve) => {
    fakesProcess.once('message', resolve as never);
    fakesProcess.send({ cmd });
  });

let seq = 0;
const run = Math.floor(Date.now() / 1000);
/** A DM that starts a new thread. */
function newThread(): Record<string, unknown> {
  seq += 1;
  const ts = `${run}.${String(seq).padStart(6, '0')}`;
  const event = { type: 'message', channel: `D${String(seq % 50).padStart(9, '0')}`, channel_type: 'im', user: 'U0ALICE001', team: fakes.slack.teamId, text: `question ${seq}`, ts };
  return { token: 'x', team_id: fakes.slack.teamId, api_app_id: 'A0CRUNCHAPP', type: 'event_callback', event_id: `Ev${seq}`, event_time: run, event };
}

interface Result {
  scenario: string;
  n: number;
  seconds: number;
  ackP50: number;
  ackP99: number;
  /** CPU time the bot's processes spent, per turn. */
  cpuMsPerTurn: number;
  stats: Stats;
}

/** User + system CPU time of a process so far, in ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Sends `n` new threads at once, spread over `endpoints`, and waits until all are answered. */
async function load(scenario: string, endpoints: string[], n: number, pids: number[]): Promise<Result> {
  await ask('reset');
  const cpuBefore = pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const acks: number[] = [];
  const started = performance.now();
  const sent = Array.from({ length: n }, async (_v, i) => {
    const t = performance.now();
    const response = await deliverEvent(`${endpoints[i % endpoints.length]}/slack/events`, newThread(), { signingSecret: fakes.slack.signingSecret });
    acks.push(performance.now() - t);
    if (response.status !== 200) throw new Error(`${scenario}: Slack got ${response.status}`);
  });
  await Promise.all(sent);
  await waitFor(async () => (await ask<{ stats: Stats }>('stats')).stats.answered >= n, 600_000, `${scenario}: ${n} answers`);
  const seconds = (performance.now() - started) / 1000;
  const cpuMsPerTurn = (pids.reduce((sum, pid) => sum + cpuMs(pid), 0) - cpuBefore) / n;
  const { stats } = await ask<{ stats: Stats }>('stats');
  acks.sort((a, b) => a - b);
  const pct = (p: number) => acks[Math.min(acks.length - 1, Math.floor((p / 100) * acks.length))]!;
  return { scenario, n, seconds, ackP50: pct(50), ackP99: pct(99), cpuMsPerTurn, stats };
}

function env(store: string, concurrency: number): Record<string, string> {
  return {
    STORE_URL: store,
    OPENAI_API_KEY: fakes.openai.apiKey,
    OPENAI_BASE_URL: `${fakes.openai.url}/v1`,
    SLACK_BOT_TOKEN: fakes.slack.botToken,
    SLACK_SIGNING_SECRET: fakes.slack.signingSecret,
    SLACK_API_URL: fakes.slack.apiUrl,
    CRUNCH_CONCURRENCY: String(concurrency),
    LOG_LEVEL: 'warn',
  };
}

async function bareBolt(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = fork(here('./bare-bolt.js'), {
    env: { PORT: String(port), SLACK_BOT_TOKEN: fakes.slack.botToken, SLACK_SIGNING_SECRET: fakes.slack.signingSecret, SLACK_API_URL: fakes.slack.apiUrl, OPENAI_API_KEY: fakes.openai.apiKey, OPENAI_BASE_URL: `${fakes.openai.url}/v1` },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => child.once('message', resolve));
  return { url: `http://127.0.0.1:${port}`, child };
}

const perTurn = (counts: Record<string, number>, n: number) => Object.values(counts).reduce((a, b) => a + b, 0) / n;
const f = (x: number, digits = 1) => x.toFixed(digits);

const dir = await mkdtemp(join(tmpdir(), 'crunch-bench-'));
const redis = await startRedis();
const results: Result[] = [];
try {
  for (const n of counts) {
    const bolt = await bareBolt();
    results.push(await load('bare Bolt', [bolt.url], n, [bolt.child.pid!]));
    bolt.child.kill();

    const single = await startReplica(env(`sqlite://${join(dir, `bench-${n}.sqlite`)}`, n));
    results.push(await load('Crunch, 1 replica (SQLite)', [single.url], n, [single.child.pid!]));
    single.kill('SIGKILL');
    await single.exited;

    if (redis !== undefined) {
      const pair: Replica[] = [await startReplica(env(redis.url, n)), await startReplica(env(redis.url, n))];
      results.push(await load('Crunch, 2 replicas (Redis)', pair.map((r) => r.url), n, pair.map((r) => r.child.pid!)));
      for (const r of pair) {
        r.kill('SIGKILL');
        await r.exited;
      }
    }
  }
} finally {
  await redis?.close();
  await rm(dir, { recursive: true, force: true });
  fakesProcess.disconnect();
}

const latency = process.env.BENCH_API_LATENCY_MS ?? '150';
console.log(`\nN new threads at once; every API request ${latency} ms, the model ${process.env.BENCH_MODEL_MS ?? '2000'} ms more; CRUNCH_CONCURRENCY = N\n`);
console.log('| scenario | N | time to answer all | vs bare Bolt | target | ack p50 | ack p99 | bot CPU/turn | OpenAI requests/turn | Slack calls/turn |');
console.log('| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  const base = results.find((b) => b.n === r.n && b.scenario === 'bare Bolt')!;
  const ratio = r.seconds / base.seconds;
  // The aim: within 1.2× of bare Bolt for 200 threads at once, within 2× beyond.
  const aim = r.n <= 200 ? 1.2 : 2;
  const target = r === base ? '' : ratio <= aim ? `≤ ${aim}×: met` : `≤ ${aim}×: gap ${f(ratio - aim, 2)}×`;
  console.log(
    `| ${r.scenario} | ${r.n} | ${f(r.seconds, 2)} s | ${f(ratio, 2)}× | ${target} | ${f(r.ackP50)} ms | ${f(r.ackP99)} ms | ${f(r.cpuMsPerTurn)} ms | ${f(perTurn(r.stats.openai, r.n))} | ${f(perTurn(r.stats.slack, r.n))} |`,
  );
}
for (const r of results.filter((x) => x.n === Math.min(...counts))) {
  console.log(`\n${r.scenario}, requests of one turn:`);
  console.log(`  OpenAI: ${Object.entries(r.stats.openai).map(([k, v]) => `${k} ×${v / r.n}`).join(', ')}`);
  console.log(`  Slack:  ${Object.entries(r.stats.slack).map(([k, v]) => `${k} ×${v / r.n}`).join(', ')}`);
}
