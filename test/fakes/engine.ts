import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  type CodeCell,
  CrunchError,
  type Engine,
  type EngineOutput,
  type EngineRunInput,
  type EngineRunResult,
  type EngineSession,
  type EngineUsage,
  type Forgotten,
  type Json,
} from '../../src/core/index.js';

/**
 * The one fake Engine every test uses: it plays a scripted step per run, reads every file it is given
 * (so downloads and the core's checks happen for real), keeps one session per conversation as the real
 * engines do, and serves its outputs by reference through `openOutput`, like a sandbox that can expire.
 */

export interface FakeOutput {
  name: string;
  data: Buffer | string;
  mimeType?: string;
  title?: string;
}

/** What one run does, in this order: statuses, file reads, streamed deltas, the gate, then the result. */
export interface FakeStep {
  /** The answer; default "You said: <text>". */
  text?: string;
  statuses?: string[];
  deltas?: string[];
  outputs?: FakeOutput[];
  code?: CodeCell[];
  notices?: string[];
  /** Awaited after the deltas, so a test can look at the progress before the answer lands. */
  gate?: Promise<void>;
  /** Thrown instead of answering. */
  fail?: unknown;
  /** Waits until the turn's signal aborts (its deadline, a shutdown), then fails with the abort. */
  hang?: boolean;
  /**
   * What the run reports it consumed; default 1,000 input and 100 output tokens of gpt-4.1, plus one 1 GB
   * sandbox session when the conversation is new (as the hosted engine opens a container). `null`: none.
   */
  usage?: EngineUsage | null;
}

export interface EngineCall {
  text: string;
  session: EngineSession | undefined;
  files: { name: string; mimeType: string; bytes: Buffer }[];
  /** The user messages of files the core or the platform refused while they were read. */
  skipped: string[];
}

export type FakeScript = FakeStep | ((input: EngineRunInput, call: EngineCall) => FakeStep | Promise<FakeStep>);

export interface FakeEngine extends Engine {
  /** Steps played in order, one per run; when empty, `fallback` plays. */
  script: FakeScript[];
  fallback: FakeScript;
  calls: EngineCall[];
  /** "start:<text>" and "end:<text>" per run, in the order they happened. */
  events: string[];
  /** Sessions the core asked the engine to forget (reset, forget, retention). */
  forgotten: EngineSession[];
  /** While set, `forget` reports that nothing could be removed (a provider that is down). */
  forgetFails: boolean;
  /** Makes every output made so far unavailable, like an expired sandbox. */
  expireOutputs(): void;
}

const MIME: Record<string, string> = { png: 'image/png', csv: 'text/csv', txt: 'text/plain', json: 'application/json', svg: 'image/svg+xml' };

function mimeOf(name: string): string {
  return MIME[name.slice(name.lastIndexOf('.') + 1).toLowerCase()] ?? 'application/octet-stream';
}

export function createFakeEngine(fallback: FakeScript = {}): FakeEngine {
  const stored = new Map<string, Buffer>();
  const engine: FakeEngine = {
    name: 'fake',
    script: [],
    fallback,
    calls: [],
    events: [],
    forgotten: [],
    forgetFails: false,
    expireOutputs: () => stored.clear(),

    async run(input: EngineRunInput): Promise<EngineRunResult> {
      engine.events.push(`start:${input.text}`);
      const call: EngineCall = { text: input.text, session: input.session, files: [], skipped: [] };
      engine.calls.push(call);
      const next = engine.script.shift() ?? engine.fallback;
      const step = typeof next === 'function' ? await next(input, call) : next;
      for (const status of step.statuses ?? []) input.progress({ type: 'status', text: status });
      for (const file of input.files) {
        try {
          const chunks: Buffer[] = [];
          for await (const chunk of await file.open()) chunks.push(chunk as Buffer);
          call.files.push({ name: file.name, mimeType: file.mimeType, bytes: Buffer.concat(chunks) });
        } catch (err) {
          if (err instanceof CrunchError && err.code.startsWith('attachment_')) call.skipped.push(err.userMessage);
          else throw err;
        }
      }
      for (const delta of step.deltas ?? []) input.progress({ type: 'text', delta });
      await step.gate;
      if (step.hang) {
        await new Promise((_resolve, reject) => {
          if (input.signal.aborted) reject(input.signal.reason);
          input.signal.addEventListener('abort', () => reject(input.signal.reason), { once: true });
        });
      }
      if (step.fail !== undefined) throw step.fail;
      const outputs: EngineOutput[] = (step.outputs ?? []).map((output) => {
        const id = randomUUID();
        const data = Buffer.isBuffer(output.data) ? output.data : Buffer.from(output.data);
        stored.set(id, data);
        const ref: Json = { id, name: output.name };
        return { name: output.name, title: output.title ?? output.name, mimeType: output.mimeType ?? mimeOf(output.name), sizeBytes: data.length, ref };
      });
      const now = new Date().toISOString();
      const previous = input.session ?? { engine: 'fake', contextId: `ctx-${randomUUID()}`, files: [], createdAt: now, lastUsedAt: now };
      const known = new Set(previous.files.map((f) => f.sourceId));
      const added = input.files.filter((f) => !known.has(f.sourceId) && call.files.some((read) => read.name === f.name));
      const session: EngineSession = { ...previous, files: [...previous.files, ...added.map((f) => ({ sourceId: f.sourceId, fileId: `file-${randomUUID()}`, name: f.name }))] };
      const usage: EngineUsage | null =
        step.usage === undefined
          ? { model: 'gpt-4.1', inputTokens: 1000, cachedTokens: 0, outputTokens: 100, sandboxes: input.session === undefined ? { '1g': 1 } : {} }
          : step.usage;
      engine.events.push(`end:${input.text}`);
      return {
        session,
        text: step.text ?? `You said: ${input.text}`,
        outputs,
        code: step.code ?? [],
        notices: [...call.skipped, ...(step.notices ?? [])],
        ...(usage !== null ? { usage } : {}),
      };
    },

    async openOutput(ref: Json): Promise<Readable> {
      const { id, name } = ref as { id: string; name: string };
      const data = stored.get(id);
      if (data === undefined) throw new CrunchError('output_unavailable', `**${name}** is no longer available (its sandbox expired); ask again to recreate it.`);
      return Readable.from([data]);
    },

    async forget(session: EngineSession): Promise<Forgotten> {
      if (engine.forgetFails) return { files: 0, sandboxes: 0, context: false, failed: 1 + session.files.length };
      engine.forgotten.push(session);
      return { files: session.files.length, sandboxes: 1, context: true, failed: 0 };
    },
  };
  return engine;
}
