import type { ParseArgsConfig } from 'node:util';

/**
 * The CLI's commands: what `crunch help` and `crunch <command> --help` print, and the options each takes.
 * Kept apart from the commands themselves, which are loaded only when they run (a command's module brings
 * the core, the engine and, for `serve`, the chat SDKs).
 */
export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: Options;
  /** Whether it takes positional arguments (the question). */
  positionals: boolean;
}

const VERBOSE = '      --verbose         details of what fails (stack traces, logs) on stderr';
const CONFIG =
  'Settings come from the environment, then from .env in the working directory, in the Crunch checkout, and in\n' +
  '$XDG_CONFIG_HOME/crunch/.env (~/.config/crunch/.env); see .env.example.';

const common: Options = { help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean' } };
const questionOptions: Options = {
  ...common,
  file: { type: 'string', short: 'f', multiple: true, default: [] },
  out: { type: 'string', short: 'o', default: 'crunch-out' },
};

export const COMMANDS: Record<string, Command> = {
  ask: {
    name: 'ask',
    summary: 'ask one question, with files if you like; the answer goes to stdout',
    usage: `Usage: crunch ask [--file FILE]... [--out DIR] [--json] [QUESTION | -]

Asks one question and prints the answer on stdout (streamed and formatted on a terminal, plain markdown
when piped). Charts, files and the code it ran are saved in a new folder under DIR for each answer.
Without QUESTION, or with -, the question is read from stdin: echo "what is in it?" | crunch ask -f data.csv

  -f, --file FILE      attach a file (repeatable): csv, xlsx, pdf, docx, pptx, json, images, …
  -o, --out DIR        where answers' folders go (default ./crunch-out)
      --json           print one JSON object instead: answer, files written, notices, usage
${VERBOSE}

${CONFIG}`,
    options: { ...questionOptions, json: { type: 'boolean' } },
    positionals: true,
  },
  chat: {
    name: 'chat',
    summary: 'a conversation that keeps its context, files and earlier results',
    usage: `Usage: crunch chat [--file FILE]... [--out DIR] [--session NAME]

A conversation in the terminal: each line you type is a question; answers stream as they are written.
/file PATH attaches a file to your next question; "help" shows what Crunch does; "reset" starts afresh;
Ctrl-D ends it. Charts and files are saved in a new folder under DIR for each answer.

  -f, --file FILE      attach a file to the first question (repeatable)
  -o, --out DIR        where answers' folders go (default ./crunch-out)
      --session NAME   resume (or start) the conversation NAME, kept in the store across runs
${VERBOSE}

${CONFIG}`,
    options: { ...questionOptions, session: { type: 'string' } },
    positionals: false,
  },
  serve: {
    name: 'serve',
    summary: 'start the bot server for Slack and Teams (what `npm start` runs)',
    usage: `Usage: crunch serve

Starts the bot server: the configured chat platforms (Slack, Teams), GET /healthz, /readyz and /metrics on
PORT (default 3978). At start-up it checks the OpenAI or Azure OpenAI key and model, and says what to fix.
Logs go to stderr (readable on a terminal, JSON lines otherwise; LOG_LEVEL, LOG_FORMAT).

${CONFIG}`,
    options: { help: { type: 'boolean', short: 'h' } },
    positionals: false,
  },
  usage: {
    name: 'usage',
    summary: 'turns, tokens and cost per person or per channel, from the usage log',
    usage: `Usage: crunch usage [--since PERIOD] [--by user|channel] [--json]

Sums what Crunch answered over a period, from the usage log in the store (STORE_URL; shared by replicas on
Redis): turns, input, cached and output tokens, sandbox sessions and approximate cost (the price table, see
CRUNCH_PRICES), per person or per channel, most expensive first.

      --since PERIOD   how far back: 7d, 12h, 30m, 2w (default 30d)
      --by user|channel  group by person (default) or by channel
      --json           print one JSON object instead: the period, a row per person or channel, the total
${VERBOSE}

${CONFIG}`,
    options: { ...common, since: { type: 'string', default: '30d' }, by: { type: 'string', default: 'user' }, json: { type: 'boolean' } },
    positionals: false,
  },
  doctor: {
    name: 'doctor',
    summary: 'check the configuration against the live services and say what to fix',
    usage: `Usage: crunch doctor

Checks the configuration against the live services and prints ✓ or ✗ with what to fix, for each of:
the OpenAI or Azure OpenAI key, the model and its code interpreter (a request of a few tokens), the Slack
tokens and the scopes the app was granted, the Teams bot's credentials, and the store.
Exits with 1 when anything needs fixing.

${VERBOSE}

${CONFIG}`,
    options: common,
    positionals: false,
  },
};

export const USAGE = `Crunch answers questions about your files by writing and running Python.

Usage: crunch <command> [options]

Commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.name.padEnd(8)} ${c.summary}`)
  .join('\n')}
  help     this text; crunch <command> --help for a command's options

  crunch ask --file sales.xlsx "plot revenue by month and flag outliers"
  crunch chat --file sales.xlsx

Options: --version, --help.
${CONFIG}`;

/** What a command's module gets from main: its parsed arguments and where to write. */
export interface CommandContext {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  /** The `.env` files looked for, found or not (for messages about missing settings). */
  envFiles: import('../config/env-files.js').EnvFile[];
  verbose: boolean;
}
