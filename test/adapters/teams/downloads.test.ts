import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { listen } from '../../fakes/http.js';
import type { DownloadTrouble } from '../../fakes/teams.js';
import { shownTexts, stacksClosedAfterEach, type Stack } from './harness.js';

/**
 * Downloads of the files people send, against misbehaving hosts over real HTTP: one that never answers or
 * goes silent midway fails that file alone, within its own bound, named in the answer, with the connection
 * closed; the turn answers with the other files, and the chat is free for the next message.
 */

const XLSX = await readFile(new URL('../../fixtures/files/sales.xlsx', import.meta.url));
const PNG = await readFile(new URL('../../fixtures/files/revenue.png', import.meta.url));
/** About 20 KB of CSV: past the core's 4 KB sniffing sample, so a stall at half is mid-body. */
const CSV = Buffer.from(['month,revenue', ...Array.from({ length: 1500 }, (_v, i) => `2024-${String((i % 12) + 1).padStart(2, '0')},${1000 + i}`)].join('\n'));
const CHANNEL = '19:c1a2b3c4d5e6f708@thread.tacv2';
const BOUND_MS = 300;

const stack = stacksClosedAfterEach();
const bounded = (config: Parameters<typeof stack>[0] = {}) =>
  stack({
    script: (input) => ({ text: `answer to ${input.text}` }),
    ...config,
    config: { downloadTimeoutMs: BOUND_MS, downloadIdleTimeoutMs: BOUND_MS, ...config.config },
  });

/** A personal-chat message with these files attached, as Teams sends them (file.download.info). */
function withFiles(s: Stack, files: Array<{ name: string; url: string }>, text = 'plot revenue by month'): Record<string, any> {
  const activity = s.fixture('personal-file');
  const [template] = activity.attachments;
  activity.text = text;
  activity.attachments = files.map((f, i) => ({
    ...template,
    name: f.name,
    content: { ...template.content, downloadUrl: f.url, uniqueId: `0000000${i}-0000-4000-8000-000000000000`, fileType: f.name.split('.').pop() },
  }));
  return activity;
}

const answer = (s: Stack) => shownTexts(s.fake).join('\n');
const received = (s: Stack, call = 0) => s.engine.calls[call]!.files.map((f) => f.name);

/** Waits until every download the fake served has been hung up on. */
async function allClosed(s: Stack): Promise<void> {
  for (let waited = 0; s.fake.openDownloads > 0; waited += 20) {
    if (waited > 2000) throw new Error(`${s.fake.openDownloads} download(s) still open`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('teams downloads: bounded, one file at a time', () => {
  it.each<[DownloadTrouble, string]>([
    ['hang', '**hang.csv** skipped: Teams did not start sending it within 1 second. Please send it again in a moment.'],
    ['stall', '**hang.csv** skipped: Teams stopped sending it midway (nothing for 1 second). Please send it again.'],
  ])('a download that %ss fails that file alone: the rest is analysed, the connection is closed, the chat goes on', async (trouble, notice) => {
    const s = await bounded();
    const started = Date.now();
    await s.ask(withFiles(s, [
      { name: 'hang.csv', url: s.fake.hostDownload(CSV, trouble) },
      { name: 'sales.xlsx', url: s.fake.hostDownload(XLSX) },
    ]));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(received(s)).toEqual(['sales.xlsx']);
    expect(answer(s)).toContain(notice);
    expect(answer(s)).toContain('answer to plot revenue by month');
    await allClosed(s);

    // The chat is not held: the next message is answered as usual.
    const next = withFiles(s, [{ name: 'sales.xlsx', url: s.fake.hostDownload(XLSX) }], 'and by quarter?');
    next.id = '1772446599000';
    await s.ask(next);
    expect(received(s, 1)).toEqual(['sales.xlsx']);
    expect(answer(s)).toContain('answer to and by quarter?');
  });

  it('tells a host that cannot be reached from one that is too slow', async () => {
    // Authentication off: any loopback host may serve files, so a closed port on this machine will do.
    const s = await bounded({ auth: false });
    const gone = await listen(() => undefined);
    await gone.close();
    await s.ask(withFiles(s, [{ name: 'gone.csv', url: `${gone.url}/download/1` }]));
    expect(answer(s)).toContain('**gone.csv** skipped: I could not reach Teams to download it. Please send it again in a moment.');
  });

  it('bounds a pasted image the same way', async () => {
    const s = await bounded();
    await s.ask(s.fixture('inline-image', { imageUrl: s.fake.hostInlineImage(PNG, 'hang') }));
    expect(received(s)).toEqual([]);
    expect(answer(s)).toContain('**pasted-image-1.png** skipped: Teams did not start sending it within 1 second.');
    await allClosed(s);
  });

  it('bounds a channel file read through Microsoft Graph the same way', async () => {
    const s = await bounded({ config: { graphFiles: true } });
    const activity = s.fixture('channel-file-link');
    s.fake.hostGraphMessage(`/teams/${s.fake.teamAadGroupId}/channels/${CHANNEL}/messages/${activity.id}`, [
      { name: 'Q3 budget.xlsx', bytes: XLSX, trouble: 'hang' },
      { name: 'Q4 budget.xlsx', bytes: XLSX },
    ]);
    await s.ask(activity);
    expect(received(s)).toEqual(['Q4 budget.xlsx']);
    expect(answer(s)).toContain('**Q3 budget.xlsx** skipped: SharePoint did not start sending it within 1 second.');
    await allClosed(s);
  });
});

describe('teams downloads: a sign-in page is not the file', () => {
  const SIGN_IN_PAGE = Buffer.from(
    '<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><h1>Sign in to SharePoint</h1><form method="post" action="https://login.microsoftonline.com/common/login"><input name="loginfmt"></form></body></html>',
  );
  const WHAT_TO_DO =
    'skipped: SharePoint asked for a signed-in user instead of sending it: its link has expired, or the file is not shared with Crunch. ' +
    'Attach the file again in a 1:1 chat with Crunch; for files in channels and group chats, ask your Teams admin to let Crunch read them (TEAMS_GRAPH_FILES).';

  it.each<[string, DownloadTrouble]>([
    ['an HTML "Sign in to SharePoint" page', 'html'],
    ['403', 'forbidden'],
  ])('a .csv download answered with %s is skipped with what to do, and the engine never gets it', async (_what, trouble) => {
    const s = await bounded();
    await s.ask(withFiles(s, [
      { name: 'data.csv', url: s.fake.hostDownload(SIGN_IN_PAGE, trouble) },
      { name: 'sales.xlsx', url: s.fake.hostDownload(XLSX) },
    ]));
    expect(received(s)).toEqual(['sales.xlsx']);
    expect(answer(s)).toContain(`**data.csv** ${WHAT_TO_DO}`);
  });

  it('reads an HTML file served as HTML, but not an HTML "file" reached through an unexpected redirect', async () => {
    const s = await bounded();
    const report = Buffer.from('<!DOCTYPE html><html><body><table><tr><th>month</th><th>revenue</th></tr><tr><td>2024-01</td><td>1000</td></tr></table></body></html>');
    await s.ask(withFiles(s, [
      { name: 'report.html', url: s.fake.hostDownload(report, 'html') },
      { name: 'moved.html', url: s.fake.hostRedirect(s.fake.hostDownload(SIGN_IN_PAGE, 'html')) },
    ]));
    expect(s.engine.calls[0]!.files.map((f) => [f.name, f.bytes.equals(report)])).toEqual([['report.html', true]]);
    expect(answer(s)).toContain(`**moved.html** ${WHAT_TO_DO}`);
  });

  it('a channel file Graph may not read (403, or a sign-in page after its redirect) names the permission it needs', async () => {
    const s = await bounded({ config: { graphFiles: true } });
    const activity = s.fixture('channel-file-link');
    s.fake.hostGraphMessage(`/teams/${s.fake.teamAadGroupId}/channels/${CHANNEL}/messages/${activity.id}`, [
      { name: 'signin.xlsx', bytes: SIGN_IN_PAGE, trouble: 'html' },
      { name: 'denied.xlsx', bytes: XLSX, trouble: 'forbidden' },
      { name: 'Q4 budget.xlsx', bytes: XLSX },
    ]);
    await s.ask(activity);
    expect(received(s)).toEqual(['Q4 budget.xlsx']);
    for (const name of ['signin.xlsx', 'denied.xlsx']) {
      expect(answer(s)).toContain(`**${name}** skipped: I am not allowed to read it: a Teams admin must grant Crunch the Files.Read.All application permission.`);
    }
  });
});
