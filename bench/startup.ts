/**
 * How fast the CLI and the server start, against baselines measured in the same run:
 *   - `crunch help` and `crunch --version` (the built CLI, and through bin/crunch.js, what `npx crunch` runs)
 *     against `node -e 0`: aim, within 2×;
 *   - `crunch serve` (what `npm start` runs once built) with Slack configured, until it says it is up (the
 *     Slack token and the OpenAI key checked), against a bare Bolt app (bench/bare-bolt.ts) until it listens,
 *     both against the same fake Slack and OpenAI: aim, within 1.2×. Also without Node's compile cache,
 *     which the CLI turns on (the bare Bolt app does not use it).
 * Each is run BENCH_STARTUP_RUNS times (default 9), the kinds interleaved so that a busy moment of the
 * machine falls on all of them; medians are compared.
 *
 *   npm run bench
 *   node dist/bench/startup.js
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, freePort } from '../test/support/processes.js';

interface Fakes {
  slack: { apiUrl: string; botToken: string; signingSecret: string };
  openai: { url: string; apiKey: string };
}

const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 9);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const launcher = fileURLToPath(new URL('../../bin/crunch.js', import.meta.url));

// The fakes answer at once: start-up is measured, not the network.
const fakesProcess = fork(here('./fakes-process.js'), { env: { ...process.env, BENCH_API_LATENCY_MS: '0', BENCH_MODEL_MS: '0' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const fakes = await new Promise<Fakes>((resolve) => fakesProcess.once('message', resolve as never));
const dir = await mkdtemp(join(tmpdir(), 'crunch-bench-startup-'));

const slackEnv = () => ({
  PATH: process.env.PATH ?? '',
  HOME: dir,
  SLACK_BOT_TOKEN: fakes.slack.botToken,
  SLACK_SIGNING_SECRET: fakes.slack.signingSecret,
  SLACK_API_URL: fakes.slack.apiUrl,
  OPENAI_API_KEY: fakes.openai.apiKey,
  OPENAI_BASE_URL: `${fakes.openai.url}/v1`,
});

/** Milliseconds from spawning `args` until it exits (successfully). */
async function untilExit(args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', HOME: dir }): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { env, cwd: dir, stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${args.join(' ')} exited with ${code}`);
  return performance.now() - started;
}

/** Milliseconds from spawning until `up` resolves; then the process is killed. */
async function untilUp(child: ChildProcess, started: number, up: Promise<unknown>): Promise<number> {
  const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`exited with ${code} before it was up`))));
  await Promise.race([up, exited]);
  const ms = performance.now() - started;
  exited.catch(() => undefined);
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
  return ms;
}

async function bareBolt(): Promise<number> {
  const started = performance.now();
  const child = fork(here('./bare-bolt.js'), { env: { ...slackEnv(), PORT: String(await freePort()) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return untilUp(child, started, new Promise((resolve) => child.once('message', resolve)));
}

let serveRun = 0;
async function serve(extra: Record<string, string> = {}): Promise<number> {
  serveRun += 1;
  const env = { ...slackEnv(), PORT: String(await freePort()), STORE_URL: `sqlite://${join(dir, `serve-${serveRun}.sqlite`)}`, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...extra };
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'serve'], { env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  const up = new Promise<void>((resolve) =>
    child.stderr!.on('data', (d: Buffer) => {
      logs += d.toString();
      if (logs.includes('"msg":"crunch is up"')) resolve();
    }),
  );
  return untilUp(child, started, up);
}

const kinds: Record<string, () => Promise<number>> = {
  'node -e 0': () => untilExit(['-e', '0']),
  'crunch help': () => untilExit([CLI, 'help']),
  'crunch --version': () => untilExit([CLI, '--version']),
  'bin/crunch.js help (npx crunch help, less npm)': () => untilExit([launcher, 'help']),
  'bare Bolt app': bareBolt,
  'crunch serve': () => serve(),
  'crunch serve, no compile cache': () => serve({ NODE_DISABLE_COMPILE_CACHE: '1' }),
};

const times: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
try {
  // One run of each first, not counted: the disk cache and Node's compile cache are warm for every kind alike.
  for (const measure of Object.values(kinds)) await measure();
  for (let i = 0; i < runs; i += 1) {
    for (const [kind, measure] of Object.entries(kinds)) times[kind]!.push(await measure());
  }
} finally {
  fakesProcess.disconnect();
  await rm(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: [string, string, number][] = [
  ['crunch help', 'node -e 0', 2],
  ['crunch --version', 'node -e 0', 2],
  ['bin/crunch.js help (npx crunch help, less npm)', 'node -e 0', 2],
  ['crunch serve', 'bare Bolt app', 1.2],
  ['crunch serve, no compile cache', 'bare Bolt app', 1.2],
];
console.log(`\nStart-up, median of ${runs} runs (ms)\n`);
console.log('| what | median | baseline | baseline median | ratio | aim |');
console.log('| --- | ---: | --- | ---: | ---: | ---: |');
for (const [what, baseline, aim] of rows) {
  const m = median(times[what]!);
  const b = median(times[baseline]!);
  console.log(`| ${what} | ${m.toFixed(0)} | ${baseline} | ${b.toFixed(0)} | ${(m / b).toFixed(2)}× | ≤ ${aim}× |`);
}
