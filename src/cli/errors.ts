import { inspect } from 'node:util';
import { printable } from './text.js';

/** A command used the wrong way: told with the command's usage hint, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure with a message fit to show as it is (a missing file, a refused key): exit code 1. */
export class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** sysexits' EX_CONFIG, for a configuration that cannot be used. */
const EX_CONFIG = 78;

/**
 * What the CLI prints on stderr for a failure, and its exit code: the friendly message alone, or with
 * `verbose` everything known about it (stack, causes). A configuration error also says where the settings
 * were looked for (`settingsFrom`).
 */
export function describeFailure(err: unknown, verbose: boolean, settingsFrom?: string): { text: string; code: number } {
  const e = err as { name?: unknown; userMessage?: unknown; code?: unknown; message?: unknown };
  if (err instanceof UsageError) {
    const help = err.command ? `crunch ${err.command} --help` : 'crunch help';
    return { text: `${printable(err.message)}\nRun \`${help}\` for the options.`, code: 2 };
  }
  const config = e.name === 'ConfigError' || (e.name === 'CrunchError' && e.code === 'config');
  const known = err instanceof CliError || config || e.name === 'CrunchError';
  const message = printable(String(e.userMessage ?? e.message ?? err));
  const where = config && settingsFrom !== undefined ? `\nSettings were read from ${settingsFrom}.` : '';
  const text = known ? `${message}${where}` : `crunch: ${message}`;
  if (verbose) return { text: `${text}\n\n${printable(inspect(err, { depth: 4 }))}`, code: config ? EX_CONFIG : 1 };
  return { text: known ? text : `${text}\n(run the command again with --verbose for the details)`, code: config ? EX_CONFIG : 1 };
}
