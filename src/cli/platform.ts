import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { FileRef, Json, Platform, ProgressSink, Reply, Turn } from '../core/index.js';
import { CliError } from './errors.js';

/**
 * The terminal as a platform: the CLI's turns go through the core's journey like any chat's, in an inbox of
 * the CLI's own, and `ask` waits for the reply the core delivers, showing its progress meanwhile.
 */
export interface CliPlatform extends Platform {
  /** Hands the question to the core and resolves with its reply; `progress` sees its statuses and streamed text. */
  ask(
    core: { handle(turn: Turn): Promise<{ status: string }> },
    question: { thread: string; channel: string; text: string; files: FileRef[] },
    progress: ProgressSink,
  ): Promise<Reply>;
}

export function createCliPlatform(): CliPlatform {
  const waiting = new Map<string, { progress: ProgressSink; deliver: (reply: Reply) => void }>();
  return {
    name: 'cli',
    // The operator's own terminal: allow-lists do not apply (budgets and the usage log do).
    operator: true,
    followUp: 'ask again in `crunch chat` to follow up: I remember the conversation, its files and my earlier results',
    async prepare(turn) {
      return {
        attachments: turn.files.map((file) => ({
          sourceId: file.sourceId,
          name: file.name,
          ...(file.sizeBytes !== undefined ? { sizeBytes: file.sizeBytes } : {}),
          open: async () => createReadStream(String(file.source)),
        })),
        notices: [],
      };
    },
    present(turn) {
      const question = waiting.get(turn.messageKey);
      return {
        progress: (p) => question?.progress(p),
        async deliver(reply) {
          question?.deliver(reply);
          waiting.delete(turn.messageKey);
        },
        async suspend() {},
      };
    },
    async ask(core, question, progress) {
      const turn: Turn = {
        conversation: { platform: 'cli', workspace: 'local', channel: question.channel, thread: question.thread },
        messageKey: `cli:${randomUUID()}`,
        user: { id: 'local' },
        text: question.text,
        files: question.files,
        platformData: {},
      };
      const replied = new Promise<Reply>((deliver) => waiting.set(turn.messageKey, { progress, deliver }));
      const handled = await core.handle(turn);
      if (handled.status !== 'accepted') throw new Error(`the question was not taken (${handled.status})`);
      return replied;
    },
  };
}

/** A local file as a turn's file; its source id changes when the file does, so an edit is re-uploaded. */
export async function localFile(path: string): Promise<FileRef> {
  const absolute = resolve(path);
  const info = await stat(absolute).catch(() => {
    throw new CliError(`No such file: ${path}`);
  });
  if (!info.isFile()) throw new CliError(`Not a file: ${path}`);
  const source: Json = absolute;
  return { sourceId: `file:${absolute}:${info.size}:${info.mtimeMs}`, name: basename(absolute), sizeBytes: info.size, source };
}
