import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai.js';
import { buildCli } from '../support/processes.js';
import { emptyHome, runCli } from './harness.js';

/** `crunch usage` sums what ran, read from the store's usage log, as an admin runs it. */
let openai: FakeOpenAI;
let work: string;
let home: string;

beforeAll(async () => {
  await buildCli();
  openai = await startFakeOpenAI();
  work = await mkdtemp(join(tmpdir(), 'crunch-usage-'));
  home = await emptyHome();
}, 120_000);
afterAll(async () => {
  await openai.close();
  await rm(work, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  HOME: home,
  OPENAI_API_KEY: openai.apiKey,
  OPENAI_BASE_URL: `${openai.url}/v1`,
  STORE_URL: `sqlite://${join(work, 'crunch.sqlite')}`,
  ...extra,
});

describe('crunch usage', () => {
  it('says so when nothing ran, then sums the turns, tokens, sandboxes and cost of what did', async () => {
    const empty = await runCli(['usage'], { cwd: work, env: env() });
    expect(empty).toMatchObject({ code: 0, stdout: 'No answers in the last 30d.\n' });

    for (const question of ['what is 2 + 2?', 'and 3 + 3?']) {
      openai.script.push({ text: 'Done.' });
      expect((await runCli(['ask', question], { cwd: work, env: env({ CRUNCH_SHOW_COST: 'true' }) })).code).toBe(0);
    }
    const responses = [...openai.responses.values()].map((r) => (r.response as { usage: { input_tokens: number; output_tokens: number } }).usage);
    const input = responses.reduce((n, u) => n + u.input_tokens, 0);
    const output = responses.reduce((n, u) => n + u.output_tokens, 0);

    // The model key is not needed to read the log.
    const json = await runCli(['usage', '--since', '1h', '--json'], { cwd: work, env: { HOME: home, STORE_URL: env().STORE_URL } });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { by: string; rows: Record<string, unknown>[]; total: Record<string, number> };
    expect(report.by).toBe('user');
    // Each `crunch ask` is a conversation of its own: two sandboxes.
    expect(report.rows).toEqual([
      expect.objectContaining({ platform: 'cli', workspace: 'local', id: 'local', turns: 2, inputTokens: input, outputTokens: output, sandboxSessions: 2, unpriced: 0 }),
    ]);
    const cost = (input * 2 + output * 8) / 1e6 + 2 * 0.03;
    expect(report.total.costUsd).toBeCloseTo(cost, 10);

    const table = await runCli(['usage', '--by', 'channel'], { cwd: work, env: env() });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('Usage in the last 30d, by channel');
    expect(table.stdout).toMatch(/│ cli\s+│ local\s+│ ask\s+│\s+2 │/);
    expect(table.stdout).toMatch(/│ total\s+│/);

    const future = await runCli(['usage', '--since', 'forever'], { cwd: work, env: env() });
    expect(future.code).toBe(2);
    expect(future.stderr).toContain('--since must be a duration like 7d, 12h or 30m, not "forever"');
    expect(future.stdout).toBe('');
  });
});
