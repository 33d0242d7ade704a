import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai.js';

/** The CLI as a user runs it: the compiled bin in a child process, talking to the fake OpenAI over HTTP. */
const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'dist/src/cli/main.js');
const fixtures = join(root, 'test/fixtures/files');
const PNG = await readFile(join(fixtures, 'revenue.png'));

let openai: FakeOpenAI;
let work: string;

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root });
  openai = await startFakeOpenAI();
  work = await mkdtemp(join(tmpdir(), 'crunch-cli-'));
}, 120_000);
afterAll(async () => {
  await openai.close();
  await rm(work, { recursive: true, force: true });
});
afterEach(() => {
  expect(openai.violations).toEqual([]);
  openai.reset();
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function run(args: string[], input = '', env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: work,
      env: {
        PATH: process.env.PATH ?? '',
        OPENAI_API_KEY: openai.apiKey,
        OPENAI_BASE_URL: `${openai.url}/v1`,
        STORE_URL: `sqlite://${join(work, 'crunch.sqlite')}`,
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('crunch CLI', () => {
  it('ask --file sales.xlsx prints the answer and writes the chart PNG', async () => {
    openai.script.push({
      code: "df = pd.read_excel('/mnt/data/sales.xlsx')",
      images: [{ filename: 'revenue_by_month.png', data: PNG }],
      text: 'Revenue rises every month; July (South) is an outlier.',
    });
    const result = await run(['ask', '--file', join(fixtures, 'sales.xlsx'), 'plot revenue by month and flag outliers']);
    expect(result.stderr).toContain('reading sales.xlsx…');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Revenue rises every month; July (South) is an outlier.\n');
    expect((await readFile(join(work, 'crunch-out', 'revenue_by_month.png'))).equals(PNG)).toBe(true);
    expect(await readFile(join(work, 'crunch-out', 'code.py'), 'utf8')).toContain("pd.read_excel('/mnt/data/sales.xlsx')");
  });

  it('chat keeps one conversation across prompts and attaches files with /file', async () => {
    const input = [`/file ${join(fixtures, 'sales.xlsx')}`, 'what is in it?', 'and the total?', ''].join('\n');
    openai.script.push({ text: 'Monthly revenue for two regions.' }, { text: 'The total is 363,000.' });
    const result = await run(['chat'], input);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Monthly revenue for two regions.\nThe total is 363,000.\n');
    const bodies = openai.requests.filter((r) => r.endpoint === '/responses').map((r) => r.body as { conversation: string });
    expect(bodies).toHaveLength(2);
    expect(bodies[0]!.conversation).toBe(bodies[1]!.conversation);
    expect([...openai.files.values()].map((f) => f.filename)).toEqual(['sales.xlsx']);
  });

  it('names every bad variable at start-up and exits non-zero', async () => {
    const result = await run(['ask', 'hi'], '', { OPENAI_API_KEY: '', PORT: 'x', STORE_URL: 'ftp://nope' });
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/Invalid configuration:\n {2}- PORT: .*\n {2}- STORE_URL: must start with sqlite:\/\//);
  });

  it('skips an unsupported file with a reason and answers with the rest; a missing file is an error', async () => {
    await writeFile(join(work, 'movie.mp4'), 'not a movie');
    openai.script.push({ text: 'Two regions, twelve months.' });
    const result = await run(['ask', '--file', join(fixtures, 'sales.xlsx'), '--file', 'movie.mp4', 'what is this?']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Two regions, twelve months\.\n\n⚠ \*\*movie\.mp4\*\* skipped: \.mp4 is not supported\. Supported types: c, cpp/);
    expect([...openai.files.values()].map((f) => f.filename)).toEqual(['sales.xlsx']);

    const missing = await run(['ask', '--file', 'nowhere.csv', 'hi']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No such file: nowhere.csv');
  });

  it('serve (what npm start runs) answers /healthz and shuts down cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'serve'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', OPENAI_API_KEY: openai.apiKey, OPENAI_BASE_URL: `${openai.url}/v1`, PORT: String(port), STORE_URL: `sqlite://${join(work, 'serve.sqlite')}` },
    });
    let logs = '';
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await expect
      .poll(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status, { timeout: 10_000 })
      .toBe(200);
    expect(logs).toContain('crunch is up');
    // No MicrosoftAppId and no TEAMS_AUTH=off: there is no unauthenticated Teams endpoint to reach.
    expect((await fetch(`http://127.0.0.1:${port}/api/messages`, { method: 'POST', body: '{}' })).status).toBe(404);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('prints usage for help and an unknown command', async () => {
    expect((await run(['help'])).stdout).toContain('crunch ask [--file F]...');
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command: frobnicate');
  });
});

describe('crunch serve with a bad Slack token', () => {
  it('says what to fix and exits instead of hanging with a half-started server', async () => {
    const { startFakeSlack } = await import('../fakes/slack.js');
    const slack = await startFakeSlack();
    try {
      const result = await run(['serve'], '', {
        PORT: String(await freePort()),
        SLACK_BOT_TOKEN: 'xoxb-not-a-real-token',
        SLACK_SIGNING_SECRET: 'secret',
        SLACK_API_URL: `${slack.url}/api/`,
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/Slack rejected SLACK_BOT_TOKEN \(invalid_auth\)/);
    } finally {
      await slack.close();
    }
  });
});
