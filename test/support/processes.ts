import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * Real processes for tests and benchmarks: a redis-server of the test's own (so it can be stopped and
 * started again), and `crunch serve` replicas running the built CLI, as an operator runs them.
 */
/** The repository root, whether this file runs from test/support or compiled, from dist/test/support. */
const root = fileURLToPath(new URL(import.meta.url.includes('/dist/test/') ? '../../..' : '../..', import.meta.url));
export const CLI = join(root, 'dist/src/cli/main.js');

/** Compiles src and adapters into dist (what `npm start` runs). */
export async function buildCli(): Promise<void> {
  await promisify(execFile)(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RedisServer {
  url: string;
  /** Stops the server (SIGKILL: an outage, not a shutdown). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A throwaway redis-server on a free port; undefined when the binary is missing (outside CI). */
export async function startRedis(): Promise<RedisServer | undefined> {
  const found = await promisify(execFile)('redis-server', ['--version']).then(
    () => true,
    () => false,
  );
  if (!found) {
    if (process.env.CI) throw new Error('CI must have redis-server installed (see .ci/run)');
    return undefined;
  }
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'crunch-redis-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    await waitFor(async () => {
      const probe = await import('node:net');
      return new Promise<boolean>((resolve) => {
        const socket = probe.connect(port, '127.0.0.1', () => {
          socket.end();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
    }, 5000);
  };
  const stop = async () => {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child?.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Replica {
  url: string;
  child: ChildProcess;
  /** Everything it logged so far (JSON lines on stderr). */
  logs(): Record<string, unknown>[];
  /** Resolves with the exit code once it has exited. */
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

/** `crunch serve` in a child process with `env`; resolves once it is up (or rejects with what it said). */
export async function startReplica(env: Record<string, string>): Promise<Replica> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let raw = '';
  child.stderr!.on('data', (d: Buffer) => (raw += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs = () =>
    raw
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  // Up once /readyz says so (adapters started, workers running, the store answering), whatever LOG_LEVEL says.
  const healthy = async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200;
  const up = await Promise.race([waitFor(healthy, 20_000, 'the replica to start').then(() => true), exited.then(() => false)]);
  if (!up) throw new Error(`replica did not start: ${raw}`);
  return { url: `http://127.0.0.1:${port}`, child, logs, exited, kill: (signal) => child.kill(signal) };
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
