import type { Readable } from 'node:stream';
import { pino, type Logger } from 'pino';
import {
  type CodeCell,
  type ConversationService,
  createConversationService,
  createStore,
  CrunchError,
  type ReplyFile,
  type ReplyImage,
  type Store,
} from '../../../src/core/index.js';
import type { Engine, EngineRunInput, EngineRunResult, EngineSession } from '../../../src/engines/engine.js';

/** What one engine run does: statuses, streamed text, the final text and artefacts. */
export interface ScriptStep {
  text: string;
  statuses?: string[];
  /** Text deltas streamed before the result; default: none. */
  deltas?: string[];
  images?: ReplyImage[];
  files?: ReplyFile[];
  code?: CodeCell[];
  /** Awaited after the deltas, so a test can look at the progress before the answer lands. */
  gate?: Promise<void>;
}

export interface RecordedRun {
  text: string;
  /** The session the core handed in (undefined on a conversation's first turn). */
  session: EngineSession | undefined;
  files: { name: string; bytes: number }[];
  skipped: string[];
}

/**
 * A small scripted Engine for adapter tests: it plays the next step, actually reads every file it is given
 * (so downloads happen for real), and keeps one session per conversation like the real engine does.
 */
export function createScriptedEngine(): { engine: Engine; script: ScriptStep[]; runs: RecordedRun[] } {
  const script: ScriptStep[] = [];
  const runs: RecordedRun[] = [];
  let sessions = 0;
  const engine: Engine = {
    name: 'scripted',
    async run(input: EngineRunInput): Promise<EngineRunResult> {
      const step = script.shift() ?? { text: `You said: ${input.text}` };
      const run: RecordedRun = { text: input.text, session: input.session, files: [], skipped: [] };
      runs.push(run);
      for (const status of step.statuses ?? []) input.progress({ type: 'status', text: status });
      for (const file of input.files) {
        try {
          run.files.push({ name: file.name, bytes: await drain(await file.open()) });
        } catch (err) {
          if (err instanceof CrunchError && err.code.startsWith('attachment_')) run.skipped.push(err.userMessage);
          else throw err;
        }
      }
      for (const delta of step.deltas ?? []) input.progress({ type: 'text', delta });
      await step.gate;
      const now = new Date().toISOString();
      const session: EngineSession = input.session ?? {
        engine: 'scripted',
        conversationId: `conv-${++sessions}`,
        files: [],
        createdAt: now,
        lastUsedAt: now,
      };
      return {
        session,
        text: step.text,
        images: step.images ?? [],
        files: step.files ?? [],
        code: step.code ?? [],
        notices: run.skipped,
      };
    },
  };
  return { engine, script, runs };
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

/** Store, silent logger and a core over a scripted engine: enough to construct an adapter without a stack. */
export async function scriptedDeps(): Promise<{ store: Store; logger: Logger; core: ConversationService }> {
  const store = await createStore('memory://');
  const logger = pino({ level: 'silent' });
  const core = createConversationService({
    store,
    engine: createScriptedEngine().engine,
    limits: { maxFileBytes: 1024, maxFilesPerTurn: 1, turnTimeoutMs: 1000 },
    logger,
  });
  return { store, logger, core };
}
