import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCore, DEDUPE_TTL_MS, JOINED_TTL_MS, openStorage, type Storage } from '../../../src/core/index.js';
import { createFakeEngine } from '../../fakes/engine.js';
import { type FakeMessage, messageText } from '../../fakes/slack.js';
import { memoryLogger } from '../../support/logger.js';
import { type Backend, fixture, type Harness, startHarness } from './harness.js';

/**
 * A person is greeted once in their DM with Crunch: when they first open its Messages tab (app_home_opened),
 * or at their first DM where that event is not subscribed. Once is remembered in the store, across events,
 * redeliveries and a restart on the same SQLite file.
 */

const DM = 'D0ALICE001';
type Payload = { event: Record<string, unknown> } & Record<string, unknown>;

let h: Harness | undefined;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crunch-slack-greeting-'));
});
afterEach(async () => {
  await h?.close();
  h = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** What Crunch posted at the top level of the DM (answers go in threads under the person's messages). */
const topLevel = (harness: Harness): FakeMessage[] => harness.fake.messages.filter((m) => m.channel === DM && m.thread_ts === undefined && !m.deleted);

function opened(harness: Harness, tab: 'messages' | 'home' = 'messages', eventId = 'Ev0HOME00001'): Payload {
  const payload = fixture<Payload>('app_home_opened', harness.fake);
  payload.event['tab'] = tab;
  payload['event_id'] = eventId;
  return payload;
}

describe('Slack greeting', () => {
  it('greets once when the Messages tab is opened, however often, with what Crunch does, an example and the file types', async () => {
    h = await startHarness();
    for (const [i, tab] of (['home', 'messages', 'messages', 'home', 'messages'] as const).entries()) expect((await h.deliver(opened(h, tab, `Ev0HOME0000${i}`))).status).toBe(200);
    await h.settle();
    const greetings = topLevel(h);
    expect(greetings).toHaveLength(1);
    const text = messageText(greetings[0]!);
    expect(text).toMatch(/^👋 \*I'm Crunch\.\*/);
    expect(text).toContain('plot revenue by month and flag outliers');
    expect(text).toContain('csv, docx');
    expect(h.engine.calls).toEqual([]);
  });

  it('greets at the first DM when the Messages tab event never came, and answers it in its thread; not again after', async () => {
    h = await startHarness();
    h.engine.script.push({ text: 'x = 1' }, { text: 'y = 2' });
    await h.deliver(fixture('message_im', h.fake));
    const second = fixture<Payload>('message_im', h.fake);
    second.event['ts'] = '1715000200.000300';
    second['event_id'] = 'Ev0DM000002';
    await h.deliver(second);
    await h.settle();
    expect(topLevel(h).map(messageText)).toEqual([expect.stringContaining("I'm Crunch.")]);
    expect(h.fake.thread(DM, '1715000100.000200').map(messageText)).toEqual(['x = 1']);
    expect(h.fake.thread(DM, '1715000200.000300').map(messageText)).toEqual(['y = 2']);
  });

  it('does not greet at the first DM someone greeted when they opened the Messages tab', async () => {
    h = await startHarness();
    await h.deliver(opened(h));
    await h.settle();
    await h.deliver(fixture('message_im', h.fake));
    await h.settle();
    expect(topLevel(h)).toHaveLength(1);
  });

  it('greets once across a restart on the same SQLite store', async () => {
    const url = `sqlite://${join(dir, 'crunch.sqlite')}`;
    const first = await sqliteBackend(url);
    h = await startHarness({}, first.backend);
    await h.deliver(opened(h));
    await h.settle();
    expect(topLevel(h)).toHaveLength(1);
    await h.close();
    h = undefined;
    await first.close();
    const second = await sqliteBackend(url);
    h = await startHarness({}, second.backend);
    await h.deliver(opened(h, 'messages', 'Ev0HOME00002'));
    await h.deliver(fixture('message_im', h.fake));
    await h.settle();
    expect(topLevel(h)).toEqual([]);
    await h.close();
    h = undefined;
    await second.close();
  });

  it('tries again at the next event when Slack refused the greeting', async () => {
    h = await startHarness();
    h.fake.fail({ method: 'chat.postMessage', error: 'fatal_error', when: (p) => p['thread_ts'] === undefined });
    await h.deliver(opened(h));
    await h.settle();
    expect(topLevel(h)).toEqual([]);
    await h.deliver(opened(h, 'messages', 'Ev0HOME00002'));
    await h.settle();
    expect(topLevel(h)).toHaveLength(1);
  });
});

/** A core on a SQLite file, as `crunch serve` has by default. */
async function sqliteBackend(url: string): Promise<{ backend: Backend; close: () => Promise<void> }> {
  const storage: Storage = await openStorage(url, { dedupeMs: DEDUPE_TTL_MS, joinedMs: JOINED_TTL_MS });
  const { logger, lines } = memoryLogger();
  const core = createCore({
    store: storage.store,
    inbox: storage.inbox,
    engine: createFakeEngine(),
    limits: { maxFileBytes: 1024 * 1024, maxFilesPerTurn: 5, turnTimeoutMs: 60_000 },
    logger,
    concurrency: 4,
  });
  core.start();
  return {
    backend: { core, store: storage.store, logs: lines },
    async close() {
      await core.stop(0);
      await storage.close();
    },
  };
}
