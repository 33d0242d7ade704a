import { mkdir, realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { CrunchError, type Engine, type EngineRunInput, type EngineRunResult, type EngineSession, type Forgotten, type Json } from '../../core/index.js';
import { createOpenAIClient, type ModelApi } from '../shared/client.js';
import type { RetryPolicy } from '../shared/errors.js';
import { runAgent } from './agent.js';
import { type OutputRef, TurnFiles } from './collect.js';
import { hasRunCode, loadHistory, type Message } from './history.js';
import { type ExecutionLimits, Interpreter, runnerConfig } from './interpreter.js';
import { openKept } from './outputs.js';
import { WarmPool } from './pool.js';
import { helpLines, systemPrompt } from './prompt.js';
import { sandboxCommand, type SandboxMode, type SandboxSpec, workdirFor } from './sandbox.js';
import { type Lease, Sessions } from './sessions.js';
import { type PythonEnvironment, prepareSandbox, sandboxOwner } from './setup.js';
import { addFiles } from './uploads.js';
import { isSessionId, safeFileName, Workspace } from './workspace.js';

/**
 * The `local` engine: any OpenAI-compatible Chat Completions model (vLLM, Ollama, LM Studio, Azure AI
 * Foundry, OpenAI) driving Python in a bubblewrap sandbox on this machine. Per conversation it keeps the
 * chat messages (in the session, trimmed to a context budget) and a folder of files (the sandbox's
 * /mnt/data); a Python process per conversation keeps variables between calls and turns until it idles.
 */

export interface LocalEngineOptions {
  api: ModelApi;
  retry: RetryPolicy;
  /** Larger files the code makes are named, not posted. */
  maxFileBytes: number;
  logger: Logger;
  sandbox: SandboxMode;
  sessionsDir: string;
  python: string;
  limits: ExecutionLimits;
  /** Size of each sandbox's private /tmp. */
  tmpBytes: number;
  poolSize: number;
  maxSessions: number;
  idleMs: number;
  maxToolRounds: number;
  contextTokens: number;
  requestTimeoutMs?: number;
}

export interface LocalEngine extends Engine {
  /** Checks the sandbox (refusing to run without one unless told), then warms the pool. */
  start(): Promise<void>;
  /** Stops every interpreter. */
  close(): Promise<void>;
  /** What `help` adds: where code runs, its limits and the Python packages available. */
  helpLines(): string[];
}

export const ENGINE_NAME = 'local';

/** What start() sets up. */
interface Started {
  workspace: Workspace;
  spec: SandboxSpec;
  environment: PythonEnvironment;
  sessions: Sessions;
  pool: WarmPool | undefined;
  sweeper: NodeJS.Timeout;
}
/** The store forgets an idle conversation after 30 days; its folder goes then too. */
const RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
const SWEEP_EVERY_MS = 6 * 60 * 60 * 1000;
const START_TIMEOUT_MS = 60_000;
const SCRIPTS = fileURLToPath(new URL('./python', import.meta.url));

export function createLocalEngine(options: LocalEngineOptions): LocalEngine {
  const { logger, limits } = options;
  const client = createOpenAIClient(options.api, options.requestTimeoutMs);
  let ready: Started | undefined;

  async function start(): Promise<void> {
    if (ready) return;
    await mkdir(options.sessionsDir, { recursive: true, mode: 0o711 });
    const workspace = new Workspace(await realpath(options.sessionsDir), sandboxOwner());
    await workspace.prepare();
    const hidden = [process.cwd(), workspace.root, homedir()];
    const { spec, environment } = await prepareSandbox({ mode: options.sandbox, python: options.python, scripts: SCRIPTS, tmpBytes: options.tmpBytes, hidden }, workspace);
    if (spec.mode === 'none') {
      logger.warn('CRUNCH_SANDBOX=none: Python runs WITHOUT a sandbox, with this machine\'s network and files. Install bubblewrap and remove CRUNCH_SANDBOX.');
    }
    const startIn = (id: string) => {
      const data = workspace.dataDir(id);
      const config = runnerConfig(limits, workdirFor(spec, data), spec.mode === 'bwrap');
      return Interpreter.start(sandboxCommand(spec, data, 'runner.py', [config]), START_TIMEOUT_MS);
    };
    const createAndStart = async (id: string) => {
      await workspace.create(id);
      return startIn(id);
    };
    const pool =
      options.poolSize > 0
        ? new WarmPool({ size: options.poolSize, newId: () => workspace.newId(), start: createAndStart, discard: (id) => workspace.remove(id), logger })
        : undefined;
    const sessions = new Sessions({ workspace, start: startIn, pool, maxLive: options.maxSessions, idleMs: options.idleMs, logger });
    const sweep = () =>
      workspace.sweep(RETENTION_MS, (id) => sessions.inUse(id)).then(
        (removed) => removed.length > 0 && logger.info({ removed: removed.length }, 'removed the folders of long-unused conversations'),
        (err: unknown) => logger.warn({ err }, 'could not sweep old conversation folders'),
      );
    void sweep();
    ready = { workspace, spec, environment, sessions, pool, sweeper: setInterval(sweep, SWEEP_EVERY_MS).unref() };
    pool?.fill();
    logger.info({ sandbox: spec.mode, python: environment.python, pool: options.poolSize, maxSessions: options.maxSessions }, 'local engine ready');
  }

  function started() {
    if (!ready) throw new CrunchError('internal', 'The local engine was used before it started.');
    return ready;
  }

  async function run(input: EngineRunInput): Promise<EngineRunResult> {
    const { workspace, spec, sessions } = started();
    const { signal, progress } = input;
    const notices: string[] = [];
    const { previous, folder } = await resumable(input.session, workspace, notices);
    const lease = await sessions.acquire(folder, signal, () => progress({ type: 'status', text: 'waiting for a free Python session…' }));
    try {
      const now = new Date().toISOString();
      let session: EngineSession = { engine: ENGINE_NAME, files: [], createdAt: now, lastUsedAt: now, ...previous, contextId: lease.id };
      const added = await addFiles(workspace, lease.id, session.files, input, notices, logger);
      session = { ...session, files: added.files };
      if (input.session?.contextId !== lease.id || added.changed) await input.checkpoint(session);

      const history = loadHistory(session.data);
      const workdir = workdirFor(spec, workspace.dataDir(lease.id));
      const userText = userMessage(input.text, added.mentioned, workdir, !lease.resumed && hasRunCode(history));
      const files = await TurnFiles.begin(workspace, lease.id, options.maxFileBytes);
      const withMessages = (messages: Message[]): EngineSession => ({ ...session, data: { ...session.data, messages: messages as unknown as Json } });
      const result = await runAgent(
        {
          client,
          model: options.api.model,
          system: systemPrompt(options.api.instructions, started(), workdir, options),
          retry: options.retry,
          signal,
          progress,
          maxToolRounds: options.maxToolRounds,
          contextTokens: options.contextTokens,
          limits,
          execute: (code) => execute(lease, files, code, signal),
          checkpoint: (messages) => input.checkpoint(withMessages(messages)),
        },
        history,
        userText,
      );
      // Only code writes files: an answer without it has nothing to collect, and no status to flash.
      if (result.code.length > 0) progress({ type: 'status', text: 'collecting results…' });
      const answer = await files.finish();
      const text = result.text === '' && answer.outputs.length === 0 ? '_(The model gave no answer; please ask again.)_' : result.text;
      return {
        session: withMessages(result.messages),
        text,
        outputs: answer.outputs,
        code: result.code,
        notices: [...notices, ...answer.notices],
        // The sandbox runs here: no hosted sessions to pay for.
        ...(result.usage ? { usage: { ...result.usage, model: result.usage.model || options.api.model, sandboxes: {} } } : {}),
      };
    } finally {
      lease.release();
    }
  }

  /** The session to go on with and its folder's id, when it has one still; a notice for what was lost. */
  async function resumable(session: EngineSession | undefined, workspace: Workspace, notices: string[]) {
    if (session && session.engine !== ENGINE_NAME) {
      notices.push('This conversation began with another code interpreter, so I started afresh here; please share its files again.');
      return { previous: undefined, folder: undefined };
    }
    if (!session || !isSessionId(session.contextId)) return { previous: session && { ...session, files: [] }, folder: undefined };
    if (session.files.length > 0 && !(await workspace.exists(session.contextId))) {
      logger.warn({ session: session.contextId }, 'conversation folder missing; starting it again empty');
      notices.push('The files of this conversation are no longer here (they were removed from the server); please share them again.');
      return { previous: { ...session, files: [] }, folder: session.contextId };
    }
    return { previous: session, folder: session.contextId };
  }

  async function execute(lease: Lease, files: TurnFiles, code: string, signal: AbortSignal) {
    let running: Awaited<ReturnType<Lease['interpreter']>>;
    try {
      running = await lease.interpreter(signal);
    } catch (err) {
      if (signal.aborted) throw err;
      logger.error({ err, session: lease.id }, 'the Python sandbox could not start');
      throw new CrunchError('engine_unavailable', "The Python sandbox could not start, so I cannot run code right now. An admin should check the bot's logs.", { cause: err });
    }
    const started = Date.now();
    const outcome = await running.interpreter.execute(code, limits.wallMs, signal);
    const status = outcome.kind === 'result' ? outcome.status : outcome.reason;
    logger[outcome.kind === 'stopped' ? 'warn' : 'debug']({ session: lease.id, ms: Date.now() - started, status }, 'python executed');
    const found = await files.afterExecution(outcome.kind === 'result' ? outcome.figures : []);
    return { outcome, restarted: running.restarted, ...found };
  }

  async function openOutput(ref: Json, signal?: AbortSignal) {
    const { workspace } = started();
    const { session, turn, name } = (ref ?? {}) as unknown as Partial<OutputRef>;
    if (!isSessionId(session) || !isSessionId(turn) || typeof name !== 'string' || safeFileName(name) !== name) {
      throw new CrunchError('output_unavailable', 'That file is no longer available; ask again to recreate it.');
    }
    return openKept(resolve(workspace.outputsDir(session, turn), name), name, options.maxFileBytes, signal);
  }

  /** Stops the session's interpreter and deletes its folder; its messages live in the session, which the core deletes. */
  async function forget(session: EngineSession): Promise<Forgotten> {
    if (session.engine !== ENGINE_NAME || !isSessionId(session.contextId)) return { files: 0, sandboxes: 0, context: true, failed: 0 };
    try {
      await started().sessions.forget(session.contextId);
      return { files: session.files.length, sandboxes: 1, context: true, failed: 0 };
    } catch (err) {
      logger.warn({ err, session: session.contextId }, 'could not delete the folder of a forgotten conversation');
      return { files: 0, sandboxes: 0, context: true, failed: 1 };
    }
  }

  async function close(): Promise<void> {
    if (!ready) return;
    clearInterval(ready.sweeper);
    await Promise.all([ready.sessions.close(), ready.pool?.close()]);
    ready = undefined;
  }

  return { name: ENGINE_NAME, start, run, openOutput, forget, close, helpLines: () => (ready ? helpLines(ready, options) : []) };
}

/** The user's message, with the files it brought and, when needed, that the variables are gone. */
function userMessage(text: string, files: string[], workdir: string, restarted: boolean): string {
  const parts = [text];
  if (files.length > 0) parts.push(`(Files attached to this message, in ${workdir}: ${files.join(', ')})`);
  if (restarted) parts.push(`(The Python session restarted since the last message: variables and imports are gone; the files in ${workdir} are still there.)`);
  return parts.join('\n\n');
}
