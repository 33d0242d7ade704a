import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ask, fileOf, fixture, lastToolResults, type LocalStack, readAll, startLocal } from './harness.js';

let stack: LocalStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** What the host's own Python (outside any sandbox) computes, to check the sandbox's answer against. */
async function hostPython(code: string): Promise<string> {
  return (await promisify(execFile)('/usr/bin/python3', ['-c', code])).stdout.trim();
}
const SALES = fileURLToPath(new URL('../../fixtures/files/sales.xlsx', import.meta.url));

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('local engine: Python in a sandbox driven by a chat model', () => {
  it('analyses an xlsx and returns a real matplotlib PNG, the code and its output', async () => {
    stack = await startLocal();
    stack.chat.script.push(
      {
        text: 'Let me look at the data.',
        python: [
          "import pandas as pd\ndf = pd.read_excel('sales.xlsx')\nmonthly = df.groupby('month')['revenue'].sum()\nprint(len(df), 'rows')\nmonthly.max()",
        ],
      },
      { python: "import matplotlib.pyplot as plt\nax = monthly.plot(title='Revenue by month')\n_ = ax.set_ylabel('revenue')" },
      (request) => ({ text: `Revenue peaks at ${/Result:\n(\d+)/.exec(request.messages.filter((m) => m['role'] === 'tool').map((m) => String(m['content'])).join('\n'))?.[1]}.` }),
    );
    const result = await ask(stack, 'plot revenue by month', { files: [fileOf('sales.xlsx', await fixture('sales.xlsx'))] });

    const [rows, peak] = (await hostPython(`import pandas as pd; df = pd.read_excel('${SALES}'); print(len(df), df.groupby('month')['revenue'].sum().max())`)).split(' ');
    expect(result.text).toBe(`Let me look at the data.\n\nRevenue peaks at ${peak}.`);
    expect(result.code).toEqual([
      { code: expect.stringContaining("pd.read_excel('sales.xlsx')"), output: `${rows} rows\n${peak}` },
      { code: expect.stringContaining("title='Revenue by month'") },
    ]);
    expect(result.outputs).toHaveLength(1);
    const [chart] = result.outputs;
    expect(chart).toMatchObject({ name: 'revenue_by_month.png', title: 'Revenue by month', mimeType: 'image/png' });
    const png = await readAll(await stack.engine.openOutput(chart!.ref));
    expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    expect(png.length).toBe(chart!.sizeBytes);

    const first = stack.chat.requests[0]!;
    expect(first.userText).toContain('(Files attached to this message, in /mnt/data: sales.xlsx)');
    expect(first.body).toMatchObject({ model: 'local-model', stream: true, tools: [{ type: 'function', function: { name: 'python' } }] });
    expect(lastToolResults(stack)[0]).toContain('Figures captured and attached to your answer: revenue_by_month.png');
    const statuses = result.progress.filter((p) => p.type === 'status').map((p) => p.text);
    expect(statuses).toEqual(expect.arrayContaining(['reading sales.xlsx…', 'thinking…', 'running Python…']));
    const streamed = result.progress.map((p) => (p.type === 'text' ? p.delta : '')).join('');
    expect(streamed).toBe(result.text);
  });
});
