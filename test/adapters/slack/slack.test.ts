import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.js';
import { contextTexts, type FakeMessage, messageText, signSlackRequest } from '../../fakes/slack.js';
import { fixture, type Harness, sampleFile, startHarness } from './harness.js';

const CHANNEL = 'C0DATA0001';
const MENTION_TS = '1715000000.000100';
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

type Payload = { event: Record<string, unknown> } & Record<string, unknown>;

describe('Slack adapter over the HTTP Events API', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  function hostSales(): void {
    h.fake.hostFile({ id: 'F0SALES001', name: 'sales.xlsx', mimetype: XLSX, bytes: sampleFile('sales.xlsx') });
  }
  const visible = (channel: string, thread: string): FakeMessage[] => h.fake.thread(channel, thread);
  const apiCallsBesidesAuth = () => h.fake.calls.filter((c) => c.method !== 'auth.test');

  it('answers the url_verification challenge', async () => {
    const payload = fixture('url_verification', h.fake);
    const res = await h.deliver(payload);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ challenge: payload['challenge'] });
  });

  it('rejects a forged or stale signature with 401 and posts nothing', async () => {
    hostSales();
    const payload = fixture<Payload>('app_mention_with_file', h.fake);
    const forged = await h.deliver(payload, { signature: signSlackRequest('not-the-secret', Math.floor(Date.now() / 1000), JSON.stringify(payload)) });
    const stale = await h.deliver(payload, { timestampSec: Math.floor(Date.now() / 1000) - 6 * 60 });
    const unsigned = await h.deliver(payload, { signature: '' });
    await h.settle();
    expect([forged.status, stale.status, unsigned.status]).toEqual([401, 401, 401]);
    expect(apiCallsBesidesAuth()).toEqual([]);
    expect(h.engine.calls).toEqual([]);
    expect(h.logs().filter((l) => l['msg'] === 'Slack request rejected: bad or stale signature')).toHaveLength(3);
  });

  it('answers a mention with an xlsx in its thread: status, text, the chart and the code', async () => {
    hostSales();
    let release!: () => void;
    h.engine.script.push({
      statuses: ['reading sales.xlsx…', 'running code…'],
      gate: new Promise<void>((r) => (release = r)),
      text: '**Revenue peaked in March** at 1,200 & fell in April.\n\n| Month | Revenue |\n|---|---:|\n| Mar | 1,200 |\n| Apr | 900 |',
      outputs: [{ title: 'Revenue by month', name: 'revenue.png', data: sampleFile('revenue.png') }],
      code: [{ code: 'import pandas as pd\ndf = pd.read_excel("/mnt/data/sales.xlsx")', output: 'shape (12, 3)' }],
    });
    const res = await h.deliver(fixture('app_mention_with_file', h.fake));
    expect(res.status).toBe(200);
    await h.fake.waitFor(() => h.fake.statuses.some((s) => s.status === 'is running code…'), 'the engine status');
    release();
    await h.settle();

    expect(h.engine.calls).toHaveLength(1);
    expect(h.engine.calls[0]!.text).toBe('plot revenue by month and flag outliers');
    expect(h.engine.calls[0]!.files).toEqual([{ name: 'sales.xlsx', mimeType: expect.any(String), bytes: sampleFile('sales.xlsx') }]);

    const thread = visible(CHANNEL, MENTION_TS);
    expect(thread).toHaveLength(1);
    expect(thread[0]!.thread_ts).toBe(MENTION_TS);
    expect(messageText(thread[0]!)).toBe(
      '*Revenue peaked in March* at 1,200 &amp; fell in April.\n\n```\nMonth | Revenue\n------+--------\nMar   |   1,200\nApr   |     900\n```',
    );

    const uploads = h.fake.threadUploads(CHANNEL, MENTION_TS);
    expect(uploads.map((u) => [u.filename, u.title])).toEqual([
      ['revenue.png', 'Revenue by month'],
      ['code.py', 'The code behind this answer'],
    ]);
    expect(uploads[0]!.bytes.equals(sampleFile('revenue.png'))).toBe(true);
    expect(uploads[1]!.snippetType).toBe('python');
    expect(uploads[1]!.bytes.toString()).toBe('import pandas as pd\ndf = pd.read_excel("/mnt/data/sales.xlsx")\n\n# Output:\n# shape (12, 3)\n');

    const statuses = h.fake.statuses.filter((s) => s.thread_ts === MENTION_TS).map((s) => s.status);
    expect(statuses).toEqual(['is working on it…', 'is reading sales.xlsx…', 'is running code…']);
    // The reply cleared the status line: no call was spent on it.
    expect(h.fake.statusOf(CHANNEL, MENTION_TS)).toBe('');
  });

  it('answers a mention whose app_mention came first without its files, with the files its message twin brings', async () => {
    hostSales();
    h.engine.script.push({ text: 'Read it.' });
    const mention = fixture<Payload>('app_mention_with_file', h.fake);
    mention.event = { ...mention.event, files: undefined };
    expect((await h.deliver(mention)).status).toBe(200);
    expect((await h.deliver(fixture('message_channel_twin', h.fake))).status).toBe(200);
    await h.settle();
    expect(h.engine.calls.map((c) => c.files.map((f) => f.name))).toEqual([['sales.xlsx']]);
    expect(visible(CHANNEL, MENTION_TS).map(messageText)).toEqual(['Read it.']);
  });

  it('answers a mention once, despite its message twin and a retried delivery', async () => {
    hostSales();
    h.engine.script.push({ text: 'Done.' });
    const mention = fixture('app_mention_with_file', h.fake);
    const responses = await Promise.all([
      h.deliver(mention),
      h.deliver(fixture('message_channel_twin', h.fake)),
      h.deliver(mention, { retryNum: 1 }),
    ]);
    await h.settle();
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(h.engine.calls).toHaveLength(1);
    expect(visible(CHANNEL, MENTION_TS).map(messageText)).toEqual(['Done.']);
    expect(h.fake.callsTo('chat.postMessage')).toHaveLength(1);
  });

  it('takes a follow-up in its thread without a new mention, in the same conversation', async () => {
    hostSales();
    h.engine.script.push({ text: 'First answer.' }, { text: 'Split by region.' });
    await h.deliver(fixture('app_mention_with_file', h.fake));
    await h.settle();
    await h.deliver(fixture('message_thread_reply', h.fake));
    await h.settle();

    expect(h.engine.calls.map((r) => r.text)).toEqual(['plot revenue by month and flag outliers', 'now split it by region']);
    expect(h.engine.calls[0]!.session).toBeUndefined();
    expect(h.engine.calls[1]!.session?.contextId).toMatch(/^ctx-/);
    expect(visible(CHANNEL, MENTION_TS).map(messageText)).toEqual(['First answer.', 'Split by region.']);
  });

  it('ignores a reply in a thread it is not part of, edits, and other bots', async () => {
    const reply = fixture<Payload>('message_thread_reply', h.fake);
    reply.event['thread_ts'] = '1714999999.000900';
    const otherBot = fixture<Payload>('message_thread_reply', h.fake);
    otherBot.event = { ...otherBot.event, bot_id: 'B0OTHERBOT', subtype: 'bot_message', text: `<@${h.fake.botUserId}> hi` };
    const chatter = fixture<Payload>('message_thread_reply', h.fake);
    delete chatter.event['thread_ts'];
    for (const payload of [reply, fixture('message_changed', h.fake), otherBot, chatter]) expect((await h.deliver(payload)).status).toBe(200);
    await h.settle();
    expect(h.engine.calls).toEqual([]);
    expect(apiCallsBesidesAuth()).toEqual([]);
  });

  it('answers a direct message in a thread under it, converting the markdown', async () => {
    h.engine.script.push({ text: '**x = 1**, since `3x = 3`. See [SymPy](https://www.sympy.org/en/index.html?a=1&b=2).' });
    await h.deliver(fixture('message_im', h.fake));
    await h.settle();
    expect(h.engine.calls[0]!.text).toBe('solve 3x + 11 = 14 & check the result');
    const thread = visible('D0ALICE001', '1715000100.000200');
    expect(thread.map(messageText)).toEqual(['*x = 1*, since `3x = 3`. See <https://www.sympy.org/en/index.html?a=1&amp;b=2|SymPy>.']);
    expect(thread[0]!.thread_ts).toBe('1715000100.000200');
  });

  it('answers `help` from the core without running the engine, once its message twin says it has no files', async () => {
    const payload = fixture<Payload>('app_mention_with_file', h.fake);
    payload.event = { ...payload.event, text: `<@${h.fake.botUserId}>  help `, files: undefined };
    const twin = fixture<Payload>('message_channel_twin', h.fake);
    twin.event = { ...twin.event, text: `<@${h.fake.botUserId}>  help `, files: undefined, subtype: undefined };
    const started = Date.now();
    await h.deliver(payload);
    await h.deliver(twin);
    await h.settle();
    // The app_mention came first without files: it waited for its twin, which said there are none, and no longer.
    expect(Date.now() - started).toBeLessThan(1900);
    expect(h.engine.calls).toEqual([]);
    expect(messageText(visible(CHANNEL, MENTION_TS)[0]!)).toContain('Commands:');
  });

  it('explains an unsupported file', async () => {
    h.fake.hostFile({ id: 'F0EXE00001', name: 'tool.exe', mimetype: 'application/x-msdownload', bytes: Buffer.from('MZ...') });
    const payload = fixture<Payload>('app_mention_with_file', h.fake);
    payload.event = { ...payload.event, text: `<@${h.fake.botUserId}>`, files: [h.fake.hostFile({ id: 'F0EXE00001', name: 'tool.exe', mimetype: 'application/x-msdownload', bytes: Buffer.from('MZ...') })] };
    await h.deliver(payload);
    await h.settle();
    expect(h.engine.calls).toEqual([]);
    const [message] = visible(CHANNEL, MENTION_TS);
    expect(messageText(message!)).toBe('I could not use any of the files, so there is nothing to analyse yet.');
    expect(contextTexts(message!).join('\n')).toMatch(/^\*tool\.exe\* skipped: \.exe is not supported\. Supported types: .*csv.*xlsx/);
  });

  it('explains a missing files:read scope (Slack serves its sign-in page)', async () => {
    hostSales();
    h.fake.filesReadScope = false;
    h.engine.script.push({ text: 'I could not read the file.' });
    await h.deliver(fixture('app_mention_with_file', h.fake));
    await h.settle();
    expect(h.engine.calls[0]!.files).toEqual([]);
    const [message] = visible(CHANNEL, MENTION_TS);
    expect(messageText(message!)).toBe('I could not read the file.');
    expect(contextTexts(message!).join('\n')).toContain('reinstall the app with the files:read scope');
  });

  it('reads a Slack Connect file through files.info, and explains one it may not open', async () => {
    h.fake.hostFile({ id: 'F0CONNECT01', name: 'sales.xlsx', mimetype: XLSX, bytes: sampleFile('sales.xlsx') });
    const shared = fixture<Payload>('message_file_share_slack_connect', h.fake);
    await h.deliver(shared);
    await h.settle();
    expect(h.engine.calls[0]!.files).toEqual([{ name: 'sales.xlsx', mimeType: expect.any(String), bytes: sampleFile('sales.xlsx') }]);
    expect(h.fake.callsTo('files.info')).toHaveLength(1);

    const hidden = fixture<Payload>('message_file_share_slack_connect', h.fake);
    hidden.event = { ...hidden.event, ts: '1715000500.000600', files: [{ id: 'F0NOACCESS1', mode: 'file_access', file_access: 'check_file_info' }] };
    await h.deliver(hidden);
    await h.settle();
    const [message] = visible('C0SHARED01', '1715000500.000600');
    expect(contextTexts(message!).join('\n')).toContain('Slack did not let me open it (file_not_found)');
  });

  it('answers two messages of a thread in arrival order, the first one\'s chart before the second answer, though the first prepares slower', async () => {
    const SHARED = 'C0SHARED01';
    const ROOT = '1715000400.000500';
    h.fake.hostFile({ id: 'F0CONNECT01', name: 'sales.xlsx', mimetype: XLSX, bytes: sampleFile('sales.xlsx') });
    h.engine.script.push(
      { text: 'First answer.', outputs: [{ title: 'Revenue', name: 'revenue.png', data: sampleFile('revenue.png') }] },
      { text: 'Second answer.' },
    );
    // The first message carries a Slack Connect file (files.info before the turn); the second, a reply in the thread
    // without a mention, needs nothing but the thread check, so it would be ready first.
    const first = fixture<Payload>('message_file_share_slack_connect', h.fake);
    const second = fixture<Payload>('message_file_share_slack_connect', h.fake);
    second.event = { ...second.event, ts: '1715000401.000600', thread_ts: ROOT, parent_user_id: 'U0BOB00EXT', text: 'and by region?', subtype: undefined, files: undefined };
    const info = h.fake.hold({ method: 'files.info' });
    const upload = h.fake.hold({ method: 'upload' });
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    await h.deliver(first);
    await info.started;
    await h.deliver(second);
    // Time for the second message to overtake the first, were it handed to the core as soon as it was ready.
    await pause(300);
    info.release();
    await upload.started;
    // Time for the second answer to land between the first answer and its chart, were it not delivered in turn.
    await pause(300);
    upload.release();
    await h.settle();

    expect(h.engine.calls.map((r) => r.text)).toEqual(['what is in this file?', 'and by region?']);
    expect(h.engine.calls[0]!.files).toEqual([{ name: 'sales.xlsx', mimeType: expect.any(String), bytes: sampleFile('sales.xlsx') }]);
    expect(visible(SHARED, ROOT).map(messageText)).toEqual(['First answer.', 'Second answer.']);
    expect(h.fake.threadUploads(SHARED, ROOT).map((u) => u.filename)).toEqual(['revenue.png']);
    const chartShared = h.fake.calls.findIndex((c) => c.method === 'files.completeUploadExternal');
    const secondPosted = h.fake.calls.findIndex((c) => c.method === 'chat.postMessage' && c.params['text'] === 'Second answer.');
    expect(chartShared).toBeGreaterThan(-1);
    expect(secondPosted).toBeGreaterThan(chartShared);
  });

  it('survives a 429 from Slack: the answer is posted after Retry-After', async () => {
    h.engine.script.push({ text: 'x = 1' });
    const inThread = (p: Record<string, unknown>) => p['thread_ts'] !== undefined;
    h.fake.fail({ method: 'chat.postMessage', status: 429, retryAfterSec: 1, when: inThread });
    await h.deliver(fixture('message_im', h.fake));
    await h.settle();
    expect(h.fake.callsTo('chat.postMessage').filter((c) => inThread(c.params)).map((c) => c.status)).toEqual([429, 200]);
    expect(visible('D0ALICE001', '1715000100.000200').map(messageText)).toEqual(['x = 1']);
  });

  it('posts the text and the other chart when one chart upload fails, and says which', async () => {
    h.engine.script.push({
      text: 'Two charts.',
      outputs: [
        { title: 'Revenue', name: 'revenue.png', data: sampleFile('revenue.png') },
        { title: 'Costs', name: 'costs.png', data: sampleFile('revenue.png') },
      ],
    });
    h.fake.fail({ method: 'upload', status: 500, times: 10, when: (p) => p['filename'] === 'costs.png' });
    await h.deliver(fixture('message_im', h.fake));
    await h.settle();
    const thread = visible('D0ALICE001', '1715000100.000200');
    expect(thread.map(messageText)[0]).toBe('Two charts.');
    expect(h.fake.threadUploads('D0ALICE001', '1715000100.000200').map((u) => u.title)).toEqual(['Revenue']);
    expect(contextTexts(thread.at(-1)!).join('')).toContain('I could not upload *Costs*');
  });

  it('streams the answer as it is written, and ends the stream with the rest of it and the notices, without a rewrite', async () => {
    let release!: () => void;
    h.engine.script.push({
      deltas: ['**Hello', '** world'],
      text: '**Hello** world, final.',
      notices: ['**movie.mp4** skipped: not supported.'],
      gate: new Promise<void>((r) => (release = r)),
    });
    await h.deliver(fixture('app_mention_with_file', h.fake));
    await h.fake.waitFor(() => h.fake.messages.some((m) => m.kind === 'stream' && m.text.includes('world')), 'the streamed text');
    release();
    await h.settle();
    const thread = visible(CHANNEL, MENTION_TS);
    expect(thread).toHaveLength(1);
    expect(thread[0]!.kind).toBe('stream');
    expect(thread[0]!.streaming).toBe(false);
    expect(thread[0]!.history).toContain('**Hello** world');
    // Slack renders the stream's markdown; the final text needs no chat.update.
    expect(thread[0]!.text).toBe('**Hello** world, final.');
    // The mention's own file is not hosted here: its notice and the engine's ride on the stream's end.
    expect(contextTexts(thread[0]!)).toEqual(['*sales.xlsx* is no longer available in Slack (it may have been deleted).', '*movie.mp4* skipped: not supported.']);
    expect(h.fake.callsTo('chat.update')).toEqual([]);
    expect(h.fake.callsTo('chat.stopStream')[0]!.params).toMatchObject({ markdown_text: ', final.' });
    expect(h.fake.callsTo('chat.startStream')[0]!.params).toMatchObject({ recipient_user_id: 'U0ALICE001', recipient_team_id: 'T0CRUNCH01' });
  });

  it('falls back to a status message, replaced by the answer, where setStatus is unavailable', async () => {
    h.fake.fail({ method: 'assistant.threads.setStatus', error: 'missing_scope', times: 100 });
    let release!: () => void;
    h.engine.script.push({ statuses: ['running code…'], text: 'Answer.', gate: new Promise<void>((r) => (release = r)) });
    await h.deliver(fixture('message_im', h.fake));
    await h.fake.waitFor(() => h.fake.messages.some((m) => m.text.startsWith(':hourglass_flowing_sand:')), 'the status message');
    release();
    await h.settle();
    const thread = visible('D0ALICE001', '1715000100.000200');
    expect(thread.map(messageText)).toEqual(['Answer.']);
    expect(thread[0]!.history[0]).toMatch(/^:hourglass_flowing_sand: /);
  });

  it('attaches a very long answer as answer.md after its first part', async () => {
    const paragraph = 'The data shows a steady trend. '.repeat(80).trim();
    const text = Array.from({ length: 6 }, (_v, i) => `## Part ${i + 1}

${paragraph}`).join('\n\n');
    h.engine.script.push({ text });
    await h.deliver(fixture('message_im', h.fake));
    await h.settle();
    const thread = visible('D0ALICE001', '1715000100.000200');
    expect(thread).toHaveLength(2);
    expect(messageText(thread[0]!)).toMatch(/^\*Part 1\*/);
    expect(messageText(thread[1]!)).toContain('attached below as answer.md');
    const [answer] = h.fake.threadUploads('D0ALICE001', '1715000100.000200');
    expect(answer!.filename).toBe('answer.md');
    expect(answer!.bytes.toString()).toBe(text);
  });

  it('stops taking events once stopping: Slack gets a 503 and redelivers later', async () => {
    await h.adapter.stop();
    const res = await h.deliver(fixture('message_im', h.fake));
    expect(res.status).toBe(503);
    expect(h.engine.calls).toEqual([]);
  });
});

describe('Slack adapter with SLACK_ALLOWED_BOT_IDS', () => {
  let h: Harness;
  beforeEach(async () => {
    // Wired from the environment, as `crunch serve` does; Crunch's own bot id is listed too, to show it is ignored anyway.
    h = await startHarness(
      (fake) =>
        loadConfig({
          OPENAI_API_KEY: 'sk-test',
          SLACK_BOT_TOKEN: fake.botToken,
          SLACK_SIGNING_SECRET: fake.signingSecret,
          SLACK_API_URL: fake.apiUrl,
          SLACK_ALLOWED_BOT_IDS: `B0REPORTBOT,${fake.botId}`,
        }).slack!,
    );
  });
  afterEach(async () => {
    await h.close();
  });

  /** A message by an app's bot user: user U…, bot_id B…, app_id A…. */
  function fromBot(base: string, botId: string, userId: string, patch: Record<string, unknown>): Payload {
    const payload = fixture<Payload>(base, h.fake);
    payload.event = { ...payload.event, user: botId === h.fake.botId ? h.fake.botUserId : userId, bot_id: botId, app_id: `A${botId.slice(1)}`, files: undefined, ...patch };
    return payload;
  }

  it('answers a listed bot like a person (mention, then a follow-up in the thread), never itself or other bots', async () => {
    h.engine.script.push({ deltas: ['Weekly ', 'chart.'], text: 'Weekly chart.' }, { text: 'Per region: North leads.' });
    const mention = fromBot('app_mention_with_file', 'B0REPORTBOT', 'U0REPORTBOT', { text: `<@${h.fake.botUserId}> chart the weekly numbers` });
    expect((await h.deliver(mention)).status).toBe(200);
    await h.settle();

    const followUp = fromBot('message_thread_reply', 'B0REPORTBOT', 'U0REPORTBOT', { text: 'and per region?', parent_user_id: 'U0REPORTBOT' });
    // Crunch's own answer in the thread, as Slack echoes it, and an unlisted bot mentioning Crunch there.
    const itself = fromBot('message_thread_reply', h.fake.botId, '', { text: 'Weekly chart.', ts: '1715000300.000400', parent_user_id: 'U0REPORTBOT' });
    const stranger = fromBot('message_thread_reply', 'B0OTHERBOT', 'U0OTHERBOT', { text: `<@${h.fake.botUserId}> me too`, ts: '1715000400.000500' });
    for (const payload of [followUp, itself, stranger]) expect((await h.deliver(payload)).status).toBe(200);
    await h.settle();

    expect(h.engine.calls.map((r) => r.text)).toEqual(['chart the weekly numbers', 'and per region?']);
    expect(h.engine.calls[1]!.session?.contextId).toMatch(/^ctx-/);
    expect(h.fake.thread(CHANNEL, MENTION_TS).map(messageText)).toEqual(['Weekly chart.', 'Per region: North leads.']);
    // A bot gets the answer whole: nothing streamed, though the engine streamed text.
    expect(h.fake.callsTo('chat.startStream')).toEqual([]);
    // Its own message never reaches the adapter (Bolt's ignoreSelf drops it; triageEvent would too). The other bot's
    // is logged with its id, which is how an operator finds the id to list (LOG_LEVEL=debug).
    expect(h.logs().filter((l) => l['msg'] === 'event ignored').map((l) => [l['reason'], l['botId']])).toEqual([['from a bot', 'B0OTHERBOT']]);
  });
});

describe('Slack progress, as Slack is asked for it', () => {
  it('shows the engine\'s first status in one call, not a generic one replaced a moment later', async () => {
    const h = await startHarness({ firstStatusMs: 200, statusIntervalMs: 1500 });
    try {
      let release!: () => void;
      h.engine.script.push({ statuses: ['thinking…'], text: 'Done.', gate: new Promise<void>((r) => (release = r)) });
      await h.deliver(fixture('message_im', h.fake));
      await h.fake.waitFor(() => h.fake.statuses.length > 0, 'a status');
      release();
      await h.settle();
      expect(h.fake.statuses.map((s) => s.status)).toEqual(['is thinking…']);
    } finally {
      await h.close();
    }
  });

  it('posts an answer written within one stream interval whole, and streams one that keeps coming', async () => {
    const h = await startHarness({ streamIntervalMs: 400 });
    try {
      // Finished 100 ms after its first words: one chat.postMessage, no stream started and stopped.
      h.engine.script.push({ deltas: ['The answer ', 'is 42.'], text: 'The answer is 42.', gate: new Promise<void>((r) => setTimeout(r, 100)) });
      const first = fixture<{ event: Record<string, unknown> }>('message_im', h.fake);
      await h.deliver(first);
      await h.settle();
      const answers = () => h.fake.callsTo('chat.postMessage').filter((c) => c.params['thread_ts'] !== undefined);
      expect(h.fake.callsTo('chat.startStream')).toEqual([]);
      expect(answers().map((c) => c.params['text'])).toEqual(['The answer is 42.']);

      // Still being written after the interval: streamed from then on, and ended without a rewrite.
      let release!: () => void;
      h.engine.script.push({ deltas: ['Looking at ', 'the data…'], text: 'Looking at the data… done.', gate: new Promise<void>((r) => (release = r)) });
      await h.deliver({ ...first, event_id: 'Ev0DM000002', event: { ...first.event, ts: '1715000900.000900', event_ts: '1715000900.000900', client_msg_id: undefined, text: 'and now?' } });
      await h.fake.waitFor(() => h.fake.callsTo('chat.startStream').length === 1, 'the stream');
      expect(h.fake.callsTo('chat.startStream')[0]!.params['markdown_text']).toBe('Looking at the data…');
      release();
      await h.settle();
      expect(h.fake.callsTo('chat.stopStream')[0]!.params).toMatchObject({ markdown_text: ' done.' });
      expect(answers()).toHaveLength(1);
    } finally {
      await h.close();
    }
  });
});

describe('Slack output is never a mention', () => {
  it('defuses mentions the model writes or names its files with, in every call that carries them', async () => {
    const h = await startHarness({ firstStatusMs: 0, statusIntervalMs: 0 });
    try {
      const evil = '<!channel> <!here> <@U0ALICE001> <#C0DATA0001>';
      let release!: () => void;
      h.engine.script.push({
        statuses: [`reading ${evil}.csv…`],
        deltas: ['Hey <', '!channel> look: ', evil],
        text: `Hey <!channel> look: ${evil}`,
        notices: [`**${evil}.xlsx** skipped: not supported.`],
        outputs: [
          { name: '<!channel>.png', title: '<!here> chart', data: Buffer.from('89504e470d0a1a0a', 'hex') },
          { name: '<!channel>.csv', data: 'a\n1\n' },
        ],
        gate: new Promise<void>((r) => (release = r)),
      });
      // The CSV upload fails, so the warning names it.
      h.fake.fail({ method: 'upload', status: 500, times: 10, when: (p) => p['filename'] === '_!channel_.csv' });
      await h.deliver(fixture('message_im', h.fake));
      await h.fake.waitFor(() => h.fake.messages.some((m) => m.kind === 'stream'), 'the stream');
      release();
      await h.settle();
      // A live mention opens with "<!", "<@" or "<#"; escaped (&lt;) or defused (a zero-width space after "<") it does not.
      const carried = h.fake.calls.filter((c) => c.method !== 'auth.test').flatMap((c) => Object.values(c.params).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))));
      expect(carried.filter((v) => /<[!@#]/.test(v))).toEqual([]);
      // What the person reads is still the text, the zero-width spaces unseen.
      const thread = h.fake.thread('D0ALICE001', '1715000100.000200');
      expect(thread[0]!.text.replace(/\u200B/g, '')).toContain('Hey <!channel> look');
      expect(messageText(thread.at(-1)!)).toContain('I could not upload *&lt;!channel&gt;.csv*');
    } finally {
      await h.close();
    }
  });
});

describe('metrics', () => {
  it('counts a delivery and its turn at /metrics, in Prometheus format', async () => {
    const h = await startHarness();
    try {
      const count = async (pattern: RegExp) => Number(pattern.exec(await (await fetch(`${h.server.url}/metrics`)).text())?.[1] ?? 0);
      const turns = /crunch_turns_total\{platform="slack",outcome="answered"\} (\d+)/;
      const before = await count(turns);
      await h.deliver(fixture('message_im', h.fake));
      await h.settle();
      expect(await count(turns)).toBe(before + 1);
      expect(await count(/crunch_deliveries_total\{platform="slack",status="accepted"\} (\d+)/)).toBeGreaterThanOrEqual(1);
      expect(await count(/crunch_turn_duration_seconds_count\{platform="slack"\} (\d+)/)).toBeGreaterThanOrEqual(1);
      expect(await count(/crunch_request_duration_seconds_count (\d+)/)).toBeGreaterThanOrEqual(1);
    } finally {
      await h.close();
    }
  });
});
