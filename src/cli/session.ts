import { styleText } from 'node:util';
import { type Crunch, createCrunch, createLogger, logDestination } from '../app.js';
import { loadConfig } from '../config/index.js';
import type { FileRef, Reply } from '../core/index.js';
import type { CommandContext } from './commands.js';
import { type SavedOutputs, saveOutputs } from './output.js';
import { type CliPlatform, createCliPlatform } from './platform.js';
import { answerView, failed, markdownRenderer, type Render, type Terminal } from './terminal.js';
import { printable, printableLine } from './text.js';

/** The CLI's `help` follows up its own way: there is no thread in a terminal. */

/** Errors a person fixes in the configuration: `crunch doctor` says how. */
const CONFIGURATION_ERRORS = new Set(['engine_auth', 'engine_quota', 'config']);

/** The core and the engine with the terminal as their platform, for `ask` and `chat`. */
export interface CliSession {
  crunch: Crunch;
  term: Terminal;
  close(): Promise<void>;
  /** Asks one question: shows its progress and answer, saves its outputs under `outDir`. */
  ask(question: { thread: string; channel: string; text: string; files: FileRef[] }, options: { outDir: string; json: boolean }): Promise<{ reply: Reply; outputs: SavedOutputs }>;
}

export async function openSession(ctx: CommandContext): Promise<CliSession> {
  const term: Terminal = { out: ctx.out, err: ctx.err };
  const rendering = markdownRenderer(term.out);
  const config = loadConfig(process.env);
  // Logs are for --verbose: the terminal shows the friendly messages, not log lines.
  const logger = createLogger(ctx.verbose ? 'debug' : 'silent', ctx.verbose ? await logDestination(config.logFormat) : undefined);
  const crunch = await createCrunch(config, logger, { privateInbox: true });
  const cli: CliPlatform = createCliPlatform();
  crunch.core.register(cli);
  crunch.core.start();
  const render: Render | undefined = await rendering;
  const wording = (reply: Reply): string => {
    if (reply.kind === 'error' && CONFIGURATION_ERRORS.has(reply.error?.code ?? '')) return `${reply.text}\nRun \`crunch doctor\` to check the configuration.`;
    return reply.text;
  };

  return {
    crunch,
    term,
    close: () => crunch.close(0),
    async ask(question, options) {
      const view = await answerView(term, { stream: !options.json, render: options.json ? undefined : render, wording });
      let reply: Reply;
      try {
        reply = await cli.ask(crunch.core, question, view.progress);
      } finally {
        view.stop();
      }
      // With --json the answer is the JSON object; an error is still told on stderr.
      if (!options.json || failed(reply)) view.finish(reply);
      // The receipt ("1,234 tokens · ≈ $0.04", with CRUNCH_SHOW_COST) is small print: a dim line on stderr.
      if (!options.json && reply.receipt !== undefined) term.err.write(`${styleText('dim', printable(reply.receipt), { stream: term.err })}\n`);
      const outputs = await saveOutputs(reply, options.outDir, question.text);
      if (!options.json) {
        for (const file of outputs.saved) term.err.write(`saved ${printableLine(file.path)}\n`);
        for (const file of outputs.failed) term.err.write(`could not save ${file.name}: ${file.error}\n`);
      }
      return { reply, outputs };
    },
  };
}
