import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type RunningServer } from '../../fakes/http.js';
import { shownTexts, stacksClosedAfterEach, TENANT, type Stack } from './harness.js';

/**
 * What a request may make the bot do, end to end over real HTTP: which channels and tenants are served, which
 * URLs from an activity the bot fetches (and with what token), and which SharePoint files Graph may read for
 * it (who may talk to it with authentication off: local-mode.test.ts). Assertions read the fakes' recorded state.
 */

const PNG = await readFile(new URL('../../fixtures/files/revenue.png', import.meta.url));
const XLSX = await readFile(new URL('../../fixtures/files/sales.xlsx', import.meta.url));
const CHANNEL = '19:c1a2b3c4d5e6f708@thread.tacv2';
const ALEX = 'a4b3c2d1-0000-4000-8000-0000000a1e70';
const MEGAN = '6de8fa26-6e1b-4a6e-9a5b-1b2d5a0c9f11';
const OTHER_TENANT = '11111111-2222-4333-8444-555555555555';

const stack = stacksClosedAfterEach();
const scripted = (options: Parameters<typeof stack>[0] = {}) => stack({ script: () => ({ text: 'ok' }), ...options });

/** A server only the bot's own network reaches (a metadata service, an admin API): it records every hit. */
interface Bystander {
  url: string;
  hits: Array<{ method: string; path: string; authorization: string | undefined }>;
}
const bystanders: RunningServer[] = [];
afterEach(async () => {
  while (bystanders.length > 0) await bystanders.pop()!.close();
});
async function bystander(): Promise<Bystander> {
  const hits: Bystander['hits'] = [];
  const server = await listen((req, res, _body, url) => {
    hits.push({ method: req.method ?? '', path: url.pathname, authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(PNG);
  });
  bystanders.push(server);
  return { url: server.url, hits };
}

const answerText = (s: Stack) => shownTexts(s.fake).join('\n');

describe('teams security: channels and tenants', () => {
  // The fake signing key is endorsed for msteams, webchat and emulator, as Microsoft's keys are for several channels.
  it.each([['webchat'], ['emulator']])('refuses an activity from channel %s even with a valid token, before any work', async (channelId) => {
    const s = await scripted();
    const activity = s.fixture('inline-image', { imageUrl: s.fake.hostInlineImage(PNG) });
    activity.channelId = channelId;
    // A Web Chat client writes its own conversation type, tenant and attachments.
    activity.conversation = { id: 'webchat-conversation-1', conversationType: 'personal', tenantId: TENANT };
    const response = await s.send(activity);
    expect(response.status).toBe(403);
    await s.settle();
    expect(s.engine.calls).toEqual([]);
    expect(s.fake.recorded).toEqual([]);
    expect(s.fake.downloads).toEqual([]);
    expect(s.logs().some((l) => l.channel === channelId && String(l.msg).includes('is not Microsoft Teams'))).toBe(true);
  });

  it('refuses file consent invokes from other channels too', async () => {
    const s = await scripted();
    const invoke = s.fixture('file-consent-accept', { offerId: '00000000-0000-4000-8000-000000000000', replyToId: 'x', ...s.fake.oneDrive.session('a.csv') });
    invoke.channelId = 'webchat';
    expect((await s.send(invoke)).status).toBe(403);
    await s.settle();
    expect(s.fake.recorded).toEqual([]);
  });

  it('serves the Bot Framework Emulator channel only with authentication off', async () => {
    const s = await scripted({ auth: false });
    const activity = s.fixture('personal-text');
    activity.channelId = 'emulator';
    await s.ask(activity);
    expect(s.engine.calls).toHaveLength(1);
    expect(shownTexts(s.fake)).toContain('ok');
  });

  it('takes the tenant from conversation.tenantId, never from channelData alone', async () => {
    const s = await scripted({ config: { allowedTenants: [TENANT] } });
    const noConversationTenant = s.fixture('personal-text');
    delete noConversationTenant.conversation.tenantId;
    noConversationTenant.channelData = { tenant: { id: TENANT } };
    await s.ask(noConversationTenant);

    const otherTenant = s.fixture('personal-text');
    otherTenant.conversation.tenantId = OTHER_TENANT;
    otherTenant.channelData = { tenant: { id: TENANT } };
    await s.ask(otherTenant);

    expect(s.engine.calls).toEqual([]);
    expect(shownTexts(s.fake)).toEqual([
      'Crunch is not enabled for this workspace. Ask your workspace admin if you need it here.',
      expect.stringContaining('only available to specific organisations'),
    ]);
  });

  it('refuses an activity whose channelData names another tenant than its conversation, allow-list or not', async () => {
    const s = await scripted();
    const conflicting = s.fixture('personal-text');
    conflicting.channelData = { tenant: { id: OTHER_TENANT } };
    await s.ask(conflicting);
    expect(s.engine.calls).toEqual([]);
    expect(s.logs().some((l) => String(l.msg).includes('another tenant'))).toBe(true);
  });
});

describe('teams security: URLs from activities', () => {
  it('never sends the bot token to a pasted-image URL outside Teams, and says why the image was skipped', async () => {
    const s = await scripted();
    const other = await bystander();
    await s.ask(s.fixture('inline-image', { imageUrl: `${other.url}/v3/attachments/0-weu-d3/views/original` }));
    expect(other.hits).toEqual([]);
    expect(s.engine.calls[0]!.files).toEqual([]);
    expect(answerText(s)).toContain('**pasted-image-1.png** skipped: its link does not point to Teams');
  });

  it('still downloads a pasted image from the connector (the serviceUrl) with the bot token', async () => {
    const s = await scripted();
    await s.ask(s.fixture('inline-image', { imageUrl: s.fake.hostInlineImage(PNG) }));
    expect(s.engine.calls[0]!.files.map((f) => f.bytes.equals(PNG))).toEqual([true]);
  });

  it('refuses a personal-chat download URL on a host that is neither https nor the connector', async () => {
    const s = await scripted();
    const other = await bystander();
    await s.ask(s.fixture('personal-file', { downloadUrl: `${other.url}/latest/meta-data/iam` }));
    expect(other.hits).toEqual([]);
    expect(s.engine.calls[0]!.files).toEqual([]);
    expect(answerText(s)).toMatch(/\*\*sales\.xlsx\*\* skipped: its download link is not one I may follow \(refusing a loopback address/);
  });

  it('refuses a download URL naming a link-local address (cloud metadata) without connecting', async () => {
    const s = await scripted();
    await s.ask(s.fixture('personal-file', { downloadUrl: 'https://169.254.169.254/latest/meta-data/' }));
    expect(answerText(s)).toContain('refusing a private or link-local address (169.254.169.254)');
  });

  it('follows a redirect only to an allowed host, re-checking each hop', async () => {
    const s = await scripted();
    const other = await bystander();
    await s.ask(s.fixture('personal-file', { downloadUrl: s.fake.hostRedirect(`${other.url}/internal/admin`) }));
    expect(other.hits).toEqual([]);
    expect(s.fake.downloads).toEqual([expect.stringMatching(/^\/redirect\//)]);
    expect(answerText(s)).toContain('**sales.xlsx** skipped: its download link is not one I may follow');

    const s2 = await scripted();
    await s2.ask(s2.fixture('personal-file', { downloadUrl: s2.fake.hostRedirect(s2.fake.hostDownload(XLSX)) }));
    expect(s2.engine.calls[0]!.files.map((f) => [f.name, f.bytes.equals(XLSX)])).toEqual([['sales.xlsx', true]]);
  });

  it('gives up after a few redirects', async () => {
    const s = await scripted();
    let url = s.fake.hostDownload(XLSX);
    for (let i = 0; i < 5; i++) url = s.fake.hostRedirect(url);
    await s.ask(s.fixture('personal-file', { downloadUrl: url }));
    expect(s.fake.downloads.filter((p) => p.startsWith('/download/'))).toEqual([]);
    expect(answerText(s)).toContain('more than 3 redirects');
  });

  it('does not crash on a numeric entity beyond Unicode (&#99999999;): the message is answered', async () => {
    const s = await scripted();
    const activity = s.fixture('personal-text');
    activity.text = 'what is &#99999999; and &#x110000;?';
    const response = await s.send(activity);
    expect(response.status).toBe(200);
    await s.settle();
    expect(s.engine.calls.map((c) => c.text)).toEqual(['what is &#99999999; and &#x110000;?']);
    expect(shownTexts(s.fake)).toContain('ok');
  });
});

describe('teams security: Graph reads only files the sender could share there', () => {
  it('in a channel: reads files in the channel files folder, refuses files elsewhere in SharePoint', async () => {
    const s = await scripted({ config: { graphFiles: true } });
    const activity = s.fixture('channel-file-link');
    const path = `/teams/${s.fake.teamAadGroupId}/channels/${CHANNEL}/messages/${activity.id}`;
    const hr = 'b!hr-documents';
    s.fake.hostGraphMessage(path, [
      { name: 'Q3 budget.xlsx', bytes: XLSX },
      { name: 'sub.xlsx', bytes: XLSX, folder: 'General/2026' },
      { name: 'salaries.xlsx', bytes: Buffer.from('secret'), driveId: hr, folder: 'General' },
      { name: 'board.xlsx', bytes: Buffer.from('secret'), folder: 'Board' },
      { name: 'old.xlsx', bytes: Buffer.from('secret'), folder: 'General-old' },
    ]);
    await s.ask(activity);
    expect(s.engine.calls[0]!.files.map((f) => f.name)).toEqual(['Q3 budget.xlsx', 'sub.xlsx']);
    expect(s.fake.graphRequests.filter((r) => r.endsWith('/content'))).toHaveLength(2);
    const text = answerText(s);
    for (const name of ['salaries.xlsx', 'board.xlsx', 'old.xlsx']) {
      expect(text).toContain(`**${name}** skipped: it is not stored in this channel's files`);
    }
    expect(text).not.toContain('Q3 budget.xlsx** skipped');
  });

  it("in a group chat: reads files from the sender's own OneDrive only", async () => {
    const s = await scripted({ config: { graphFiles: true } });
    const activity = s.fixture('group-chat');
    activity.attachments[0].content += '<attachment id="4c1b7c20"></attachment><attachment id="9d0e1f2a"></attachment>';
    s.fake.hostGraphMessage(
      `/chats/${activity.conversation.id}/messages/${activity.id}`,
      [
        { name: 'mine.xlsx', bytes: XLSX, driveId: s.fake.oneDriveOf(ALEX), folder: 'Microsoft Teams Chat Files' },
        { name: 'megans.xlsx', bytes: Buffer.from('secret'), driveId: s.fake.oneDriveOf(MEGAN), folder: 'Documents' },
      ],
      { from: ALEX },
    );
    await s.ask(activity);
    expect(s.engine.calls[0]!.files.map((f) => f.name)).toEqual(['mine.xlsx']);
    expect(s.fake.graphRequests.filter((r) => r.endsWith('/content'))).toHaveLength(1);
    expect(answerText(s)).toContain("**megans.xlsx** skipped: it is not a file from your own OneDrive shared in this chat");
  });
});
