import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { SandboxCommand } from './sandbox.js';

/**
 * One running Python runner (runner.py) and its line protocol: a request per execution on its stdin, a
 * reply per execution on fd 3. The runner stops what it can itself (CPU time, output size, memory through
 * MemoryError); what it cannot, Node does here: an execution that runs past its wall-clock limit, or a
 * runner that dies or breaks the protocol, ends with the whole sandbox killed.
 */

/** Per-execution limits; each is enforced inside the sandbox or, for wall-clock time, from here. */
export interface ExecutionLimits {
  wallMs: number;
  cpuSeconds: number;
  memoryBytes: number;
  maxProcesses: number;
  maxFileBytes: number;
  /** Characters one execution may print before it is stopped. */
  maxOutputChars: number;
}

export interface Figure {
  title: string;
  png: Buffer;
}

export interface CellError {
  type: string;
  message: string;
  traceback: string;
}

/** What an execution came to: the runner's own reply, or the interpreter stopped from outside. */
export type Outcome =
  | {
      kind: 'result';
      status: 'ok' | 'error' | 'cpu_limit' | 'output_limit';
      output: string;
      fdOutput: string;
      value: string | null;
      error: CellError | null;
      figures: Figure[];
      notes: string[];
    }
  | { kind: 'stopped'; reason: 'timeout' | 'exited'; detail: string };

/** Figures the runner renders: a few, each small; a reply line past this is a broken runner. */
const MAX_FIGURES = 10;
const MAX_FIGURE_BYTES = 8 * 1024 * 1024;
const MAX_LINE_BYTES = 16 * 1024 * 1024 + MAX_FIGURES * Math.ceil((MAX_FIGURE_BYTES * 4) / 3);
const DIAGNOSTIC_BYTES = 4096;

/** The runner's configuration (see runner.py). */
export function runnerConfig(limits: ExecutionLimits, workdir: string, reapProcesses: boolean): string {
  return JSON.stringify({
    workdir,
    reapProcesses,
    memoryBytes: limits.memoryBytes,
    maxProcesses: limits.maxProcesses,
    maxFileBytes: limits.maxFileBytes,
    cpuSeconds: limits.cpuSeconds,
    maxOutputChars: limits.maxOutputChars,
    outputHeadChars: 8000,
    outputTailChars: 4000,
    tracebackChars: 6000,
    valueChars: 4000,
    maxFigures: MAX_FIGURES,
    maxFigureBytes: Math.min(MAX_FIGURE_BYTES, limits.maxFileBytes),
    figureDpi: 110,
  });
}

interface RawReply {
  type: string;
  id?: number;
  status?: string;
  output?: string;
  fdOutput?: string;
  value?: string | null;
  error?: CellError | null;
  figures?: { title: string; png: string }[];
  notes?: string[];
}

export class Interpreter {
  private nextId = 1;
  private waiting: ((reply: RawReply | undefined) => void) | undefined;
  /** Replies that came while nothing waited (only the runner's first, in practice). */
  private inbox: RawReply[] = [];
  private diagnostics = '';
  private exitDetail: string | undefined;
  readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitDetail = signal ? `killed by ${signal}` : `exited with code ${code}`;
        this.waiting?.(undefined);
        resolve();
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        this.diagnostics = (this.diagnostics + chunk.toString('utf8')).slice(-DIAGNOSTIC_BYTES);
      });
    }
    // A dead runner is reported by 'close' (and a failed spawn by start()), not by these.
    child.on('error', () => undefined);
    (child.stdin as Writable).on('error', () => undefined);
    readLines(child.stdio[3] as Readable, (line) => this.onLine(line), () => this.kill());
  }

  /** Starts the runner and waits until it has loaded its libraries (or fails with what it printed). */
  static async start(command: SandboxCommand, timeoutMs: number): Promise<Interpreter> {
    const child = spawn(command.file, command.args, {
      cwd: command.cwd,
      env: command.env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true, // its own process group: a Ctrl-C in the terminal is the bot's to handle
      ...(command.uid !== undefined ? { uid: command.uid, gid: command.gid } : {}),
    });
    const interpreter = new Interpreter(child);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    await spawned;
    const ready = await interpreter.waitReply(timeoutMs);
    if (ready === 'timeout' || ready === undefined || ready.type !== 'ready') {
      interpreter.kill();
      await interpreter.exited;
      const why = ready === 'timeout' ? `it did not start within ${timeoutMs} ms` : `it ${interpreter.exitDetail ?? 'failed'}`;
      throw new Error(`Python runner failed: ${why}${interpreter.diagnostics ? `: ${interpreter.diagnostics.trim()}` : ''}`);
    }
    return interpreter;
  }

  get alive(): boolean {
    return this.exitDetail === undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Runs one cell. Resolves with the outcome; rejects with the signal's reason when it aborts (the sandbox is killed). */
  async execute(code: string, wallMs: number, signal: AbortSignal): Promise<Outcome> {
    if (this.waiting) throw new Error('the interpreter is already running code');
    if (!this.alive) return { kind: 'stopped', reason: 'exited', detail: `the Python process had stopped (it ${this.exitDetail})` };
    signal.throwIfAborted();
    const id = this.nextId++;
    this.child.stdin!.write(`${JSON.stringify({ id, code })}\n`);
    const reply = await this.waitReply(wallMs, signal);
    if (reply === 'timeout') {
      this.kill();
      await this.exited;
      return { kind: 'stopped', reason: 'timeout', detail: `it ran past the ${formatSeconds(wallMs)} limit per execution` };
    }
    if (reply === undefined || reply.type !== 'result' || reply.id !== id) {
      this.kill();
      await this.exited;
      const printed = this.diagnostics.trim().split('\n').slice(-3).join(' ');
      return { kind: 'stopped', reason: 'exited', detail: `the Python process ${this.exitDetail ?? 'stopped answering'}${printed ? ` (${printed})` : ''}` };
    }
    return {
      kind: 'result',
      status: (reply.status ?? 'error') as 'ok' | 'error' | 'cpu_limit' | 'output_limit',
      output: reply.output ?? '',
      fdOutput: reply.fdOutput ?? '',
      value: reply.value ?? null,
      error: reply.error ?? null,
      figures: (reply.figures ?? []).map((f) => ({ title: f.title, png: Buffer.from(f.png, 'base64') })),
      notes: reply.notes ?? [],
    };
  }

  /** Kills the sandbox and everything in it. */
  kill(): void {
    if (!this.alive || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  private onLine(line: string): void {
    let reply: RawReply;
    try {
      reply = JSON.parse(line) as RawReply;
    } catch {
      this.kill();
      return;
    }
    if (this.waiting) this.waiting(reply);
    else this.inbox.push(reply);
  }

  /** The next reply line; undefined when the process ended first; 'timeout' after `ms`; rejects on abort. */
  private waitReply(ms: number, signal?: AbortSignal): Promise<RawReply | undefined | 'timeout'> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (!this.alive) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const done = (result: RawReply | undefined | 'timeout') => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiting = undefined;
        resolve(result);
      };
      const onAbort = () => {
        clearTimeout(timer);
        this.waiting = undefined;
        this.kill();
        reject(signal!.reason);
      };
      const timer = setTimeout(() => done('timeout'), ms);
      this.waiting = done;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Splits a stream into lines; a line longer than MAX_LINE_BYTES calls `overflow` (and stops reading). */
function readLines(stream: Readable, onLine: (line: string) => void, overflow: () => void): void {
  let parts: Buffer[] = [];
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
      parts.push(chunk.subarray(start, end));
      const line = Buffer.concat(parts).toString('utf8');
      parts = [];
      size = 0;
      start = end + 1;
      onLine(line);
    }
    if (start < chunk.length) {
      parts.push(chunk.subarray(start));
      size += chunk.length - start;
      if (size > MAX_LINE_BYTES) {
        parts = [];
        size = 0;
        stream.destroy();
        overflow();
      }
    }
  });
  stream.on('error', () => undefined);
}

export function formatSeconds(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds >= 120 && seconds % 60 === 0 ? `${seconds / 60}-minute` : `${seconds}-second`;
}
