import { mkdir, mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineSession } from '../../../src/core/index.js';
import { ask, fileOf, type LocalStack, readAll, startLocal } from './harness.js';

/**
 * What sandboxed code must not reach, each tried for real by code the model sends: the network, the bot's
 * environment and .env, its data store and directory, home directories, /etc/shadow, another conversation's
 * files, and the host through links it leaves in its folder.
 */

const SECRET = `sk-secret-${process.pid}-do-not-leak`;
let stack: LocalStack;
let botDir: string;
const started = process.cwd();

beforeAll(async () => {
  // The bot as deployed: a directory holding its .env and its data store, and the secret in its environment.
  botDir = await mkdtemp(join(tmpdir(), 'crunch-bot-'));
  await chmod(botDir, 0o711);
  await writeFile(join(botDir, '.env'), `OPENAI_API_KEY=${SECRET}\n`);
  await mkdir(join(botDir, 'data'), { mode: 0o755 });
  await writeFile(join(botDir, 'data', 'crunch.sqlite'), `store with ${SECRET}`);
  process.env.CRUNCH_TEST_SECRET = SECRET;
  process.chdir(botDir);
  stack = await startLocal({ sessionsDir: join(botDir, 'data', 'sessions'), maxToolRounds: 20 });
}, 60_000);

afterAll(async () => {
  await stack.close();
  process.chdir(started);
  delete process.env.CRUNCH_TEST_SECRET;
  await rm(botDir, { recursive: true, force: true });
});

/** Runs each snippet as one tool call in one turn and returns what the model was told for each. */
async function attempt(snippets: string[], session?: EngineSession) {
  stack.chat.script.push({ python: snippets }, { text: 'done' });
  const result = await ask(stack, 'try it', { session });
  return { result, told: stack.chat.requests.at(-1)!.toolResults };
}

/** Python that prints BLOCKED when `action` raises, LEAKED plus what it got otherwise. */
const probe = (action: string) => `try:\n    got = ${action}\n    print('LEAKED', repr(got)[:300])\nexcept Exception as e:\n    print('BLOCKED', type(e).__name__)`;

describe('the sandbox', () => {
  it('has no network: not the internet, not DNS, not the bot\'s own loopback servers', async () => {
    const port = new URL(stack.chat.url).port;
    const { told } = await attempt([
      probe(`__import__('socket').create_connection(('127.0.0.1', ${port}), timeout=3)`),
      probe(`__import__('socket').create_connection(('1.1.1.1', 443), timeout=3)`),
      probe(`__import__('socket').getaddrinfo('example.com', 443)`),
      probe(`__import__('urllib.request').request.urlopen('http://127.0.0.1:${port}/v1/models', timeout=3).read()`),
    ]);
    for (const result of told) expect(result).toMatch(/^Output:\nBLOCKED/);
  });

  it("does not see the bot's environment, .env, data store, directory or home directories", async () => {
    const { told } = await attempt([
      "import os\nprint(sorted(os.environ))",
      probe(`open(${JSON.stringify(join(botDir, '.env'))}).read()`),
      probe(`open(${JSON.stringify(join(botDir, 'data', 'crunch.sqlite'))}).read()`),
      probe(`__import__('os').listdir(${JSON.stringify(botDir)})`),
      probe(`__import__('os').listdir(${JSON.stringify(started)})`),
      probe(`open(${JSON.stringify(join(started, 'package.json'))}).read()`),
      probe("__import__('os').listdir('/root')"),
      probe("__import__('os').listdir('/home')"),
      "import glob\nfound = [p for p in glob.glob('/proc/*/environ') if b'sk-secret' in open(p, 'rb').read()]\nprint('environ leaks:', found)",
      "print(sorted(__import__('os').listdir('/')))",
    ]);
    // Nothing of the bot's environment but the numeric libraries' hardware hints, where the machine sets them.
    const hints = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'].filter((name) => process.env[name] !== undefined);
    const names = ['HOME', 'LANG', 'LC_ALL', 'MKL_NUM_THREADS', 'MPLBACKEND', 'MPLCONFIGDIR', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'PWD', ...hints].sort();
    expect(told[0]).toBe(`Output:\n[${names.map((n) => `'${n}'`).join(', ')}]`);
    for (const result of told.slice(1, 8)) expect(result).toMatch(/^Output:\nBLOCKED/);
    expect(told[8]).toBe('Output:\nenviron leaks: []');
    expect(told[9]).toBe("Output:\n['bin', 'dev', 'etc', 'lib', 'lib64', 'mnt', 'opt', 'proc', 'sbin', 'tmp', 'usr']");
    expect(told.join('\n')).not.toContain(SECRET);
  });

  it('cannot read /etc/shadow or write outside its folder and /tmp', async () => {
    const { told } = await attempt([
      probe("open('/etc/shadow').read()"),
      "print(open('/etc/passwd').read().strip())",
      probe("open('/usr/lib/crunch-was-here', 'w').write('x')"),
      probe("open('/etc/crunch-was-here', 'w').write('x')"),
      "open('/tmp/scratch', 'w').write('ok')\nprint(open('/tmp/scratch').read())",
    ]);
    expect(told[0]).toMatch(/^Output:\nBLOCKED/);
    expect(told[1]).toMatch(/^Output:\nsandbox:x:\d+:\d+:Crunch sandbox:\/tmp:\/usr\/sbin\/nologin$/);
    expect(told[2]).toMatch(/^Output:\nBLOCKED/);
    expect(told[3]).toMatch(/^Output:\nBLOCKED/);
    expect(told[4]).toBe('Output:\nok');
  });

  it("never lets one conversation reach another's files", async () => {
    const first = await attempt(["open('secret.txt', 'w').write('conversation A only')\nprint('written')"]);
    const id = first.result.session.contextId!;
    const hostPath = join(stack.root, 'sessions', id, 'data', 'secret.txt');
    const { told, result } = await attempt([
      "print(sorted(__import__('os').listdir('.')))",
      probe(`open(${JSON.stringify(hostPath)}).read()`),
      probe(`open('/mnt/data/../${id}/data/secret.txt').read()`),
      probe(`__import__('os').listdir(${JSON.stringify(join(stack.root, 'sessions'))})`),
    ]);
    expect(result.session.contextId).not.toBe(id);
    expect(told[0]).toBe('Output:\n[]');
    for (const told_ of told.slice(1)) expect(told_).toMatch(/^Output:\nBLOCKED/);
  });

  it('does not let links in its folder leak host files as outputs, nor redirect a shared file onto the host', async () => {
    const target = join(botDir, 'victim.txt');
    await writeFile(target, 'host file');
    const { result } = await attempt([
      `import os\nos.symlink(${JSON.stringify(join(botDir, '.env'))}, 'leak.csv')\nos.symlink(${JSON.stringify(target)}, 'report.csv')\nos.mkfifo('pipe.csv')\nprint('ok')`,
    ]);
    expect(result.outputs).toEqual([]);
    const next = await ask(stack, 'here is the report', { session: result.session, files: [fileOf('report.csv', 'a,b\n1,2\n')] });
    expect(next.notices).toEqual([]);
    expect(await readFile(target, 'utf8')).toBe('host file');
    stack.chat.script.push({ python: "print(open('report.csv').read())" }, { text: 'done' });
    await ask(stack, 'read it', { session: next.session });
    expect(stack.chat.requests.at(-1)!.toolResults[0]).toBe('Output:\na,b\n1,2');
  });

  it('serves outputs only by their reference, never a path of the caller\'s choosing', async () => {
    const { result } = await attempt(["open('table.csv', 'w').write('x,y\\n1,2\\n')"]);
    const ref = result.outputs[0]!.ref as { session: string; turn: string; name: string };
    expect((await readAll(await stack.engine.openOutput(ref))).toString()).toBe('x,y\n1,2\n');
    for (const bad of [{ ...ref, name: '../../data/table.csv' }, { ...ref, session: '../..' }, { ...ref, name: '.env' }, null]) {
      await expect(stack.engine.openOutput(bad)).rejects.toMatchObject({ code: 'output_unavailable' });
    }
  });
});
