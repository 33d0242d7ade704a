import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { expect } from 'vitest';
import type { EngineFile, EngineRunResult, EngineSession, Progress } from '../../../src/core/index.js';
import { createLocalEngine, type LocalEngine, type LocalEngineOptions } from '../../../src/engines/local/index.js';
import { type FakeChat, startFakeChat } from '../../fakes/chat-completions.js';

/**
 * The real local engine (real Python in a real bubblewrap sandbox) driven through the real `openai` SDK
 * by the fake Chat Completions server, each test in its own sessions folder.
 */
export interface LocalStack {
  engine: LocalEngine;
  chat: FakeChat;
  root: string;
  close(): Promise<void>;
}

export const TEST_LIMITS = {
  wallMs: 20_000,
  cpuSeconds: 10,
  memoryBytes: 1024 * 1024 * 1024,
  maxProcesses: 64,
  maxFileBytes: 64 * 1024 * 1024,
  maxOutputChars: 1024 * 1024,
};

/** `chat`: a fake model server to reuse (it is closed with the stack). */
export async function startLocal(overrides: Partial<LocalEngineOptions> = {}, reuse?: FakeChat): Promise<LocalStack> {
  const chat = reuse ?? (await startFakeChat());
  const root = await mkdtemp(join(tmpdir(), 'crunch-local-'));
  await chmod(root, 0o711); // the sandbox user must be able to reach the sessions folder
  const engine = createLocalEngine({
    api: { provider: 'openai', apiKey: chat.apiKey, baseURL: `${chat.url}/v1`, apiVersion: undefined, model: 'local-model', instructions: 'You are Crunch.' },
    retry: { maxAttempts: 2, baseDelayMs: 5 },
    maxFileBytes: 32 * 1024 * 1024,
    logger: pino({ level: 'silent' }),
    sandbox: 'bwrap',
    sessionsDir: join(root, 'sessions'),
    python: '/usr/bin/python3',
    limits: TEST_LIMITS,
    tmpBytes: 64 * 1024 * 1024,
    poolSize: 0,
    maxSessions: 4,
    idleMs: 60_000,
    maxToolRounds: 4,
    contextTokens: 16_000,
    ...overrides,
  });
  await engine.start();
  return {
    engine,
    chat,
    root,
    async close() {
      await engine.close();
      await chat.close();
      expect(chat.violations).toEqual([]);
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface Ran extends EngineRunResult {
  progress: Progress[];
  checkpoints: EngineSession[];
}

export async function ask(
  stack: LocalStack,
  text: string,
  options: { session?: EngineSession; files?: EngineFile[]; signal?: AbortSignal } = {},
): Promise<Ran> {
  const progress: Progress[] = [];
  const checkpoints: EngineSession[] = [];
  const result = await stack.engine.run({
    session: options.session,
    text,
    files: options.files ?? [],
    progress: (p) => progress.push(p),
    signal: options.signal ?? new AbortController().signal,
    checkpoint: async (s) => void checkpoints.push(s),
  });
  return { ...result, progress, checkpoints };
}

export function fileOf(name: string, data: Buffer | string, sourceId = `src:${name}`): EngineFile {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { sourceId, name, mimeType: 'application/octet-stream', sizeBytes: bytes.length, open: async () => Readable.from([bytes]) };
}

export async function fixture(name: string): Promise<Buffer> {
  return readFile(new URL(`../../fixtures/files/${name}`, import.meta.url));
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The tool results the model was sent after its last round of tool calls. */
export function lastToolResults(stack: LocalStack): string[] {
  return stack.chat.requests.at(-1)?.toolResults ?? [];
}
