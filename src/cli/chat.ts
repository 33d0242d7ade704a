import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import type { Crunch } from '../app.js';
import type { FileRef } from '../core/index.js';
import { printReply, type Terminal } from './output.js';
import { type CliPlatform, localFile } from './platform.js';

export interface ChatOptions {
  files: string[];
  outDir: string;
  /** Names a conversation to resume across runs; a fresh one by default. */
  session: string | undefined;
  input: NodeJS.ReadableStream;
}

/**
 * `crunch chat`: an interactive conversation on the same core and store a chat platform uses.
 * `/file PATH` attaches a file to the next question; `help`, `reset` work as in Slack and Teams.
 */
export async function chat(crunch: Crunch, cli: CliPlatform, options: ChatOptions, term: Terminal): Promise<number> {
  const thread = options.session ?? randomUUID();
  let pending: FileRef[] = await Promise.all(options.files.map(localFile));
  const rl = createInterface({ input: options.input, terminal: false });
  term.err.write('Crunch chat: ask anything; /file PATH attaches a file; help; reset; Ctrl-D to quit.\n> ');
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text.startsWith('/file ')) {
        try {
          pending.push(await localFile(text.slice(6).trim()));
          term.err.write(`attached ${pending.at(-1)!.name} to your next question\n`);
        } catch (err) {
          term.err.write(`${(err as Error).message}\n`);
        }
      } else if (text !== '') {
        const files = pending;
        pending = [];
        await printReply(await cli.ask(crunch.core, { channel: 'chat', thread, text, files }), options.outDir, term);
      }
      term.err.write('> ');
    }
  } finally {
    rl.close();
  }
  return 0;
}
