import { randomUUID } from 'node:crypto';
import type { CommandContext } from './commands.js';
import { UsageError } from './errors.js';
import { localFile } from './platform.js';
import { openSession } from './session.js';
import { failed } from './terminal.js';
import { printable } from './text.js';

/** A question piped in is a question, not a file: past this, attach it with --file. */
const MAX_STDIN_BYTES = 1024 * 1024;

async function readStdin(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) throw new UsageError('The question on stdin is over 1 MB: save it in a file and attach it with --file.', 'ask');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** The question: the arguments, or stdin for `-` or when there are none and stdin is not a terminal. */
async function question(positionals: string[], stdin: NodeJS.ReadStream): Promise<string> {
  if (positionals.length === 1 && positionals[0] === '-') return readStdin(stdin);
  if (positionals.length === 0 && !stdin.isTTY) return readStdin(stdin);
  return positionals.join(' ').trim();
}

/**
 * `crunch ask [--file F]... [--json] "question"`: one question, one answer. The answer goes to stdout (one
 * JSON object with --json), progress and saved files to stderr. Exit code 1 when the answer is an error.
 */
export async function run(ctx: CommandContext): Promise<number> {
  const options = ctx.values as { file: string[]; out: string; json?: boolean };
  const text = await question(ctx.positionals, ctx.stdin);
  if (text === '' && options.file.length === 0) throw new UsageError('crunch ask needs a question, or a file to look at.', 'ask');
  const files = await Promise.all(options.file.map(localFile));
  const session = await openSession(ctx);
  try {
    const { reply, outputs } = await session.ask({ channel: 'ask', thread: randomUUID(), text, files }, { outDir: options.out, json: options.json === true });
    if (options.json) {
      const json = {
        kind: reply.kind,
        answer: printable(reply.text),
        notices: reply.notices.map(printable),
        folder: outputs.dir ?? null,
        files: outputs.saved,
        failed: outputs.failed,
        usage: reply.usage ?? null,
        ...(failed(reply) ? { error: { code: reply.error?.code ?? reply.refused ?? 'internal', message: printable(reply.text) } } : {}),
      };
      ctx.out.write(`${JSON.stringify(json, null, 2)}\n`);
    }
    return failed(reply) ? 1 : 0;
  } finally {
    await session.close();
  }
}
