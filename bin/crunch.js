#!/usr/bin/env node
// The `crunch` command (`npx crunch`, `npm exec crunch`, `npm link`): runs the compiled CLI in dist/, and
// compiles it first when it is missing or older than the sources, so that it works right after `npm ci`
// in a fresh clone, and after a `git pull`. This file is not compiled itself: it always exists, so the
// link npx makes to it is never a broken one.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const main = join(root, 'dist/src/cli/main.js');
const tsc = join(root, 'node_modules/typescript/bin/tsc');

/** The newest modification time of the sources (TypeScript, the local engine's Python) and the build settings, in ms. */
function newestSource() {
  let newest = 0;
  const visit = (path) => {
    const info = statSync(path, { throwIfNoEntry: false });
    if (info === undefined) return;
    if (info.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
    else if (/\.(ts|py|json)$/.test(path)) newest = Math.max(newest, info.mtimeMs);
  };
  for (const part of ['src', 'adapters', 'tsconfig.json', 'tsconfig.build.json']) visit(join(root, part));
  return newest;
}

const builtAt = statSync(main, { throwIfNoEntry: false })?.mtimeMs ?? 0;
if (builtAt === 0 || newestSource() > builtAt) {
  if (!existsSync(tsc)) {
    if (builtAt === 0) {
      process.stderr.write('crunch is not built, and TypeScript is not installed to build it: run `npm ci`, then `npm run build`.\n');
      process.exit(1);
    }
    // An install without dev dependencies: what was built is what there is.
  } else {
    process.stderr.write(builtAt === 0 ? 'Building crunch (once, after a fresh install)…\n' : 'The sources changed: building crunch…\n');
    const { spawnSync } = await import('node:child_process');
    // `npm run build`, with the npm that runs this (npx, npm exec) or the one on the PATH. Its messages go to
    // stderr: stdout is the answer's.
    const npm = process.env.npm_execpath;
    const options = { cwd: root, stdio: ['ignore', 2, 2], shell: npm === undefined && process.platform === 'win32' };
    const args = ['run', '--silent', 'build'];
    const build = npm !== undefined ? spawnSync(process.execPath, [npm, ...args], options) : spawnSync('npm', args, options);
    if (build.status !== 0) {
      process.stderr.write('The build failed (above); `npm run build` shows the same.\n');
      process.exit(1);
    }
  }
}
await import(pathToFileURL(main).href);
