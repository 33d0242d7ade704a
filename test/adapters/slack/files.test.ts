import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileAccess } from '../../../adapters/slack/files/download.js';
import { prepareFiles } from '../../../adapters/slack/prepare.js';
import { buildTurn } from '../../../adapters/slack/receive.js';
import type { SlackFile } from '../../../adapters/slack/types.js';
import { AttachmentError } from '../../../src/core/index.js';
import { listen, type RecordedRequest, type RunningServer } from '../../fakes/http.js';
import { contextTexts, type FakeSlack, messageText, startFakeSlack } from '../../fakes/slack.js';
import { fixture, type Harness, startHarness } from './harness.js';

const CHANNEL = 'C0DATA0001';
const MENTION_TS = '1715000000.000100';
/** About 20 KB of CSV: well past the core's 4 KB sniffing sample, so a cut at half is mid-body. */
const CSV = Buffer.from(['month,revenue', ...Array.from({ length: 1500 }, (_v, i) => `2024-${String((i % 12) + 1).padStart(2, '0')},${1000 + i}`)].join('\n'));
const IDLE_MS = 300;

type Payload = { event: Record<string, unknown> } & Record<string, unknown>;

/** Another server on this machine, standing in for any host that is not Slack: it records whatever reaches it. */
async function startElsewhere(): Promise<RunningServer & { requests: RecordedRequest[] }> {
  const requests: RecordedRequest[] = [];
  const server = await listen((req, res, body, url) => {
    requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body });
    res.writeHead(200, { 'content-type': 'text/csv' });
    res.end(CSV);
  });
  return { ...server, requests };
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

describe('Slack file downloads through the adapter', () => {
  let h: Harness;
  let elsewhere: Awaited<ReturnType<typeof startElsewhere>>;
  beforeEach(async () => {
    h = await startHarness({ downloadIdleTimeoutMs: IDLE_MS });
    elsewhere = await startElsewhere();
  });
  afterEach(async () => {
    await h.close();
    await elsewhere.close();
  });

  function mentionWith(file: Record<string, unknown>): Payload {
    const payload = fixture<Payload>('app_mention_with_file', h.fake);
    payload.event = { ...payload.event, text: `<@${h.fake.botUserId}> sum the revenue`, files: [file] };
    return payload;
  }
  const hostCsv = (extra: { id: string; redirectTo?: string; cut?: { afterBytes: number; then: 'stall' | 'reset' } }) =>
    h.fake.hostFile({ name: 'revenue.csv', mimetype: 'text/csv', bytes: CSV, ...extra });
  const notices = () => h.fake.thread(CHANNEL, MENTION_TS).flatMap(contextTexts).join('\n');

  it('sends the bot token to nothing but Slack: a file linked elsewhere is refused, with a notice, before any request', async () => {
    const file = { ...hostCsv({ id: 'F0ELSEWHR1' }) };
    file['url_private'] = `${elsewhere.url}/files-pri/T0CRUNCH01-F0ELSEWHR1/revenue.csv`;
    file['url_private_download'] = `${elsewhere.url}/files-pri/T0CRUNCH01-F0ELSEWHR1/download/revenue.csv`;
    h.engine.script.push({ text: 'There is no file to read.' });
    await h.deliver(mentionWith(file));
    await h.settle();

    expect(elsewhere.requests).toEqual([]);
    expect(h.fake.callsTo('download')).toEqual([]);
    expect(h.engine.calls[0]!.files).toEqual([]);
    const [message] = h.fake.thread(CHANNEL, MENTION_TS);
    expect(messageText(message!)).toBe('There is no file to read.');
    expect(contextTexts(message!)).toEqual([
      `*revenue.csv* skipped: its download link points outside Slack (${new URL(elsewhere.url).host}), and I send my Slack credentials to Slack only, so I did not open it. Download the file and attach it here again.`,
    ]);
  });

  it('does not follow a redirect out of Slack: the hop is refused before it is requested', async () => {
    h.engine.script.push({ text: 'I could not read it.' });
    await h.deliver(mentionWith(hostCsv({ id: 'F0REDIRECT', redirectTo: `${elsewhere.url}/stolen.csv` })));
    await h.settle();

    // Slack itself was asked, with the token; the host it redirected to never was.
    expect(h.fake.callsTo('download')).toHaveLength(1);
    expect(elsewhere.requests).toEqual([]);
    expect(h.engine.calls[0]!.files).toEqual([]);
    expect(notices()).toContain(`*revenue.csv* skipped: its download link points outside Slack (${new URL(elsewhere.url).host})`);
  });

  // Short test timeouts: a download that is never given up on hangs the turn, and these tests with it.
  it('gives up on a download that stalls midway, and answers without the file', { timeout: 5000 }, async () => {
    h.engine.script.push({ text: 'Answered without the file.' });
    const started = Date.now();
    await h.deliver(mentionWith(hostCsv({ id: 'F0STALLED1', cut: { afterBytes: CSV.length / 2, then: 'stall' } })));
    await h.settle();

    expect(Date.now() - started).toBeLessThan(5000);
    expect(h.engine.calls[0]!.files).toEqual([]);
    expect(h.fake.thread(CHANNEL, MENTION_TS).map(messageText)).toEqual(['Answered without the file.']);
    expect(notices()).toBe('*revenue.csv* skipped: Slack stopped sending it midway (nothing for 1 second). Please send it again.');
    // And it hung up on Slack rather than leaving the connection open.
    await h.fake.waitFor(() => h.fake.openDownloads === 0, 'the stalled download to be closed', 2000);
  });

  it('fails the file, not the turn, when the connection drops midway', async () => {
    h.engine.script.push({ text: 'Answered without the file.' });
    await h.deliver(mentionWith(hostCsv({ id: 'F0DROPPED1', cut: { afterBytes: CSV.length / 2, then: 'reset' } })));
    await h.settle();

    expect(h.engine.calls[0]!.files).toEqual([]);
    expect(h.fake.thread(CHANNEL, MENTION_TS).map(messageText)).toEqual(['Answered without the file.']);
    expect(notices()).toBe('*revenue.csv* skipped: the connection to Slack dropped during the download. Please send it again.');
  });
});

describe('Attachment.open() against the fake Slack', () => {
  let fake: FakeSlack;
  let access: FileAccess;
  beforeEach(async () => {
    fake = await startFakeSlack();
    access = {
      botToken: fake.botToken,
      apiUrl: fake.apiUrl,
      downloadTimeoutMs: 5000,
      downloadIdleTimeoutMs: IDLE_MS,
      fileInfo: () => Promise.reject(new Error('unused')),
    };
  });
  afterEach(async () => {
    await fake.close();
  });

  /** The file as a turn's file, prepared the way a worker does, then opened. */
  async function open(file: Record<string, unknown>): Promise<Readable> {
    const event = { type: 'message', channel: 'D1', channel_type: 'im', user: 'U1', ts: '1.1', files: [file as unknown as SlackFile] };
    const turn = buildTurn('T1', event, { userId: 'UBOT', botId: 'BBOT' });
    const { attachments, notices } = await prepareFiles(turn, access, AbortSignal.timeout(10_000));
    expect(notices).toEqual([]);
    return attachments[0]!.open();
  }

  it('gives up a download that has not started by the turn\'s deadline, and closes it', async () => {
    const held = fake.hold({ method: 'download' });
    const event = { type: 'message', channel: 'D1', channel_type: 'im', user: 'U1', ts: '1.1', files: [fake.hostFile({ id: 'F0HANG0001', name: 'a.csv', mimetype: 'text/csv', bytes: CSV }) as unknown as SlackFile] };
    const deadline = new AbortController();
    const { attachments } = await prepareFiles(buildTurn('T1', event, { userId: 'UBOT', botId: 'BBOT' }), access, deadline.signal);
    const opening = attachments[0]!.open();
    await held.started;
    deadline.abort(new Error('the turn passed its deadline'));
    await expect(opening).rejects.toThrow('the turn passed its deadline');
    held.release();
  });

  it('streams the whole file', async () => {
    expect(await drain(await open(fake.hostFile({ id: 'F0WHOLE001', name: 'a.csv', mimetype: 'text/csv', bytes: CSV })))).toBe(CSV.length);
  });

  it('fails the stream, rather than ending it short, when the connection resets', async () => {
    const stream = await open(fake.hostFile({ id: 'F0RESET001', name: 'a.csv', mimetype: 'text/csv', bytes: CSV, cut: { afterBytes: 8000, then: 'reset' } }));
    const failure = await drain(stream).then(
      (bytes) => new Error(`ended after ${bytes} bytes`),
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(AttachmentError);
    expect((failure as AttachmentError).userMessage).toContain('the connection to Slack dropped');
  });

  it('fails the stream after the idle timeout when Slack goes silent, and hangs up', { timeout: 5000 }, async () => {
    const stream = await open(fake.hostFile({ id: 'F0STALL001', name: 'a.csv', mimetype: 'text/csv', bytes: CSV, cut: { afterBytes: 8000, then: 'stall' } }));
    const started = Date.now();
    await expect(drain(stream)).rejects.toThrow(/Slack stopped sending it midway/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(stream.destroyed).toBe(true);
    await fake.waitFor(() => fake.openDownloads === 0, 'the stalled download to be closed', 2000);
  });

  it('does not count time the reader takes as Slack stalling', async () => {
    const stream = await open(fake.hostFile({ id: 'F0SLOWRD01', name: 'a.csv', mimetype: 'text/csv', bytes: CSV }));
    // Nothing asks for data for three idle periods: no timeout, since no read was waiting.
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS * 3));
    expect(await drain(stream)).toBe(CSV.length);
  });

  it('follows a redirect within Slack with the token', async () => {
    const target = fake.hostFile({ id: 'F0TARGET01', name: 'a.csv', mimetype: 'text/csv', bytes: CSV });
    const moved = fake.hostFile({ id: 'F0MOVED001', name: 'a.csv', mimetype: 'text/csv', bytes: CSV, redirectTo: String(target['url_private_download']) });
    expect(await drain(await open(moved))).toBe(CSV.length);
    expect(fake.callsTo('download').map((c) => c.params['id'])).toEqual(['F0MOVED001', 'F0TARGET01']);
  });
});
