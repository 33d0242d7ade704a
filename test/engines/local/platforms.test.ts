import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeChat, startFakeChat } from '../../fakes/chat-completions.js';
import { fixture, type Harness, startHarness } from '../../adapters/slack/harness.js';
import { shownCards, shownTexts, startStack as startTeamsStack, type Stack as TeamsStack } from '../../adapters/teams/harness.js';
import { type Stack, startStack } from '../../support/stack.js';

/**
 * CRUNCH_ENGINE=local from Slack and from Teams: a person sends sales.xlsx, the (fake) model writes pandas and
 * matplotlib code, the code runs for real in the bubblewrap sandbox, and the chart it drew reaches the chat.
 */
const root = join(import.meta.dirname, '../../..');
const SALES = join(root, 'test/fixtures/files/sales.xlsx');
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PLOT = [
  'import pandas as pd',
  'import matplotlib.pyplot as plt',
  "df = pd.read_excel('/mnt/data/sales.xlsx')",
  "df.groupby('month')['revenue'].sum().plot(marker='o', title='Revenue by month')",
  "plt.savefig('/mnt/data/revenue_by_month.png', dpi=100, bbox_inches='tight')",
  "print(int(df['revenue'].sum()))",
].join('\n');

let chat: FakeChat | undefined;
let dir: string | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await chat?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  chat = dir = undefined;
});

async function localEnv(): Promise<Record<string, string>> {
  chat = await startFakeChat();
  dir = await mkdtemp(join(tmpdir(), 'crunch-local-platforms-'));
  await chmod(dir, 0o711);
  chat.script.push({ python: PLOT }, (request) => ({ text: `Total revenue: ${/Output:\n(\d+)/.exec(request.toolResults[0] ?? '')?.[1]}.` }));
  return { CRUNCH_ENGINE: 'local', OPENAI_API_KEY: chat.apiKey, OPENAI_BASE_URL: `${chat.url}/v1`, CRUNCH_SESSIONS_DIR: join(dir, 'sessions'), CRUNCH_POOL_SIZE: '0' };
}

/** Every element of an Adaptive Card, nested ones included. */
function elements(node: unknown): Record<string, unknown>[] {
  if (Array.isArray(node)) return node.flatMap(elements);
  if (typeof node !== 'object' || node === null) return [];
  const record = node as Record<string, unknown>;
  return [record, ...Object.values(record).flatMap(elements)];
}

describe('the local engine from the chat platforms', { timeout: 60_000 }, () => {
  it('Slack: a mention with sales.xlsx gets the total and the chart the sandboxed code drew, in the thread', async () => {
    const env = await localEnv();
    const stack: Stack = await startStack(env);
    closers.push(() => stack.close());
    const h: Harness = await startHarness({}, { core: stack.crunch.core, store: stack.crunch.store, logs: stack.logs });
    closers.push(() => h.close());
    h.fake.hostFile({ id: 'F0SALES001', name: 'sales.xlsx', mimetype: XLSX, bytes: await readFile(SALES) });
    expect((await h.deliver(fixture('app_mention_with_file', h.fake))).status).toBe(200);
    await h.settle();

    expect(h.fake.thread('C0DATA0001', '1715000000.000100').map((m) => m.text.trim())).toEqual([expect.stringMatching(/^Total revenue: \d+\.$/)]);
    const uploads = h.fake.threadUploads('C0DATA0001', '1715000000.000100');
    expect(uploads.map((u) => u.filename)).toEqual(['revenue_by_month.png', 'code.py']);
    expect(uploads[0]!.bytes.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    expect(uploads[0]!.bytes.length).toBeGreaterThan(5_000);
    expect(chat!.violations).toEqual([]);
  });

  it('Teams: a personal-chat file gets the total and the chart, inline', async () => {
    const env = await localEnv();
    const s: TeamsStack = await startTeamsStack({ crunchEnv: env });
    closers.push(() => s.close());
    await s.ask(s.fixture('personal-file', { downloadUrl: s.fake.hostDownload(await readFile(SALES)) }));

    expect(shownTexts(s.fake)).toEqual([expect.stringMatching(/^Total revenue: \d+\./)]);
    const images = shownCards(s.fake).flatMap((card) => elements(card).filter((e) => e['type'] === 'Image')) as unknown as { url: string }[];
    expect(images).toHaveLength(1);
    const png = images[0]!.url.startsWith('data:image/png;base64,')
      ? Buffer.from(images[0]!.url.slice('data:image/png;base64,'.length), 'base64')
      : Buffer.from(await (await fetch(images[0]!.url)).arrayBuffer());
    expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
    expect(chat!.violations).toEqual([]);
  });
});
