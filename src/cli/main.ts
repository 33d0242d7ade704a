#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { config as loadDotenv } from 'dotenv';
import { createCrunch, createLogger, logDestination } from '../app.js';
import { ConfigError, loadConfig } from '../config/index.js';
import { ask } from './ask.js';
import { chat } from './chat.js';
import { statusPrinter } from './output.js';
import { createCliPlatform } from './platform.js';
import { serve } from './serve.js';

const USAGE = `Usage:
  crunch serve                              start the bot server (Slack, Teams, /healthz); what \`npm start\` runs
  crunch ask [--file F]... [--out DIR] "question"
                                            ask one question; images and files go to DIR (./crunch-out)
  crunch chat [--file F]... [--out DIR] [--session NAME]
                                            an interactive conversation that keeps its context
  crunch help                               this text

Configuration comes from the environment and ./.env; see .env.example.`;

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const term = { out: process.stdout, err: process.stderr };
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f', multiple: true, default: [] },
      out: { type: 'string', short: 'o', default: 'crunch-out' },
      session: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command = 'help', ...rest] = positionals;
  if (values.help || command === 'help') {
    term.out.write(`${USAGE}\n`);
    return 0;
  }
  if (!['serve', 'ask', 'chat'].includes(command)) {
    term.err.write(`Unknown command: ${command}\n\n${USAGE}\n`);
    return 2;
  }
  if (command === 'ask' && rest.join(' ').trim() === '' && values.file.length === 0) {
    term.err.write(`crunch ask needs a question or a file.\n\n${USAGE}\n`);
    return 2;
  }

  const config = loadConfig(env);
  const logger = createLogger(command === 'serve' ? config.logLevel : env.LOG_LEVEL ? config.logLevel : 'warn', await logDestination(config.logFormat));
  if (command === 'serve') {
    const code = await serve(config, logger);
    // Shut down: idle keep-alive sockets of the SDKs' HTTP agents would hold the process for seconds more.
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    process.exit(code);
  }

  const crunch = await createCrunch(config, logger, { privateInbox: true });
  const cli = createCliPlatform(statusPrinter(term));
  crunch.core.register(cli);
  crunch.core.start();
  try {
    if (command === 'ask') return await ask(crunch, cli, { question: rest.join(' '), files: values.file, outDir: values.out }, term);
    return await chat(crunch, cli, { files: values.file, outDir: values.out, session: values.session, input: process.stdin }, term);
  } finally {
    await crunch.close(0);
  }
}

loadDotenv({ quiet: true });
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = err instanceof ConfigError ? 78 : 1;
  },
);
