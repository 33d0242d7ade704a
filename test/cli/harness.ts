import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI as a user runs it: the built bin in a child process, with an environment of the test's choosing. */
export const root = fileURLToPath(new URL('../..', import.meta.url));
export const fixtures = join(root, 'test/fixtures/files');

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  /** The whole environment but PATH: nothing of the test runner's leaks in (no key, no XDG_CONFIG_HOME). */
  env?: Record<string, string>;
  input?: string;
  /** The script to run: dist/src/cli/main.js by default, or a checkout's bin/crunch.js. */
  script?: string;
}

export function runCli(args: string[], options: RunOptions): Promise<Ran> {
  return runProcess(process.execPath, [options.script ?? join(root, 'dist/src/cli/main.js'), ...args], options);
}

/** Runs `command` to its end and collects what it printed. */
export function runProcess(command: string, args: string[], options: Omit<RunOptions, 'script'>): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { PATH: process.env.PATH ?? '', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A home of its own for a child process: no ~/.config/crunch/.env of the developer's is read. */
export async function emptyHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'crunch-home-'));
}

/** Any terminal control character but newline and tab (what must never reach a terminal from the model). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
export const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
