#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../config/package-root.js';
import { COMMANDS, type CommandContext, USAGE } from './commands.js';
import { describeFailure, UsageError } from './errors.js';

// Compiled code of the modules loaded below is cached on disk (os.tmpdir()), which makes later starts faster.
enableCompileCache();

/** Where the settings were looked for, once they were: a configuration error names it. */
let settingsFrom: string | undefined;

/** Each command's module, loaded only when it runs: `serve` brings the chat SDKs, `ask` the engine. */
const load: Record<string, () => Promise<{ run(ctx: CommandContext): Promise<number> }>> = {
  ask: () => import('./ask.js'),
  chat: () => import('./chat.js'),
  serve: () => import('./serve.js'),
  doctor: () => import('./doctor.js'),
  usage: () => import('./usage.js'),
};

function version(): string {
  const root = packageRoot();
  const pkg = root === undefined ? {} : (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string });
  return `crunch ${pkg.version ?? 'unknown'}`;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const topic = first === undefined ? undefined : COMMANDS[rest[0] ?? ''];
    process.stdout.write(`${topic?.usage ?? USAGE}\n`);
    return 0;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS[first];
  if (command === undefined) throw new UsageError(`Unknown command: ${first}`);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: command.positionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, command.name);
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  const { defaultPlaces, describeEnvFiles, envFilePaths, loadEnvFiles } = await import('../config/env-files.js');
  const envFiles = loadEnvFiles(process.env, envFilePaths(defaultPlaces()));
  settingsFrom = describeEnvFiles(envFiles);
  const { run } = await load[command.name]!();
  return run({
    values: parsed.values,
    positionals: parsed.positionals,
    out: process.stdout,
    err: process.stderr,
    stdin: process.stdin,
    envFiles,
    verbose: parsed.values.verbose === true,
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // One friendly message on stderr (stdout stays the answer's), the details only with --verbose.
    const { text, code } = describeFailure(err, process.argv.includes('--verbose'), settingsFrom);
    process.stderr.write(`${text}\n`);
    process.exitCode = code;
  },
);
