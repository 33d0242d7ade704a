import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai.js';
import { buildCli, CLI, freePort } from '../support/processes.js';
import { CONTROL, emptyHome, fixtures, type Ran, root, runCli, runProcess } from './harness.js';

/** `crunch ask` and `crunch chat` as a user runs them: the built CLI in a child process, against the fake OpenAI. */
const PNG = await readFile(join(fixtures, 'revenue.png'));
const SALES = join(fixtures, 'sales.xlsx');

let openai: FakeOpenAI;
let work: string;
let home: string;

beforeAll(async () => {
  await buildCli();
  openai = await startFakeOpenAI();
  work = await mkdtemp(join(tmpdir(), 'crunch-cli-'));
  home = await emptyHome();
}, 120_000);
afterAll(async () => {
  await openai.close();
  await rm(work, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});
afterEach(() => {
  expect(openai.violations).toEqual([]);
  openai.reset();
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { HOME: home, OPENAI_API_KEY: openai.apiKey, OPENAI_BASE_URL: `${openai.url}/v1`, STORE_URL: `sqlite://${join(work, 'crunch.sqlite')}`, ...extra };
}

function run(args: string[], input = '', extra: Record<string, string> = {}, cwd = work): Promise<Ran> {
  return runCli(args, { cwd, env: env(extra), input });
}

/** A fresh folder to run in, so that `crunch-out/` holds only this test's answers. */
async function folder(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  return dir;
}

/** The answers' folders under `dir`/crunch-out, oldest first, with their files. */
async function answers(dir: string): Promise<{ name: string; files: string[] }[]> {
  const out = join(dir, 'crunch-out');
  const names = (await readdir(out)).sort();
  return Promise.all(names.map(async (name) => ({ name, files: (await readdir(join(out, name))).sort() })));
}

/** stderr less its progress lines ("… thinking…"). */
const withoutProgress = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => !line.startsWith('… '))
    .join('\n');

const requestsText = () =>
  openai.requests
    .filter((r) => r.endpoint === '/responses')
    .map((r) => JSON.stringify((r.body as { input: unknown }).input))
    .join('\n');

describe('crunch ask', () => {
  it('prints the answer on stdout and saves the chart and the code in a folder of its own', async () => {
    const dir = await folder('one');
    openai.script.push({
      code: "df = pd.read_excel('/mnt/data/sales.xlsx')",
      images: [{ filename: 'revenue_by_month.png', data: PNG }],
      text: 'Revenue rises every month; July (South) is an outlier.',
    });
    const result = await run(['ask', '--file', SALES, 'plot revenue by month and flag outliers'], '', {}, dir);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Revenue rises every month; July (South) is an outlier.\n');
    expect(result.stderr).toContain('reading sales.xlsx…');
    const [answer] = await answers(dir);
    expect(answer!.name).toMatch(/^\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-plot-revenue-by-month-and-flag-outliers$/);
    expect(answer!.files).toEqual(['code.py', 'revenue_by_month.png']);
    const saved = join(dir, 'crunch-out', answer!.name);
    expect((await readFile(join(saved, 'revenue_by_month.png'))).equals(PNG)).toBe(true);
    expect(await readFile(join(saved, 'code.py'), 'utf8')).toContain("pd.read_excel('/mnt/data/sales.xlsx')");
    expect(result.stderr).toContain(`saved crunch-out/${answer!.name}/revenue_by_month.png`);
  });

  it('never overwrites: two questions leave two charts, even with the same name', async () => {
    const dir = await folder('two');
    const other = Buffer.concat([PNG, Buffer.from('second')]);
    openai.script.push({ code: 'plot()', images: [{ filename: 'chart.png', data: PNG }], text: 'First.' });
    openai.script.push({ code: 'plot()', images: [{ filename: 'chart.png', data: other }], text: 'Second.' });
    expect((await run(['ask', 'same question'], '', {}, dir)).code).toBe(0);
    expect((await run(['ask', 'same question'], '', {}, dir)).code).toBe(0);
    const both = await answers(dir);
    expect(both).toHaveLength(2);
    expect(both.map((a) => a.files)).toEqual([
      ['chart.png', 'code.py'],
      ['chart.png', 'code.py'],
    ]);
    const charts = await Promise.all(both.map((a) => readFile(join(dir, 'crunch-out', a.name, 'chart.png'))));
    expect(charts.map((c) => c.length).sort()).toEqual([PNG.length, other.length].sort());
  });

  it('--json prints one object: the answer, the files written, the notices, the usage', async () => {
    const dir = await folder('json');
    await writeFile(join(dir, 'movie.mp4'), 'not a movie');
    openai.script.push({ code: 'x = 1', images: [{ filename: 'revenue.png', data: PNG }], files: [{ filename: 'totals.csv', data: 'region,total\nNorth,1\n' }], text: 'Two regions.' });
    const result = await run(['ask', '--json', '-f', SALES, '-f', 'movie.mp4', 'what is in it?'], '', {}, dir);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as {
      kind: string;
      answer: string;
      notices: string[];
      folder: string;
      files: { path: string; name: string; kind: string; mimeType: string }[];
      failed: unknown[];
      usage: unknown;
    };
    expect(json).toMatchObject({ kind: 'answer', answer: 'Two regions.', failed: [], usage: { model: 'gpt-4.1', inputTokens: expect.any(Number), outputTokens: expect.any(Number) } });
    expect(json.notices).toEqual([expect.stringMatching(/^\*\*movie\.mp4\*\* skipped: \.mp4 is not supported/)]);
    expect(json.files.map((f) => [f.name, f.kind, f.mimeType])).toEqual([
      ['revenue.png', 'image', 'image/png'],
      ['totals.csv', 'file', 'text/csv'],
      ['code.py', 'code', 'text/x-python'],
    ]);
    expect(await readFile(join(dir, json.files[1]!.path), 'utf8')).toBe('region,total\nNorth,1\n');
    expect(json.files.every((f) => f.path.startsWith(`${json.folder}/`))).toBe(true);
    // Nothing but the JSON on stdout; progress stays on stderr.
    expect(result.stderr).toContain('reading sales.xlsx…');
    expect(result.stderr).not.toContain('saved');
  });

  it('prints the receipt (CRUNCH_SHOW_COST) as small print on stderr, not with the answer', async () => {
    openai.script.push({ text: 'Four.' });
    const result = await run(['ask', 'what is 2 + 2?'], '', { CRUNCH_SHOW_COST: 'true' });
    expect(result.stdout).toBe('Four.\n');
    expect(withoutProgress(result.stderr)).toMatch(/^\d[\d,]* tokens/m);
  });

  it('makes odd and hostile names safe, and saves the other files when one fails', async () => {
    const dir = await folder('names');
    const long = `${'a'.repeat(300)}.csv`;
    const wide = `${'数据'.repeat(100)}.csv`;
    const hostile = ['..', '.', long, wide, 'CON', '\u001b[31mred\u001b[0m.csv', '.bashrc', 'same.csv', 'same.csv'];
    openai.script.push({
      code: 'write()',
      files: [...hostile.map((filename, i) => ({ filename, data: `file ${i}` })), { filename: 'lost.csv', data: 'gone', gone: true }],
      text: 'Files made.',
    });
    const result = await run(['ask', '--json', 'make files'], '', {}, dir);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { folder: string; files: { path: string; name: string }[]; failed: { name: string; error: string }[] };
    expect(json.failed).toEqual([{ name: 'lost.csv', error: expect.stringContaining('no longer available') }]);
    const saved = json.files.filter((f) => f.name !== 'code.py');
    expect(saved).toHaveLength(hostile.length);
    const names = await readdir(join(dir, json.folder));
    expect(names).toHaveLength(hostile.length + 1);
    for (const name of names) {
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(240);
      expect(name).not.toMatch(CONTROL);
      expect(name).not.toMatch(/^\.|[/\\]|^(con|prn|aux|nul)(\..*)?$/i);
    }
    // Every file holds what the code wrote, in a file of its own inside the answer's folder.
    const contents = await Promise.all(saved.map((f) => readFile(join(dir, f.path), 'utf8')));
    expect(contents.sort()).toEqual(hostile.map((_n, i) => `file ${i}`).sort());
    expect(names).toEqual(expect.arrayContaining(['red.csv', 'same.csv', 'same-2.csv', 'bashrc']));
    expect(await readdir(join(dir, 'crunch-out'))).toHaveLength(1);
  });

  it('strips terminal control characters from what the model wrote and from file names', async () => {
    const dir = await folder('escapes');
    openai.script.push({
      code: 'x()',
      files: [{ filename: 'evil\u001b]0;owned\u0007\u009b2J.csv', data: 'x' }],
      text: 'Clean \u001b[2J\u001b]0;pwned\u0007text\u0008\u009b31m with a tab\tand a bell\u0007.',
    });
    const result = await run(['ask', 'hi'], '', {}, dir);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Clean text with a tab\tand a bell.\n');
    expect(result.stderr).not.toMatch(CONTROL);
    expect(result.stderr).toMatch(/saved crunch-out\/.*\/evil\.csv/);
  });

  it('reads the question from stdin, when piped or given as -', async () => {
    openai.script.push({ text: 'Piped.' }, { text: 'Dash.' });
    const piped = await run(['ask', '-f', SALES], 'what is in the piped file?\n');
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe('Piped.\n');
    const dash = await run(['ask', '-'], 'a question from a dash');
    expect(dash.stdout).toBe('Dash.\n');
    expect(requestsText()).toContain('what is in the piped file?');
    expect(requestsText()).toContain('a question from a dash');

    const none = await run(['ask'], '');
    expect(none.code).toBe(2);
    expect(none.stderr).toBe('crunch ask needs a question, or a file to look at.\nRun `crunch ask --help` for the options.\n');
  });

  it('tells an error on stderr in one friendly line, with nothing on stdout and no stack trace', async () => {
    const refused = await run(['ask', 'hi'], '', { OPENAI_API_KEY: 'sk-wrong-key' });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(withoutProgress(refused.stderr)).toBe(
      'The AI service refused my credentials, so I cannot answer right now. An admin should check the API key (OPENAI_API_KEY or AZURE_OPENAI_API_KEY).\nRun `crunch doctor` to check the configuration.\n',
    );

    const asJson = await run(['ask', '--json', 'hi'], '', { OPENAI_API_KEY: 'sk-wrong-key' });
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ kind: 'error', error: { code: 'engine_auth' } });
    expect(asJson.stderr).toContain('refused my credentials');

    const missing = await run(['ask', '--file', 'nowhere.csv', 'hi']);
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'No such file: nowhere.csv\n' });

    // A failure the CLI did not foresee: one line, and the details only with --verbose.
    const blocker = join(work, 'not-a-folder');
    await writeFile(blocker, '');
    const store = { STORE_URL: `sqlite://${join(blocker, 'crunch.sqlite')}` };
    const broken = await run(['ask', 'hi'], '', store);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toBe('');
    expect(broken.stderr.trim().split('\n')).toHaveLength(2);
    expect(broken.stderr).toMatch(/^crunch: .*\n\(run the command again with --verbose for the details\)\n$/);
    expect(broken.stderr).not.toMatch(/\n\s+at |"level"/);
    const verbose = await run(['ask', '--verbose', 'hi'], '', store);
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });

  it('names every bad variable at start-up, and where it looked for them', async () => {
    const result = await run(['ask', 'hi'], '', { OPENAI_API_KEY: '', PORT: 'x', STORE_URL: 'ftp://nope' });
    expect(result.code).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Invalid configuration:\n {2}- PORT: .*\n {2}- STORE_URL: must start with sqlite:\/\//);
    expect(result.stderr).toContain(`Settings were read from the environment, then ${join(work, '.env')} (not found), ${join(root, '.env')}`);
    expect(result.stderr).toContain(`${join(home, '.config/crunch/.env')} (not found)`);
  });
});

describe('crunch chat', () => {
  it('keeps one conversation across prompts and attaches files with /file', async () => {
    const input = [`/file ${SALES}`, 'what is in it?', 'and the total?', ''].join('\n');
    openai.script.push({ text: 'Monthly revenue for two regions.' }, { text: 'The total is 363,000.' });
    const result = await run(['chat'], input);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Monthly revenue for two regions.\nThe total is 363,000.\n');
    const bodies = openai.requests.filter((r) => r.endpoint === '/responses').map((r) => r.body as { conversation: string });
    expect(bodies).toHaveLength(2);
    expect(bodies[0]!.conversation).toBe(bodies[1]!.conversation);
    expect([...openai.files.values()].map((f) => f.filename)).toEqual(['sales.xlsx']);
  });

  it('answers help in its own words: no thread to reply in', async () => {
    const result = await run(['chat'], 'help\n');
    expect(result.stdout).toContain('ask again in `crunch chat` to follow up');
    expect(result.stdout).not.toContain('reply in the thread');
    expect(result.stdout).toContain('**Files:**');
  });
});

describe('crunch help, --help and --version', () => {
  it('prints the version of the package', async () => {
    const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(await run(['--version'])).toEqual({ code: 0, stdout: `crunch ${version}\n`, stderr: '' });
  });

  it('prints usage, and each command its own', async () => {
    const usage = await run(['help']);
    expect(usage.stdout).toMatch(/^ {2}ask +ask one question/m);
    const ask = await run(['ask', '--help']);
    expect(ask.code).toBe(0);
    expect(ask.stdout).toMatch(/^Usage: crunch ask /);
    expect(ask.stdout).toContain('--json');
    expect((await run(['help', 'serve'])).stdout).toMatch(/^Usage: crunch serve/);
    // --help needs no configuration at all.
    expect((await runCli(['chat', '--help'], { cwd: work, env: { HOME: home } })).stdout).toContain('--session NAME');

    const unknown = await run(['frobnicate']);
    expect(unknown).toEqual({ code: 2, stdout: '', stderr: 'Unknown command: frobnicate\nRun `crunch help` for the options.\n' });
    const option = await run(['ask', '--jsn', 'x']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Unknown option '--jsn'");
  });
});

describe('crunch ask on a terminal', () => {
  it('streams the answer rendered for the terminal, with a spinner and the time so far', async () => {
    const slow = await startFakeOpenAI({ streamIntervalMs: 30 });
    try {
      slow.script.push({
        code: 'plot()',
        delayMs: 500,
        text: 'The revenue **rises** every month.\n\nA second paragraph \u001b]0;pwned\u0007with `code`.\n\n- one **bold item**\n- two',
      });
      const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
      const command = [process.execPath, CLI, 'ask', 'how is revenue?'].map(quote).join(' ');
      // `script` gives the CLI a terminal (a pty) and prints what the terminal received.
      const tty = await runProcess('script', ['-qfec', command, '/dev/null'], {
        cwd: await folder('tty'),
        env: { HOME: home, TERM: 'xterm-256color', OPENAI_API_KEY: slow.apiKey, OPENAI_BASE_URL: `${slow.url}/v1`, STORE_URL: 'memory://' },
      });
      expect(tty.code).toBe(0);
      const screen = tty.stdout;
      // Rendered: bold and code as terminal styles, not as markdown.
      expect(screen).toContain('\u001b[1mrises\u001b[22m');
      expect(screen).not.toContain('**rises**');
      expect(screen).toContain('\u001b[1mbold item\u001b[22m');
      // Streamed: the first paragraph was on the screen before the results were collected.
      expect(screen.indexOf('every month')).toBeGreaterThan(-1);
      expect(screen.indexOf('every month')).toBeLessThan(screen.indexOf('collecting results'));
      // The spinner showed the status and the time so far.
      expect(screen).toMatch(/running code… \ds/);
      // What the model wrote cannot set the terminal's title.
      expect(screen).not.toContain('pwned');
      expect(slow.violations).toEqual([]);
    } finally {
      await slow.close();
    }
  });
});

describe('crunch serve', () => {
  it('answers /healthz and /readyz and shuts down cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve'], { cwd: work, env: { PATH: process.env.PATH ?? '', ...env({ PORT: String(port), STORE_URL: `sqlite://${join(work, 'serve.sqlite')}` }) } });
    let logs = '';
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await expect.poll(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status, { timeout: 15_000 }).toBe(200);
    expect(logs).toContain('crunch is up');
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    // No MicrosoftAppId and no TEAMS_AUTH=off: there is no unauthenticated Teams endpoint to reach.
    expect((await fetch(`http://127.0.0.1:${port}/api/messages`, { method: 'POST', body: '{}' })).status).toBe(404);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('names a refused OpenAI key at start-up, keeps serving, and is not ready', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', ...env({ PORT: String(port), OPENAI_API_KEY: 'sk-wrong-key', STORE_URL: `sqlite://${join(work, 'refused.sqlite')}` }) },
    });
    let logs = '';
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await expect.poll(() => logs, { timeout: 15_000 }).toContain('crunch is up');
      const line = logs.split('\n').find((l) => l.includes('refused the API key'));
      expect(JSON.parse(line!)).toMatchObject({ level: 50, msg: expect.stringContaining('OpenAI refused the API key (401 invalid_api_key)') });
      expect(line).toContain('set OPENAI_API_KEY to a valid key');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not_ready', reason: expect.stringContaining('refused the API key') });
      expect(logs).not.toContain('sk-wrong-key');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('says what to fix and exits when Slack refuses the token', async () => {
    const { startFakeSlack } = await import('../fakes/slack.js');
    const slack = await startFakeSlack();
    try {
      const result = await run(['serve'], '', { PORT: String(await freePort()), SLACK_BOT_TOKEN: 'xoxb-not-a-real-token', SLACK_SIGNING_SECRET: 'secret', SLACK_API_URL: `${slack.url}/api/` });
      expect(result.code).toBe(78);
      expect(result.stderr).toMatch(/Slack rejected SLACK_BOT_TOKEN \(invalid_auth\)/);
    } finally {
      await slack.close();
    }
  });
});
