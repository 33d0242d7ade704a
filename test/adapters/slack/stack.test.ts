import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageText } from '../../fakes/slack.js';
import { type Stack, startStack } from '../../support/stack.js';
import { fixture, type Harness, sampleFile, startHarness } from './harness.js';

const CHANNEL = 'C0DATA0001';
const MENTION_TS = '1715000000.000100';
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** End to end: the Slack adapter over the fake Slack, the real core and responses engine over the fake OpenAI. */
describe('Slack end to end, with the responses engine', () => {
  let stack: Stack;
  let h: Harness;
  beforeEach(async () => {
    stack = await startStack();
    h = await startHarness({}, { core: stack.crunch.core, store: stack.crunch.store, logs: stack.logs });
  });
  afterEach(async () => {
    await h.close();
    await stack.close();
  });

  it('answers a mention with an xlsx: the file reaches the model, the answer and its chart reach the thread', async () => {
    h.fake.hostFile({ id: 'F0SALES001', name: 'sales.xlsx', mimetype: XLSX, bytes: sampleFile('sales.xlsx') });
    stack.openai.script.push({
      code: 'import pandas as pd\ndf = pd.read_excel("/mnt/data/sales.xlsx")\ndf.plot()',
      logs: 'shape (12, 3)',
      text: 'Revenue peaked in **March** (1,200).\n\n![Revenue by month](sandbox:/mnt/data/revenue_by_month.png)',
      images: [{ filename: 'revenue_by_month.png', data: sampleFile('revenue.png') }],
    });
    expect((await h.deliver(fixture('app_mention_with_file', h.fake))).status).toBe(200);
    await h.settle();

    expect([...stack.openai.files.values()].map((f) => f.filename)).toContain('sales.xlsx');
    // The streamed message is the answer (Slack renders its markdown); the chart link the model wrote is gone.
    expect(h.fake.thread(CHANNEL, MENTION_TS).map((m) => m.text.trim())).toEqual(['Revenue peaked in **March** (1,200).']);
    const uploads = h.fake.threadUploads(CHANNEL, MENTION_TS);
    expect(uploads.map((u) => [u.filename, u.title])).toEqual([
      ['revenue_by_month.png', 'Revenue by month'],
      ['code.py', 'The code behind this answer'],
    ]);
    expect(uploads[0]!.bytes.equals(sampleFile('revenue.png'))).toBe(true);
    expect(uploads[1]!.bytes.toString()).toContain('pd.read_excel');
    stack.expectSpecClean();
  });

  it('answers a math question in a DM', async () => {
    stack.openai.script.push({ code: 'from sympy import *\nx = symbols("x")\nprint(solve(3*x + 11 - 14, x))', logs: '[1]', text: '**x = 1**' });
    await h.deliver(fixture('message_im', h.fake));
    await h.settle();
    expect(h.fake.thread('D0ALICE001', '1715000100.000200').map(messageText)).toEqual(['*x = 1*']);
    stack.expectSpecClean();
  });

  it('continues the same conversation for a follow-up in the thread, without a new mention', async () => {
    h.fake.hostFile({ id: 'F0SALES001', name: 'sales.xlsx', mimetype: XLSX, bytes: sampleFile('sales.xlsx') });
    stack.openai.script.push({ text: 'First answer.' }, { text: 'By region: North leads.' });
    await h.deliver(fixture('app_mention_with_file', h.fake));
    await h.settle();
    await h.deliver(fixture('message_thread_reply', h.fake));
    await h.settle();

    expect(h.fake.thread(CHANNEL, MENTION_TS).map(messageText)).toEqual(['First answer.', 'By region: North leads.']);
    const conversations = stack.openai.requests
      .filter((r) => r.method === 'POST' && r.endpoint === '/responses')
      .map((r) => (r.body as { conversation?: unknown }).conversation);
    expect(conversations).toHaveLength(2);
    expect(conversations[1]).toEqual(conversations[0]);
    expect(stack.openai.conversations.size).toBe(1);
    stack.expectSpecClean();
  });
});
