import { execFile } from 'node:child_process';
import { chmod, cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ran, runCli } from '../../cli/harness.js';
import { type FakeChat, startFakeChat } from '../../fakes/chat-completions.js';

/**
 * `CRUNCH_ENGINE=local crunch ask --file sales.xlsx "plot revenue by month"` as a user runs it: the compiled
 * CLI in a child process, its model the fake chat server, its Python real and sandboxed. Compiled into a
 * folder of its own (as `npm run build` does, the Python scripts included) so it never races the other CLI tests.
 */
const root = fileURLToPath(new URL('../../..', import.meta.url));
const out = join(root, 'node_modules', '.cache', 'crunch-local-cli');
const bin = join(out, 'src/cli/main.js');
const SALES = join(root, 'test/fixtures/files/sales.xlsx');
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let chat: FakeChat;
let work: string;

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out], { cwd: root });
  await cp(join(root, 'src/engines/local/python'), join(out, 'src/engines/local/python'), { recursive: true });
  chat = await startFakeChat();
  work = await mkdtemp(join(tmpdir(), 'crunch-cli-local-'));
  await chmod(work, 0o711);
}, 120_000);
afterAll(async () => {
  await chat.close();
  await rm(work, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return runCli(args, {
    cwd: work,
    script: bin,
    env: { CRUNCH_ENGINE: 'local', OPENAI_API_KEY: chat.apiKey, OPENAI_BASE_URL: `${chat.url}/v1`, CRUNCH_MODEL: 'qwen2.5-coder', STORE_URL: `sqlite://${join(work, 'crunch.sqlite')}`, ...env },
  });
}

describe('crunch CLI with CRUNCH_ENGINE=local', () => {
  it('ask --file sales.xlsx "plot revenue by month" writes the chart the sandboxed code drew', { timeout: 60_000 }, async () => {
    const code = [
      'import pandas as pd',
      'import matplotlib.pyplot as plt',
      "df = pd.read_excel('/mnt/data/sales.xlsx')",
      "ax = df.groupby('month')['revenue'].sum().plot(marker='o', title='Revenue by month')",
      "ax.set_ylabel('revenue')",
      "plt.savefig('/mnt/data/revenue_by_month.png', dpi=150, bbox_inches='tight')",
      "print(df['revenue'].sum())",
    ].join('\n');
    chat.script.push({ python: code }, (request) => ({ text: `Total revenue: ${/Output:\n(\d+)/.exec(request.toolResults[0] ?? '')?.[1]}. The chart is attached.` }));
    const result = await run(['ask', '--file', SALES, 'plot revenue by month']);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain('reading sales.xlsx…');
    expect(result.stderr).toContain('running Python…');
    const total = (await promisify(execFile)('/usr/bin/python3', ['-c', `import pandas as pd; print(pd.read_excel('${SALES}')['revenue'].sum())`])).stdout.trim();
    expect(result.stdout).toBe(`Total revenue: ${total}. The chart is attached.\n`);
    // The answer's own folder under crunch-out/.
    const [answer] = await readdir(join(work, 'crunch-out'));
    const chart = await readFile(join(work, 'crunch-out', answer!, 'revenue_by_month.png'));
    expect(chart.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    expect(chart.length).toBeGreaterThan(10_000);
    expect(await readFile(join(work, 'crunch-out', answer!, 'code.py'), 'utf8')).toContain("pd.read_excel('/mnt/data/sales.xlsx')");
    expect(chat.requests[0]!.body).toMatchObject({ model: 'qwen2.5-coder', stream: true });
    expect(chat.violations).toEqual([]);
  });

  it('refuses to start, saying why, when the sandbox cannot reach its sessions folder', { timeout: 60_000 }, async () => {
    const hidden = await mkdtemp(join(tmpdir(), 'crunch-cli-private-'));
    try {
      const result = await run(['ask', 'hi'], { CRUNCH_SESSIONS_DIR: join(hidden, 'sessions') });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/The bubblewrap sandbox cannot start here .*and the local engine will not run Python unconfined/);
      expect(chat.requests.filter((r) => r.userText === 'hi')).toEqual([]);
    } finally {
      await rm(hidden, { recursive: true, force: true });
    }
  });
});
