import { randomUUID } from 'node:crypto';
import type { Crunch } from '../app.js';
import type { Turn } from '../core/index.js';
import { fileAttachment } from './attachments.js';
import { printReply, statusPrinter, type Terminal } from './output.js';

export interface AskOptions {
  question: string;
  files: string[];
  outDir: string;
}

/** `crunch ask [--file F]... "question"`: one question, one answer. Returns the exit code. */
export async function ask(crunch: Crunch, options: AskOptions, term: Terminal): Promise<number> {
  const turn: Turn = {
    conversation: { platform: 'cli', workspace: 'local', channel: 'ask', thread: randomUUID() },
    messageKey: `cli:${randomUUID()}`,
    user: { id: 'local' },
    text: options.question,
    attachments: await Promise.all(options.files.map(fileAttachment)),
  };
  const reply = await crunch.core.handle(turn, statusPrinter(term));
  if (!reply) return 1;
  await printReply(reply, options.outDir, term);
  return reply.kind === 'error' ? 1 : 0;
}
