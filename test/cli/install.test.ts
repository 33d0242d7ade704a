import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai.js';
import { emptyHome, type Ran, root, runCli, runProcess } from './harness.js';

/**
 * A fresh clone as a newcomer has it: the repository's files (no dist/, no .env) with its dependencies
 * installed (node_modules, linked here rather than installed again), then `npx crunch`, offline. And where
 * the CLI finds its `.env`: the working directory, the checkout it runs from, $XDG_CONFIG_HOME/crunch.
 */
let clone: string;
let home: string;
let openai: FakeOpenAI;

beforeAll(async () => {
  clone = await mkdtemp(join(tmpdir(), 'crunch-clone-'));
  home = await emptyHome();
  const { stdout } = await promisify(execFile)('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  for (const file of stdout.split('\0').filter((f) => f !== '')) {
    await mkdir(dirname(join(clone, file)), { recursive: true });
    await cp(join(root, file), join(clone, file)).catch((err: NodeJS.ErrnoException) => {
      // A file deleted in the work tree but not yet from the index is not part of the clone either.
      if (err.code !== 'ENOENT') throw err;
    });
  }
  await symlink(join(root, 'node_modules'), join(clone, 'node_modules'));
  openai = await startFakeOpenAI();
}, 60_000);
afterAll(async () => {
  await openai.close();
  await rm(clone, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});
afterEach(() => {
  expect(openai.violations).toEqual([]);
  openai.reset();
});

/** What `npx crunch …` runs, without the network and with a cache of its own (npx remembers its links there). */
function npx(args: string[]): Promise<Ran> {
  return runProcess('npm', ['exec', '--offline', '--cache', join(home, 'npm-cache'), '--', 'crunch', ...args], { cwd: clone, env: { HOME: home } });
}

describe('a fresh clone', () => {
  it('runs `npx crunch` right after `npm ci`, building itself on the first run', async () => {
    const { version } = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { version: string };
    const first = await npx(['--version']);
    expect(first.stderr).toContain('Building crunch (once, after a fresh install)…');
    expect(first).toMatchObject({ code: 0, stdout: `crunch ${version}\n` });
    const again = await npx(['--version']);
    expect(again).toEqual({ code: 0, stdout: `crunch ${version}\n`, stderr: '' });
    // After a change to the sources, the next run builds again.
    const text = join(clone, 'src/cli/text.ts');
    await writeFile(text, `${await readFile(text, 'utf8')}\n`);
    const changed = await npx(['--version']);
    expect(changed.stderr).toContain('The sources changed: building crunch…');
    expect(changed.stdout).toBe(`crunch ${version}\n`);
  }, 120_000);
});

describe('.env lookup', () => {
  const settings = () => `OPENAI_API_KEY=${openai.apiKey}\nOPENAI_BASE_URL=${openai.url}/v1\nSTORE_URL=memory://\n`;
  const ask = (cwd: string, env: Record<string, string> = {}) =>
    runCli(['ask', 'what is 2 + 2?'], { cwd, script: join(clone, 'bin/crunch.js'), env: { HOME: home, ...env } });

  it('finds the checkout’s .env from a subdirectory of it', async () => {
    await writeFile(join(clone, '.env'), settings());
    const deep = join(clone, 'docs', 'deeper');
    await mkdir(deep, { recursive: true });
    openai.script.push({ text: 'Four.' });
    expect(await ask(deep)).toMatchObject({ code: 0, stdout: 'Four.\n' });
    await unlink(join(clone, '.env'));
  });

  it('prefers the working directory’s .env to the checkout’s', async () => {
    await writeFile(join(clone, '.env'), `OPENAI_API_KEY=sk-wrong-key\nOPENAI_BASE_URL=${openai.url}/v1\nSTORE_URL=memory://\n`);
    const here = await mkdtemp(join(tmpdir(), 'crunch-cwd-'));
    await writeFile(join(here, '.env'), `OPENAI_API_KEY=${openai.apiKey}\n`);
    openai.script.push({ text: 'Four.' });
    expect(await ask(here)).toMatchObject({ code: 0, stdout: 'Four.\n' });
    await unlink(join(clone, '.env'));
    await rm(here, { recursive: true });
  });

  it('finds $XDG_CONFIG_HOME/crunch/.env, and ~/.config/crunch/.env without it', async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), 'crunch-elsewhere-'));
    const xdg = join(elsewhere, 'xdg');
    await mkdir(join(xdg, 'crunch'), { recursive: true });
    await writeFile(join(xdg, 'crunch', '.env'), settings());
    openai.script.push({ text: 'Four.' }, { text: 'Still four.' });
    expect(await ask(elsewhere, { XDG_CONFIG_HOME: xdg })).toMatchObject({ code: 0, stdout: 'Four.\n' });

    await mkdir(join(home, '.config', 'crunch'), { recursive: true });
    await writeFile(join(home, '.config', 'crunch', '.env'), settings());
    expect(await ask(elsewhere)).toMatchObject({ code: 0, stdout: 'Still four.\n' });
    await rm(join(home, '.config'), { recursive: true });

    const nowhere = await ask(elsewhere);
    expect(nowhere.code).toBe(78);
    expect(nowhere.stdout).toBe('');
    expect(nowhere.stderr).toContain('OPENAI_API_KEY: required');
    expect(nowhere.stderr).toContain(
      `Settings were read from the environment, then ${join(elsewhere, '.env')} (not found), ${join(clone, '.env')} (not found), ${join(home, '.config/crunch/.env')} (not found).`,
    );
    await rm(elsewhere, { recursive: true });
  });
});
