import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSlackAdapter } from '../../../adapters/slack/index.js';
import { CrunchError } from '../../../src/core/index.js';
import { messageText, startFakeSlack } from '../../fakes/slack.js';
import { type Stack, startStack } from '../../support/stack.js';
import { fixture, type Harness, sampleFile, startHarness } from './harness.js';
import { fakeDeps } from '../../support/deps.js';

const CHANNEL = 'C0DATA0001';
const MENTION_TS = '1715000000.000100';
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/**
 * Socket Mode end to end: the adapter opens its connection through SLACK_API_URL (apps.connections.open with the
 * app-level token) to the fake Slack's WebSocket, which delivers `events_api` envelopes and asks for refreshes;
 * the real core and responses engine answer over the fake OpenAI.
 */
describe('Slack end to end over Socket Mode, with the responses engine', () => {
  let stack: Stack;
  let h: Harness;
  beforeEach(async () => {
    stack = await startStack();
    h = await startHarness(
      // The ping timeout is also the SDK's delay before reconnecting after a refresh: shorter than the 5 s default,
      // yet well above this process's longest event-loop stalls (~400 ms), which would drop the connection. If one
      // does, the fake sends unacknowledged envelopes again and the assertions below still hold.
      (fake) => ({ appToken: fake.appToken, signingSecret: undefined, socketPingTimeoutMs: 1000 }),
      { core: stack.crunch.core, store: stack.crunch.store, logs: stack.logs },
    );
  });
  afterEach(async () => {
    await h.close();
    await stack.close();
  });

  const answers = () => h.fake.thread(CHANNEL, MENTION_TS).map((m) => messageText(m).trim());
  const responsesCreated = () => stack.openai.requests.filter((r) => r.method === 'POST' && r.endpoint === '/responses');

  it('answers over the socket: acks first, one answer despite a redelivery, and still answers after a refresh', async () => {
    // start() connected with the app-level token and was greeted; no HTTP route is served.
    expect(h.adapter.mode).toBe('socket');
    expect(h.adapter.routes).toEqual([]);
    expect(h.fake.callsTo('apps.connections.open').map((c) => c.error)).toEqual([undefined]);
    const first = await h.fake.socket.waitForConnection();

    h.fake.hostFile({ id: 'F0SALES001', name: 'sales.xlsx', mimetype: XLSX, bytes: sampleFile('sales.xlsx') });
    stack.openai.script.push(
      {
        code: 'import pandas as pd\ndf = pd.read_excel("/mnt/data/sales.xlsx")\ndf.plot()',
        logs: 'shape (12, 3)',
        text: 'Revenue peaked in **March** (1,200).\n\n![Revenue by month](sandbox:/mnt/data/revenue_by_month.png)',
        images: [{ filename: 'revenue_by_month.png', data: sampleFile('revenue.png') }],
      },
      { text: 'By region: North leads.' },
    );
    const mention = fixture('app_mention_with_file', h.fake);
    const ack = await h.fake.socket.deliver(mention);
    // The SDK acks with the envelope id and an empty payload (events_api takes no response payload).
    expect(ack).toMatchObject({ payload: {} });
    expect(ack.connection).toBeGreaterThanOrEqual(first.id);
    await h.settle();

    expect([...stack.openai.files.values()].map((f) => f.filename)).toContain('sales.xlsx');
    expect(answers()).toEqual(['Revenue peaked in **March** (1,200).']);
    const uploads = () => h.fake.threadUploads(CHANNEL, MENTION_TS).map((u) => [u.filename, u.title]);
    expect(uploads()).toEqual([
      ['revenue_by_month.png', 'Revenue by month'],
      ['code.py', 'The code behind this answer'],
    ]);
    expect(h.fake.threadUploads(CHANNEL, MENTION_TS)[0]!.bytes.equals(sampleFile('revenue.png'))).toBe(true);

    // Slack redelivers the same event (retry_attempt 1): acknowledged again, answered no second time.
    const retried = await h.fake.socket.deliver(mention, { retryAttempt: 1, retryReason: 'timeout' });
    await h.settle();
    expect(retried.envelope_id).not.toBe(ack.envelope_id);
    expect(answers()).toEqual(['Revenue peaked in **March** (1,200).']);
    expect(uploads()).toHaveLength(2);
    expect(responsesCreated()).toHaveLength(1);

    // Slack asks for a refresh: the app closes that connection normally, opens a new one with a new ticket.
    const opensBefore = h.fake.callsTo('apps.connections.open').length;
    const refreshed = await h.fake.socket.disconnect('refresh_requested');
    expect(refreshed.closeCode).toBe(1000);
    const next = await h.fake.socket.waitForConnection(refreshed.id);
    expect(next.ticket).not.toBe(refreshed.ticket);
    expect(h.fake.callsTo('apps.connections.open').length).toBeGreaterThan(opensBefore);
    expect(h.logs().some((l) => l['msg'] === 'Socket Mode: reconnecting (Slack refreshed or dropped the connection)')).toBe(true);

    // …and a follow-up in the thread, delivered on the new connection, continues the conversation.
    const followUp = await h.fake.socket.deliver(fixture('message_thread_reply', h.fake));
    expect(followUp.connection).toBeGreaterThan(refreshed.id);
    await h.settle();
    expect(answers()).toEqual(['Revenue peaked in **March** (1,200).', 'By region: North leads.']);
    const conversations = responsesCreated().map((r) => (r.body as { conversation?: unknown }).conversation);
    expect(conversations).toHaveLength(2);
    expect(conversations[1]).toEqual(conversations[0]);

    // stop() closes the socket with a normal close, and nothing reconnects. (The fake sees the close once the
    // TCP connection has ended, a moment after the client's closing handshake completes.)
    await h.adapter.stop();
    await expect.poll(() => h.fake.socket.connections.filter((c) => c.open)).toEqual([]);
    expect(h.fake.socket.connections.at(-1)!.closeCode).toBe(1000);
    stack.expectSpecClean();
  });
});

describe('Socket Mode start-up', () => {
  it('fails with a message naming SLACK_APP_TOKEN when Slack rejects the app-level token', async () => {
    const fake = await startFakeSlack();
    const { store, logger, core } = await fakeDeps();
    const adapter = createSlackAdapter(
      { botToken: fake.botToken, signingSecret: undefined, appToken: 'xapp-1-A0CRUNCHAPP-1-revoked', apiUrl: fake.apiUrl },
      { core, store, logger },
    );
    try {
      const started = adapter.start();
      await expect(started).rejects.toBeInstanceOf(CrunchError);
      await expect(started).rejects.toThrow(/invalid_auth.*SLACK_APP_TOKEN/);
      expect(fake.callsTo('apps.connections.open').map((c) => c.error)).toEqual(['invalid_auth']);
      expect(fake.socket.connections).toEqual([]);
    } finally {
      await adapter.stop();
      await store.close();
      await fake.close();
    }
  });
});
