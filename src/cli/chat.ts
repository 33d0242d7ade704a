import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import type { FileRef } from '../core/index.js';
import type { CommandContext } from './commands.js';
import { localFile } from './platform.js';
import { openSession } from './session.js';
import { printableLine } from './text.js';

/**
 * `crunch chat`: an interactive conversation on the same core and store a chat platform uses.
 * `/file PATH` attaches a file to the next question; `help`, `reset` work as in Slack and Teams.
 */
export async function run(ctx: CommandContext): Promise<number> {
  const options = ctx.values as { file: string[]; out: string; session?: string };
  const thread = options.session ?? randomUUID();
  let pending: FileRef[] = await Promise.all(options.file.map(localFile));
  const session = await openSession(ctx);
  const rl = createInterface({ input: ctx.stdin, terminal: false });
  ctx.err.write('Crunch chat: ask anything; /file PATH attaches a file; help; reset; Ctrl-D to quit.\n> ');
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text.startsWith('/file ')) {
        try {
          pending.push(await localFile(text.slice(6).trim()));
          ctx.err.write(`attached ${printableLine(pending.at(-1)!.name)} to your next question\n`);
        } catch (err) {
          ctx.err.write(`${printableLine((err as Error).message)}\n`);
        }
      } else if (text !== '') {
        const files = pending;
        pending = [];
        await session.ask({ channel: 'chat', thread, text, files }, { outDir: options.out, json: false });
      }
      ctx.err.write('> ');
    }
  } finally {
    rl.close();
    await session.close();
  }
  return 0;
}
