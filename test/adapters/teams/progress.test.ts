import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { receiveActivity } from '../../../adapters/teams/receive.js';
import type { DeliveryLedger, Json, Turn } from '../../../src/core/index.js';
import { textReply } from '../../../src/core/index.js';
import type { RecordedActivity, ShownMessage } from '../../fakes/teams.js';
import { fakePng, shownCards, shownTexts, startStack, type Stack } from './harness.js';

const PNG = fakePng(2000);

/**
 * What the person sees while a turn runs, and where its answer lands, with a scripted engine that waits until
 * each update has reached the fake Teams before reporting the next (as minutes of real code would): typing,
 * the progress in a Teams stream (personal chat) or in a status message edited in place, and then the answer
 * in that same message. The fake keeps what the chat shows, as Teams does: one message per answer.
 */

let s: Stack | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

const streamInfo = (r: RecordedActivity) => r.activity.entities?.find((e: { type: string }) => e.type === 'streaminfo');
/** Nothing the chat shows may still say it is working, or that it is done. */
const noProgressLeft = (shown: ShownMessage[]) => expect(JSON.stringify(shown.map((m) => m.activity))).not.toMatch(/⏳|✅|Done in|Stopped after/);

describe('teams progress, personal chat: one streamed message becomes the answer', () => {
  it('streams the statuses as informative updates, then the text, ends the stream with it, and edits it into the answer card', async () => {
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'status', text: 'reading sales.xlsx…' });
        await s!.fake.waitFor((r) => streamInfo(r)?.streamType === 'informative');
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => streamInfo(r)?.streamType === 'informative' && r.activity.text === 'running code…');
        input.progress({ type: 'text', delta: 'Revenue peaked ' });
        input.progress({ type: 'text', delta: 'in March.' });
        await s!.fake.waitFor((r) => streamInfo(r)?.streamType === 'streaming');
        return { text: 'Revenue peaked in March.', code: [{ code: 'df.groupby("month").sum()' }] };
      },
    });
    await s.ask(s.fixture('personal-text'));
    const recorded = s.fake.recorded;
    expect(recorded[0]!.activity.type).toBe('typing');
    // No status message: the statuses ride on the stream, which botbuilder 4.23.3's serializer would mangle (#4902).
    expect(s.fake.messages().filter((r) => streamInfo(r) === undefined)).toEqual([]);
    const chunks = recorded.filter((r) => r.activity.type === 'typing' && streamInfo(r) !== undefined);
    expect(chunks.map((r) => [streamInfo(r).streamType, streamInfo(r).streamSequence, r.activity.text])).toEqual([
      ['informative', 1, 'reading sales.xlsx…'],
      ['informative', 2, 'running code…'],
      ['streaming', 3, 'Revenue peaked in March.'],
    ]);
    const streamId = chunks[0]!.id!;
    expect(chunks.slice(1).map((r) => streamInfo(r).streamId)).toEqual([streamId, streamId]);
    expect(chunks[0]!.activity.channelData).toEqual({ streamType: 'informative', streamSequence: 1 });
    expect(chunks[0]!.authorization).toBe(`Bearer ${s.fake.issuedTokens[0]}`);

    const final = recorded.find((r) => streamInfo(r)?.streamType === 'final')!;
    expect(final.activity).toMatchObject({ type: 'message', text: 'Revenue peaked in March.', channelData: { streamId, streamType: 'final' } });
    expect(final.activity.attachments ?? []).toEqual([]);
    // Then the same message becomes the card, with "Show the code".
    expect(recorded.filter((r) => r.method === 'PUT').map((r) => r.activityId)).toEqual([streamId]);
    const shown = s.fake.shown();
    expect(shown.map((m) => m.id)).toEqual([streamId]);
    expect(shownTexts(s.fake)).toEqual(['Revenue peaked in March.']);
    expect(shownCards(s.fake)[0]!.actions[0].title).toBe('Show the code');
    noProgressLeft(shown);
  });

  it('ends the stream with a text-only answer and edits nothing', async () => {
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'text', delta: 'It is 4.' });
        await s!.fake.waitFor((r) => streamInfo(r)?.streamType === 'streaming');
        return { text: 'It is 4.' };
      },
    });
    await s.ask(s.fixture('personal-text'));
    expect(s.fake.recorded.filter((r) => r.method === 'PUT')).toEqual([]);
    expect(s.fake.shown().map((m) => [m.activity.text, m.stream])).toEqual([['It is 4.', 'final']]);
  });

  it('shows the statuses in a status message when Teams refuses the stream, and the answer replaces it', async () => {
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.activity.text === '⏳ running code…');
        input.progress({ type: 'text', delta: 'Partial' });
        return { text: 'Partial answer, completed.' };
      },
    });
    s.fake.refuseStreaming = true;
    await s.ask(s.fixture('personal-text'));
    expect(s.fake.failures.map((r) => streamInfo(r)?.streamType)).toEqual(['informative']);
    const shown = s.fake.shown();
    expect(shown.map((m) => m.history.map((h) => h.text))).toEqual([['⏳ running code…', 'Partial answer, completed.']]);
    expect(shown[0]!.activity.entities ?? []).toEqual([]);
  });

  it('keeps one message when the stream times out in a long run: statuses and the answer edit the stream in place', async () => {
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'status', text: 'reading sales.xlsx…' });
        await s!.fake.waitFor((r) => streamInfo(r)?.streamType === 'informative');
        s!.fake.expireStreams(); // two minutes later
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.status === 403);
        await s!.fake.waitFor((r) => r.method === 'PUT' && r.activity.text === '⏳ running code…');
        input.progress({ type: 'text', delta: 'Revenue peaked' });
        return { text: 'Revenue peaked in March.' };
      },
    });
    await s.ask(s.fixture('personal-text'));
    const shown = s.fake.shown();
    expect(shown).toHaveLength(1);
    expect(shown[0]!.history.map((h) => h.text)).toEqual(['reading sales.xlsx…', '⏳ running code…', 'Revenue peaked in March.']);
    noProgressLeft(shown);
  });

  it('edits a failed turn into its error message, in the stream that showed its progress', async () => {
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => streamInfo(r)?.streamType === 'informative');
        input.progress({ type: 'text', delta: 'The first half of an ans' });
        await s!.fake.waitFor((r) => streamInfo(r)?.streamType === 'streaming');
        return { fail: new Error('the sandbox crashed') };
      },
    });
    await s.ask(s.fixture('personal-text'));
    const shown = s.fake.shown();
    expect(shown).toHaveLength(1);
    expect(shown[0]!.activity.text).toMatch(/^⚠️ /);
    noProgressLeft(shown);
  });
});

describe('teams progress elsewhere: the status message becomes the answer', () => {
  // The Agents Playground rejects typing in a channel reply chain (setBotTypingStatus: "Invalid conversation
  // id …;messageid=…") and loses the message posted just after it; Teams shows no bot typing in channels.
  it.each(['channel-mention', 'channel-reply'])('sends no typing in a channel thread (%s); the status message, in the reply chain, becomes the answer', async (fixture) => {
    s = await startStack({
      config: { typingIntervalMs: 20 },
      script: async (input) => {
        input.progress({ type: 'status', text: 'reading the data…' });
        await s!.fake.waitFor((r) => r.activity.text === '⏳ reading the data…');
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.method === 'PUT' && r.activity.text === '⏳ running code…');
        await sleep(120); // several typing intervals, and well past the fallback
        return { text: 'The average is 6.', code: [{ code: 'print((3 + 5 + 10) / 3)', output: '6.0' }] };
      },
    });
    const activity = s.fixture(fixture);
    await s.ask(activity);
    expect(s.fake.recorded.filter((r) => r.activity.type === 'typing')).toEqual([]);
    expect(s.fake.recorded.some((r) => streamInfo(r) !== undefined)).toBe(false);
    const shown = s.fake.shown();
    expect(shown.map((m) => [m.conversationId, m.replyToId])).toEqual([[activity.conversation.id, activity.id]]);
    expect(shown[0]!.history.map((h) => h.text ?? 'card')).toEqual(['⏳ reading the data…', '⏳ running code…', 'card']);
    expect(shownTexts(s.fake)).toEqual(['The average is 6.']);
    noProgressLeft(shown);
  });

  it('keeps typing, repeated, in group chats, and answers in the status message', async () => {
    s = await startStack({
      config: { typingIntervalMs: 20 },
      script: async (input) => {
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.activity.type === 'typing' && s!.fake.recorded.filter((t) => t.activity.type === 'typing').length >= 2);
        return { text: '72 °F is 22.2 °C.' };
      },
    });
    await s.ask(s.fixture('group-chat'));
    expect(s.fake.recorded[0]!.activity.type).toBe('typing');
    expect(s.fake.recorded.filter((r) => r.activity.type === 'typing').length).toBeGreaterThanOrEqual(2);
    expect(shownTexts(s.fake)).toEqual(['72 °F is 22.2 °C.']);
  });

  it.each([
    ['deletes the status message', false, []],
    ['points the status message at it when Teams will not delete it either', true, ['⬇️ My answer is just below.']],
  ])('posts the answer below, and %s, when Teams will not edit it into the answer', async (_name, deleteRefused, left) => {
    s = await startStack({
      config: { streaming: false },
      script: async (input) => {
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.activity.text === '⏳ running code…');
        s!.fake.failNext(2, { status: 413, body: { error: { code: 'MessageSizeTooBig', message: 'Message size too big' } } }, 'PUT'); // the answer, and its smaller fallback
        if (deleteRefused) s!.fake.failNext(1, { status: 501, body: { error: { code: 'DeleteActivityAPINotImplemented', message: 'not implemented' } } }, 'DELETE');
        return { text: 'Here.', code: [{ code: 'print(1)' }], outputs: [{ name: 'chart.png', title: 'Chart', data: PNG }] };
      },
    });
    await s.ask(s.fixture('personal-text'));
    expect(s.fake.recorded.filter((r) => r.method === 'DELETE')).toHaveLength(deleteRefused ? 0 : 1);
    expect(shownTexts(s.fake)).toEqual([...left, 'Here.']);
    noProgressLeft(s.fake.shown());
  });

  it('says so in the status message when Teams takes the answer neither as an edit nor as a new message', async () => {
    s = await startStack({
      config: { streaming: false },
      script: async (input) => {
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.activity.text === '⏳ running code…');
        const tooBig = { status: 413, body: { error: { code: 'MessageSizeTooBig', message: 'Message size too big' } } };
        s!.fake.failNext(1, tooBig, 'PUT');
        s!.fake.failNext(1, tooBig, 'POST');
        return { text: 'Here.', code: [{ code: 'print(1)' }] };
      },
    });
    await s.ask(s.fixture('personal-text'));
    expect(shownTexts(s.fake)).toEqual([expect.stringContaining('Teams would not accept my answer message')]);
  });

  it('types within a second for a fresh turn even before the engine reports progress', async () => {
    let sentAt = 0;
    let typingAfterMs = Number.NaN;
    s = await startStack({
      script: async () => {
        await s!.fake.waitFor((r) => r.activity.type === 'typing', 1000);
        typingAfterMs = Date.now() - sentAt;
        return { text: 'Quietly done.' };
      },
    });
    sentAt = Date.now();
    await s.ask(s.fixture('personal-text'));
    expect(typingAfterMs).toBeLessThan(1000);
    expect(s.fake.recorded.map((r) => r.activity.type)).toEqual(['typing', 'message']);
  });
});

describe('teams progress across attempts and deliveries', () => {
  it('edits the message an interrupted attempt left into the answer, instead of posting another', async () => {
    s = await startStack({ script: {} });
    const received = receiveActivity(s.fixture('personal-text') as never);
    if (received.kind !== 'turn') throw new Error('not a turn');
    const ledger = memoryLedger();
    const first = s.adapter.platform.present(received.turn as Turn, ledger);
    first.progress({ type: 'status', text: 'running code…' });
    await s.fake.waitFor((r) => streamInfo(r)?.streamType === 'informative');
    await first.suspend(); // the process stops; another attempt resumes the turn
    const second = s.adapter.platform.present(received.turn as Turn, ledger);
    second.progress({ type: 'status', text: 'running code again…' });
    await s.fake.waitFor((r) => r.method === 'PUT' && r.activity.text === '⏳ running code again…');
    await second.deliver(textReply('answer', 'The answer, at last.'));
    await s.settle();
    const shown = s.fake.shown();
    expect(shown).toHaveLength(1);
    expect(shown[0]!.history.map((h) => h.text)).toEqual(['running code…', '⏳ running code again…', 'The answer, at last.']);
    // The second attempt never streams: a second stream would be a second message.
    expect(s.fake.recorded.filter((r) => streamInfo(r) !== undefined)).toHaveLength(1);
  });

  it('sends nothing at all, not even typing, for a resent activity while the first delivery runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'status', text: 'running code…' });
        await gate;
        return { text: 'Once.' };
      },
    });
    const activity = s.fixture('personal-text');
    let duplicateSent: typeof s.fake.recorded = [];
    try {
      expect((await s.send(activity)).status).toBe(200);
      await s.fake.waitFor((r) => r.activity.text === 'running code…');
      const before = s.fake.recorded.length;
      expect((await s.send(activity)).status).toBe(200);
      await sleep(700); // past the typing fallback
      duplicateSent = s.fake.recorded.slice(before);
    } finally {
      release();
      await s.settle();
    }
    expect(duplicateSent).toEqual([]);
    expect(s.fake.recorded.filter((r) => r.activity.type === 'typing' && streamInfo(r) === undefined)).toHaveLength(1);
    expect(shownTexts(s.fake)).toEqual(['Once.']);
  });

  it('sends nothing for a resent activity after the answer was posted', async () => {
    s = await startStack({ script: () => ({ text: 'Once.' }) });
    const activity = s.fixture('personal-text');
    await s.ask(activity);
    s.fake.reset();
    await s.ask(activity);
    await sleep(700);
    expect(s.fake.recorded).toEqual([]);
    expect(s.engine.calls).toHaveLength(1);
  });
});

/** A delivery ledger kept in memory, as the core keeps one per turn across its attempts. */
function memoryLedger(): DeliveryLedger {
  const memo: { [key: string]: Json } = {};
  const posted = new Set<string>();
  return {
    memo,
    remember: async (patch) => void Object.assign(memo, patch),
    posted: (part) => posted.has(part),
    markPosted: async (part) => void posted.add(part),
  };
}
