import { randomUUID } from 'node:crypto';
import type { Crunch } from '../app.js';
import { printReply, type Terminal } from './output.js';
import { type CliPlatform, localFile } from './platform.js';

export interface AskOptions {
  question: string;
  files: string[];
  outDir: string;
}

/** `crunch ask [--file F]... "question"`: one question, one answer. Returns the exit code. */
export async function ask(crunch: Crunch, cli: CliPlatform, options: AskOptions, term: Terminal): Promise<number> {
  const files = await Promise.all(options.files.map(localFile));
  const reply = await cli.ask(crunch.core, { channel: 'ask', thread: randomUUID(), text: options.question, files });
  await printReply(reply, options.outDir, term);
  return reply.kind === 'error' ? 1 : 0;
}
