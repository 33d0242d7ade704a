import { afterEach, describe, expect, it } from 'vitest';
import { OFFER_EXPIRED, OFFER_NOT_YOURS } from '../../../adapters/teams/files/file-consent.js';
import { listen, type RunningServer } from '../../fakes/http.js';
import type { RecordedActivity } from '../../fakes/teams.js';
import type { UploadInfo } from '../../fakes/teams-onedrive.js';
import { shownTexts, stacksClosedAfterEach, type Stack } from './harness.js';

/**
 * Generated files in personal chat go through Teams' file consent flow, end to end: fake OpenAI makes a
 * CSV → the real engine, core and Teams adapter post a consent card to the fake connector → the test plays
 * Teams, sending the signed `fileConsent/invoke` → the adapter uploads to the fake OneDrive session.
 */

const CSV = `id,value,zscore\n${Array.from({ length: 400 }, (_, i) => `${i},${(i * 37) % 101},${((i % 13) / 3).toFixed(2)}`).join('\n')}\n`;
const FILE_CONSENT = 'application/vnd.microsoft.teams.card.file.consent';
const FILE_INFO = 'application/vnd.microsoft.teams.card.file.info';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const stack = stacksClosedAfterEach();
const servers: RunningServer[] = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close();
});

const attachmentsOf = (r: RecordedActivity) => (r.activity.attachments ?? []) as Array<Record<string, any>>;
const cardsOf = (s: Stack, contentType: string) => s.fake.messages().filter((r) => attachmentsOf(r)[0]?.contentType === contentType);
/** Updates (PUT) of one activity. */
const updatesOf = (s: Stack, activityId: string) => s.fake.recorded.filter((r) => r.method === 'PUT' && r.activityId === activityId);

/** A personal-chat answer with a generated CSV; returns its consent card as the connector recorded it. */
async function answerWithCsv(s: Stack): Promise<RecordedActivity> {
  s.openai.script.push({
    code: "df[df.zscore > 3].to_csv('/mnt/data/outliers.csv')",
    files: [{ filename: 'outliers.csv', data: CSV }],
    text: 'Found the outliers: [outliers.csv](sandbox:/mnt/data/outliers.csv)',
  });
  await s.ask(s.fixture('personal-text'));
  const cards = cardsOf(s, FILE_CONSENT);
  expect(cards).toHaveLength(1);
  return cards[0]!;
}

/** The invoke Teams sends when the user presses Allow / Decline on `card`. */
function consentInvoke(s: Stack, action: 'accept' | 'decline', card: RecordedActivity, upload?: UploadInfo): Record<string, any> {
  const offerId = String(attachmentsOf(card)[0]!.content.acceptContext.offerId);
  const info = upload ?? s.fake.oneDrive.session('outliers.csv');
  return s.fixture(`file-consent-${action}`, { offerId, replyToId: card.id!, ...info });
}

async function invoke(s: Stack, activity: Record<string, any>): Promise<{ status: number; body: string }> {
  const response = await s.send(activity);
  const result = { status: response.status, body: await response.text() };
  await s.settle();
  return result;
}

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

describe('teams file consent: personal chat', () => {
  it('offers a generated CSV with a file consent card that carries only an offer id', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    const [attachment] = attachmentsOf(card);
    expect(card.conversationId).toBe('a:1Tq0mJ3yXw8-personal-megan');
    expect(card.activity.type).toBe('message');
    expect(attachment).toEqual({
      contentType: FILE_CONSENT,
      name: 'outliers.csv',
      content: {
        description: expect.stringContaining('OneDrive'),
        sizeInBytes: Buffer.byteLength(CSV),
        acceptContext: { offerId: expect.stringMatching(UUID) },
        declineContext: { offerId: attachment!.content.acceptContext.offerId },
      },
    });
    expect(shownTexts(s.fake).join('\n')).toContain('Found the outliers');
    expect(shownTexts(s.fake).join('\n')).not.toContain('/files/');
  });

  it('on accept: answers the invoke 200 at once, uploads the bytes, posts the file card and updates the consent card', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    const info = s.fake.oneDrive.session('outliers.csv');
    const release = s.fake.oneDrive.hold();
    try {
      // The upload is held, so only an invoke answered before the upload can come back.
      const response = await within(5000, s.send(consentInvoke(s, 'accept', card, info)));
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('');
      expect(s.fake.oneDrive.uploaded('outliers.csv')).toBeUndefined();
    } finally {
      release();
    }
    await s.settle();

    expect(s.fake.oneDrive.uploaded('outliers.csv')?.equals(Buffer.from(CSV))).toBe(true);
    const size = Buffer.byteLength(CSV);
    expect(s.fake.oneDrive.puts).toEqual([
      { sessionId: expect.any(String), contentRange: `bytes 0-${size - 1}/${size}`, contentLength: String(size), authorization: undefined, bytes: size, status: 201 },
    ]);
    const [fileCard] = cardsOf(s, FILE_INFO);
    expect(attachmentsOf(fileCard!)).toEqual([
      { contentType: FILE_INFO, name: 'outliers.csv', contentUrl: info.contentUrl, content: { uniqueId: info.uniqueId, fileType: 'csv' } },
    ]);
    const [update] = updatesOf(s, card.id!);
    expect(update!.activity.text).toBe('✅ Uploaded **outliers.csv** to your OneDrive.');
    expect(update!.activity.attachments ?? []).toEqual([]);

    // Pressing Allow again (or Teams resending) settles nothing twice.
    expect((await invoke(s, consentInvoke(s, 'accept', card))).status).toBe(200);
    expect(s.fake.oneDrive.puts).toHaveLength(1);
    expect(cardsOf(s, FILE_INFO)).toHaveLength(1);
  });

  it('on decline: updates the card and still offers the signed link', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    expect(await invoke(s, consentInvoke(s, 'decline', card))).toEqual({ status: 200, body: '' });
    expect(s.fake.oneDrive.puts).toEqual([]);
    const text = String(updatesOf(s, card.id!)[0]!.activity.text);
    expect(text).toContain('You declined **outliers.csv**');
    const download = await fetch(/\((http[^)]+\/files\/[^)]+)\)/.exec(text)![1]!);
    expect(download.status).toBe(200);
    expect(await download.text()).toBe(CSV);
  });

  it('when the upload fails: says why and offers the signed link instead', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    s.fake.oneDrive.failNextPuts(1, 507);
    await invoke(s, consentInvoke(s, 'accept', card));
    expect(s.fake.oneDrive.uploaded('outliers.csv')).toBeUndefined();
    expect(cardsOf(s, FILE_INFO)).toEqual([]);
    const text = String(updatesOf(s, card.id!)[0]!.activity.text);
    expect(text).toContain('I could not save **outliers.csv** to your OneDrive (your OneDrive is full)');
    expect(await (await fetch(/\((http[^)]+)\)/.exec(text)![1]!)).text()).toBe(CSV);
  });

  it('never uploads to a plain-http upload URL (nor sends anything there), and offers the link', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    const info = { ...s.fake.oneDrive.session('outliers.csv'), uploadUrl: 'http://onedrive.example/up/1' };
    await invoke(s, consentInvoke(s, 'accept', card, info));
    expect(s.fake.oneDrive.puts).toEqual([]);
    expect(String(updatesOf(s, card.id!)[0]!.activity.text)).toMatch(/could not save \*\*outliers\.csv\*\*.*\n\n- \[outliers\.csv\]\(http/s);
  });

  it.each([
    ['a loopback service other than the connector', 'internal'],
    ['a link-local address', 'https://169.254.169.254/up/1'],
    ['a private IPv6 address', 'https://[fd00::5]/up/1'],
  ])('never uploads to %s, and offers the link instead', async (_what, target) => {
    const s = await stack();
    // Something only the bot's network reaches, on this machine but not on the connector's host.
    const hits: string[] = [];
    const internal = await listen((req, res, _body, url) => {
      hits.push(`${req.method} ${url.pathname}`);
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{}');
    });
    servers.push(internal);
    const card = await answerWithCsv(s);
    const uploadUrl = target === 'internal' ? `${internal.url}/up/1` : target;
    await invoke(s, consentInvoke(s, 'accept', card, { ...s.fake.oneDrive.session('outliers.csv'), uploadUrl }));
    expect(hits).toEqual([]);
    expect(s.fake.oneDrive.puts).toEqual([]);
    const [note] = updatesOf(s, card.id!);
    expect(String(note!.activity.text)).toMatch(/could not save \*\*outliers\.csv\*\* to your OneDrive \(Teams sent an upload link I may not use\)\. Download it here instead:\n\n- \[outliers\.csv\]\(http/);
  });

  it('refuses an unknown or expired offer politely, uploading nothing', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    const forged = consentInvoke(s, 'accept', card);
    forged.value.context = { offerId: '00000000-0000-4000-8000-000000000000' };
    expect((await invoke(s, forged)).status).toBe(200);
    forged.value.context = { path: '/etc/passwd' };
    expect((await invoke(s, forged)).status).toBe(200);
    s.clock.now += 25 * 60 * 60 * 1000;
    expect((await invoke(s, consentInvoke(s, 'accept', card))).status).toBe(200);

    expect(s.fake.oneDrive.puts).toEqual([]);
    expect(shownTexts(s.fake).filter((t) => t === OFFER_EXPIRED)).toHaveLength(3);
    expect(updatesOf(s, card.id!)).toEqual([]);
  });

  it('never lets another conversation claim the file, which stays available to its owner', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    const stolen = consentInvoke(s, 'accept', card);
    stolen.conversation.id = 'a:9Zz-personal-adele';
    stolen.from = { id: '29:1Adele', name: 'Adele Vance', aadObjectId: '0a1b2c3d-0000-4000-8000-00000000ade1' };
    expect((await invoke(s, stolen)).status).toBe(200);
    expect(s.fake.oneDrive.puts).toEqual([]);
    expect(updatesOf(s, card.id!)).toEqual([]);
    expect(s.fake.messages('a:9Zz-personal-adele').map((r) => r.activity.text)).toEqual([OFFER_NOT_YOURS]);
    expect(s.logs().some((l) => String(l.msg).includes('belongs to another conversation'))).toBe(true);

    const otherUser = consentInvoke(s, 'accept', card);
    otherUser.from = { ...otherUser.from, id: '29:1Adele' };
    await invoke(s, otherUser);
    expect(s.fake.oneDrive.puts).toEqual([]);

    // The owner's invoke may lack the AAD object id; the channel user id still matches.
    const owner = consentInvoke(s, 'accept', card);
    delete owner.from.aadObjectId;
    await invoke(s, owner);
    expect(s.fake.oneDrive.uploaded('outliers.csv')?.equals(Buffer.from(CSV))).toBe(true);
  });

  it('verifies the invoke token like any request, and answers other invokes as the SDK does', async () => {
    const s = await stack();
    const card = await answerWithCsv(s);
    const accept = consentInvoke(s, 'accept', card);
    expect((await s.send(accept, await s.fake.signToken({ aud: 'someone-else' }))).status).toBe(401);
    expect((await s.send(accept, null)).status).toBe(401);
    expect((await invoke(s, { ...accept, value: { ...accept.value, action: 'maybe' } })).status).toBe(400);
    expect((await invoke(s, { ...accept, name: 'composeExtension/query' })).status).toBe(501);
    expect(s.fake.oneDrive.puts).toEqual([]);
  });

  it('sends signed links instead when file consent is turned off', async () => {
    const s = await stack({ config: { fileConsent: false } });
    s.openai.script.push({ files: [{ filename: 'outliers.csv', data: CSV }], text: 'Here.' });
    await s.ask(s.fixture('personal-text'));
    expect(cardsOf(s, FILE_CONSENT)).toEqual([]);
    expect(shownTexts(s.fake).join('\n')).toMatch(/\[outliers\.csv\]\(http[^)]+\/files\//);
  });
});

describe('teams generated files outside personal chat', () => {
  it('answers a channel mention with a signed download link, not a consent card', async () => {
    const s = await stack();
    s.openai.script.push({ code: 'df.to_csv()', files: [{ filename: 'clean.csv', data: 'a,b\n1,2\n' }], text: 'Cleaned: [clean.csv](sandbox:/mnt/data/clean.csv)' });
    await s.ask(s.fixture('channel-mention'));
    expect(cardsOf(s, FILE_CONSENT)).toEqual([]);
    const links = shownTexts(s.fake).find((t) => t.includes('clean.csv') && t.includes('/files/'))!;
    const download = await fetch(/\((http[^)]+)\)/.exec(links)![1]!);
    expect(download.headers.get('content-disposition')).toContain('attachment');
    expect(await download.text()).toBe('a,b\n1,2\n');
  });
});
