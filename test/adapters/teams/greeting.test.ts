import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SUPPORTED_EXTENSIONS } from '../../../src/core/index.js';
import { shownTexts, stacksClosedAfterEach, startStack, TENANT } from './harness.js';

/**
 * Installing Crunch for a personal chat: Teams sends `installationUpdate` "add" and `conversationUpdate` with
 * the bot in `membersAdded`. Crunch greets once per install, remembered in the store: across both activities,
 * a redelivery, and a restart on the same SQLite file.
 */

const stack = stacksClosedAfterEach();
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crunch-greeting-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('teams greeting', () => {
  it('greets a personal chat once for the two install activities, with what Crunch does, an example and every file type', async () => {
    const s = await stack({ script: {} });
    await s.ask(s.fixture('personal-installation-update'));
    await s.ask(s.fixture('personal-install'));
    await s.ask(s.fixture('personal-install'));
    const [greeting, ...more] = shownTexts(s.fake);
    expect(more).toEqual([]);
    expect(greeting).toMatch(/^👋 \*\*I'm Crunch\.\*\*/);
    expect(greeting).toContain('plot revenue by month and flag outliers');
    for (const ext of SUPPORTED_EXTENSIONS) expect(greeting).toMatch(new RegExp(`\\b${ext}\\b`));
    expect(s.fake.shown()[0]!.conversationId).toBe('a:1Tq0mJ3yXw8-personal-megan');
    expect(s.engine.calls).toEqual([]);
  });

  it('greets once across a restart on the same SQLite store', async () => {
    const storeUrl = `sqlite://${join(dir, 'crunch.sqlite')}`;
    const first = await startStack({ script: {}, storeUrl });
    await first.ask(first.fixture('personal-install'));
    expect(shownTexts(first.fake)).toHaveLength(1);
    await first.close();
    const second = await stack({ script: {}, storeUrl });
    await second.ask(second.fixture('personal-installation-update'));
    await second.ask(second.fixture('personal-install'));
    expect(second.fake.recorded).toEqual([]);
  });

  it('greets again after Crunch was removed and installed anew', async () => {
    const s = await stack({ script: {} });
    await s.ask(s.fixture('personal-install'));
    const removed = s.fixture('personal-installation-update');
    removed.action = 'remove';
    await s.ask(removed);
    await s.ask(s.fixture('personal-installation-update'));
    expect(shownTexts(s.fake)).toHaveLength(2);
  });

  it('greets no team, group chat, other member or refused tenant, and answers Teams 200 for all of them', async () => {
    const s = await stack({ script: {}, config: { allowedTenants: ['11111111-2222-4333-8444-555555555555'] } });
    const refusedTenant = s.fixture('personal-install');
    const team = s.fixture('personal-installation-update');
    team.conversation = { conversationType: 'channel', tenantId: TENANT, id: '19:c1a2b3c4d5e6f708@thread.tacv2' };
    const someoneElse = s.fixture('personal-install');
    someoneElse.membersAdded = [{ id: '29:someone-else' }];
    for (const activity of [refusedTenant, team, someoneElse]) expect((await s.send(activity)).status).toBe(200);
    await s.settle();
    expect(s.fake.recorded).toEqual([]);
  });

  it('tries again at the next install activity when the greeting could not be posted', async () => {
    const s = await stack({ script: {} });
    s.fake.failNext(1, { status: 400, body: { error: { code: 'BadArgument', message: 'refused' } } });
    await s.ask(s.fixture('personal-installation-update'));
    expect(shownTexts(s.fake)).toEqual([]);
    await s.ask(s.fixture('personal-install'));
    expect(shownTexts(s.fake)).toHaveLength(1);
  });
});
