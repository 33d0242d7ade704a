import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { channelRefusal, checkTenant, hintsFromHtml, receiveActivity, splitConversationId } from '../../../adapters/teams/receive.js';
import { drivePath } from '../../../adapters/teams/files/graph.js';
import type { TeamsTurnData } from '../../../adapters/teams/types.js';

const BOT = '28:00000000-0000-4000-8000-00000000b07a';
const TENANT = '72f988bf-0000-4000-8000-00000000c0de';

function fixture(name: string): Record<string, any> {
  const text = readFileSync(new URL(`../../fixtures/teams/${name}.json`, import.meta.url), 'utf8')
    .replaceAll('{{botId}}', BOT)
    .replaceAll('{{tenantId}}', TENANT)
    .replaceAll('{{serviceUrl}}', 'https://smba.trafficmanager.net/emea/')
    .replaceAll('{{downloadUrl}}', 'https://contoso-my.sharepoint.com/download?token=abc')
    .replaceAll('{{imageUrl}}', 'https://smba.trafficmanager.net/emea/v3/attachments/0-weu-d3/views/original');
  return JSON.parse(text) as Record<string, any>;
}

const dataOf = (r: { turn: { platformData: unknown } }) => r.turn.platformData as unknown as TeamsTurnData;

describe('receiveActivity', () => {
  it('keys a personal chat by its conversation, with a download-info file', () => {
    const r = receiveActivity(fixture('personal-file'));
    if (r.kind !== 'turn') throw new Error(r.kind);
    expect(dataOf(r).scope).toBe('personal');
    // Where to answer, for whichever worker runs the turn: the conversation reference, as plain JSON.
    expect(dataOf(r).reference).toMatchObject({ serviceUrl: 'https://smba.trafficmanager.net/emea/', conversation: { id: 'a:1Tq0mJ3yXw8-personal-megan' } });
    expect(r.turn.conversation).toEqual({ platform: 'teams', workspace: TENANT, channel: 'a:1Tq0mJ3yXw8-personal-megan', thread: 'a:1Tq0mJ3yXw8-personal-megan' });
    expect(r.turn.messageKey).toBe('teams:a:1Tq0mJ3yXw8-personal-megan:1772446531200');
    expect(r.turn.user).toEqual({ id: '6de8fa26-6e1b-4a6e-9a5b-1b2d5a0c9f11', name: 'Megan Bowen' });
    expect(r.turn.files).toEqual([
      { sourceId: 'teams:file:1150D938-8870-4044-9F2C-5BBDEBA70C9D', name: 'sales.xlsx', source: { kind: 'download', url: 'https://contoso-my.sharepoint.com/download?token=abc' } },
    ]);
    expect(dataOf(r).fileHints).toEqual([]);
  });

  it('keys a channel message by the reply-chain root, for the root and for replies', () => {
    const root = receiveActivity(fixture('channel-mention'));
    const reply = receiveActivity(fixture('channel-reply'));
    if (root.kind !== 'turn' || reply.kind !== 'turn') throw new Error('not turns');
    expect(root.turn.conversation.thread).toBe('1772449200100');
    expect(reply.turn.conversation).toEqual(root.turn.conversation);
    expect(reply.turn.messageKey).not.toBe(root.turn.messageKey);
    expect(root.turn.text).toBe('what is the average of 3, 5 and 10?');
    expect(dataOf(root).graph).toMatchObject({ kind: 'channel', teamThreadId: '19:team0000000000000a@thread.tacv2', rootId: '1772449200100' });
  });

  it('keeps pasted images as attachments and does not double count the HTML copy', () => {
    const r = receiveActivity(fixture('inline-image'));
    if (r.kind !== 'turn') throw new Error(r.kind);
    expect(r.turn.files.map((f) => [f.name, f.source])).toEqual([
      ['pasted-image-1.png', { kind: 'image', url: 'https://smba.trafficmanager.net/emea/v3/attachments/0-weu-d3/views/original' }],
    ]);
    expect(dataOf(r).fileHints).toEqual([]);
  });

  it('reports channel file links as hints', () => {
    const r = receiveActivity(fixture('channel-file-link'));
    if (r.kind !== 'turn') throw new Error(r.kind);
    expect(r.turn.files).toEqual([]);
    expect(dataOf(r).fileHints.map((h) => h.name)).toEqual(['Q3 budget.xlsx', 'the attached file']);
  });

  it('ignores non-messages, its own messages and unmentioned channel messages', () => {
    expect(receiveActivity({ ...fixture('personal-text'), type: 'conversationUpdate' }).kind).toBe('ignore');
    const own = fixture('personal-text');
    own.from = own.recipient;
    expect(receiveActivity(own).kind).toBe('ignore');
    const unmentioned = fixture('channel-mention');
    unmentioned.entities = [];
    unmentioned.text = 'hello team';
    expect(receiveActivity(unmentioned)).toEqual({ kind: 'ignore', reason: 'bot not mentioned' });
  });

  it('names the tenant as the workspace (the core\'s allow-list checks it), "unknown" without one, and marks personal chats direct', () => {
    const received = receiveActivity(fixture('personal-text'));
    expect(received.kind === 'turn' && [received.turn.conversation.workspace, received.turn.direct]).toEqual([TENANT, true]);
    const noTenant = fixture('personal-text');
    delete noTenant.conversation.tenantId;
    delete noTenant.channelData;
    const unknown = receiveActivity(noTenant);
    expect(unknown.kind === 'turn' && unknown.turn.conversation.workspace).toBe('unknown');
    const channel = receiveActivity(fixture('channel-mention'));
    expect(channel.kind === 'turn' && channel.turn.direct).toBeUndefined();
  });
});

describe('channels and tenants', () => {
  it('accepts Teams, and the Emulator only with authentication off', () => {
    expect(channelRefusal(fixture('personal-text'), false)).toBeUndefined();
    expect(channelRefusal({ ...fixture('personal-text'), channelId: 'webchat' }, false)).toMatch(/not Microsoft Teams/);
    expect(channelRefusal({ ...fixture('personal-text'), channelId: 'emulator' }, false)).toMatch(/not Microsoft Teams/);
    expect(channelRefusal({ ...fixture('personal-text'), channelId: 'emulator' }, true)).toBeUndefined();
    expect(channelRefusal({ ...fixture('personal-text'), channelId: 'directline' }, true)).toMatch(/not Microsoft Teams/);
  });

  it('uses channelData.tenant.id only as a cross-check of conversation.tenantId', () => {
    const withTenants = (conversationTenant: string | undefined, channelTenant: string | undefined) => {
      const a = fixture('personal-text');
      a.conversation.tenantId = conversationTenant;
      a.channelData = channelTenant === undefined ? {} : { tenant: { id: channelTenant } };
      return a;
    };
    expect(checkTenant(withTenants(TENANT, TENANT.toUpperCase()), [TENANT])).toEqual({ ok: true, tenantId: TENANT });
    expect(checkTenant(withTenants(undefined, TENANT), [TENANT])).toEqual({ ok: false, tenantId: undefined, reason: 'not_allowed' });
    expect(checkTenant(withTenants(undefined, TENANT), [])).toEqual({ ok: true, tenantId: undefined });
    expect(checkTenant(withTenants(TENANT, 'other'), [])).toEqual({ ok: false, tenantId: TENANT, reason: 'conflict' });
  });
});

describe('file hints', () => {
  it('ignores emoji and mention markup, finds pasted images and SharePoint links', () => {
    expect(hintsFromHtml('<img itemtype="http://schema.skype.com/Emoji" src="x">', false)).toEqual([]);
    expect(hintsFromHtml('<img src="https://eu-api.asm.skype.com/v1/objects/0/views/imgo">', false)).toEqual([{ name: 'the pasted image' }]);
    expect(hintsFromHtml('<a href="https://contoso.sharepoint.com/a/b/Plan.xlsx">Plan.xlsx</a>', false)).toEqual([
      { name: 'Plan.xlsx', url: 'https://contoso.sharepoint.com/a/b/Plan.xlsx' },
    ]);
  });

  it('splits conversation ids', () => {
    expect(splitConversationId('19:a@thread.tacv2;messageid=17')).toEqual({ base: '19:a@thread.tacv2', rootId: '17' });
    expect(splitConversationId('a:1')).toEqual({ base: 'a:1', rootId: undefined });
  });
});

describe('drive paths', () => {
  it('normalises Graph parentReference paths for the channel-folder check', () => {
    expect(drivePath('/drives/b!abc/root:', 'General')).toBe('/general');
    expect(drivePath('/drive/root:/General/Sub%20folder')).toBe('/general/sub folder');
    expect(drivePath('/drives/b!abc/root:/General/..')).toBeUndefined();
    expect(drivePath('/drives/b!abc/root:/General/%2e%2e')).toBeUndefined();
    expect(drivePath('/drives/b!abc/items/x')).toBeUndefined();
    expect(drivePath(undefined)).toBeUndefined();
  });
});
