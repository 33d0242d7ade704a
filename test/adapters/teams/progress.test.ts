import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './harness.js';

/**
 * What the user sees while a turn runs, with a scripted engine that waits until each update has reached
 * the fake Teams before reporting the next (as minutes of real code would): typing, the status message
 * edited in place, and the answer streamed with Teams' streaming protocol in personal chat.
 */

let s: Stack | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

describe('teams progress', () => {
  it('shows typing, edits one status message, streams the answer and ends the stream with the final message', async () => {
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'status', text: 'reading sales.xlsx…' });
        await s!.fake.waitFor((r) => r.activity.text === '⏳ reading sales.xlsx…');
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.method === 'PUT' && r.activity.text === '⏳ running code…');
        input.progress({ type: 'text', delta: 'Revenue peaked ' });
        input.progress({ type: 'text', delta: 'in March.' });
        await s!.fake.waitFor((r) => r.activity.entities?.[0]?.type === 'streaminfo');
        return { text: 'Revenue peaked in March.' };
      },
    });
    await s.ask(s.fixture('personal-text'));
    const recorded = s.fake.recorded;
    expect(recorded[0]!.activity.type).toBe('typing');

    const status = recorded.find((r) => r.method === 'POST' && String(r.activity.text).startsWith('⏳'))!;
    expect(status.activity.text).toBe('⏳ reading sales.xlsx…');
    const edits = recorded.filter((r) => r.method === 'PUT' && r.activityId === status.id).map((r) => r.activity.text);
    expect(edits[0]).toBe('⏳ running code…');
    expect(edits.at(-1)).toMatch(/^✅ Done in \d+ s$/);

    // The entity keeps streamType/streamSequence: sent around botbuilder 4.23.3's serializer (#4902).
    const chunk = recorded.find((r) => r.activity.type === 'typing' && r.activity.entities?.[0]?.type === 'streaminfo')!;
    expect(chunk.activity.entities[0]).toEqual({ type: 'streaminfo', streamType: 'streaming', streamSequence: 1 });
    expect(chunk.activity.channelData).toEqual({ streamType: 'streaming', streamSequence: 1 });
    expect(chunk.activity.text).toBe('Revenue peaked in March.');
    expect(chunk.authorization).toBe(`Bearer ${s.fake.issuedTokens[0]}`);

    const final = recorded.find((r) => r.activity.entities?.[0]?.streamType === 'final')!;
    expect(final.activity.type).toBe('message');
    expect(final.activity.entities[0]).toEqual({ type: 'streaminfo', streamId: chunk.id, streamType: 'final' });
    expect(final.activity.channelData).toEqual({ streamId: chunk.id, streamType: 'final' });
    expect(final.activity.text).toBe('Revenue peaked in March.');
    // The final message replaces the stream: the answer is not posted a second time.
    expect(s.fake.messages().filter((r) => r.activity.text === 'Revenue peaked in March.')).toHaveLength(1);
  });

  it('posts the answer as a regular message when Teams refuses the stream', async () => {
    s = await startStack({
      script: async (input) => {
        input.progress({ type: 'text', delta: 'Partial' });
        await s!.fake.waitFor((r) => r.status === 403);
        return { text: 'Partial answer, completed.' };
      },
    });
    s.fake.refuseStreaming = true;
    await s.ask(s.fixture('personal-text'));
    expect(s.fake.failures.map((r) => r.activity.entities?.[0]?.streamType)).toEqual(['streaming']);
    const answer = s.fake.messages().at(-1)!;
    expect(answer.activity.text).toBe('Partial answer, completed.');
    expect(answer.activity.entities ?? []).toEqual([]);
  });

  it('does not stream in channels', async () => {
    s = await startStack({
      script: (input) => {
        input.progress({ type: 'text', delta: 'The average is 6.' });
        return { text: 'The average is 6.' };
      },
    });
    await s.ask(s.fixture('channel-mention'));
    expect(s.fake.recorded.some((r) => JSON.stringify(r.activity).includes('streaminfo'))).toBe(false);
    expect(s.fake.messages().at(-1)!.activity.text).toBe('The average is 6.');
  });

  // The Agents Playground rejects typing in a channel reply chain (setBotTypingStatus: "Invalid conversation
  // id …;messageid=…") and loses the message posted just after it; Teams shows no bot typing in channels.
  it.each(['channel-mention', 'channel-reply'])('sends no typing activity in a channel thread (%s), only the status and the answer', async (fixture) => {
    s = await startStack({
      config: { typingIntervalMs: 20 },
      script: async (input) => {
        input.progress({ type: 'status', text: 'running code…' });
        await s!.fake.waitFor((r) => r.activity.text === '⏳ running code…');
        await sleep(120); // several typing intervals, and well past the fallback
        return { text: 'The average is 6.' };
      },
    });
    const activity = s.fixture(fixture);
    await s.ask(activity);
    expect(s.fake.recorded.filter((r) => r.activity.type === 'typing')).toEqual([]);
    const posted = s.fake.messages().map((r) => [r.conversationId, r.replyToId, r.activity.text]);
    expect(posted).toEqual([
      [activity.conversation.id, activity.id, '⏳ running code…'],
      [activity.conversation.id, activity.id, 'The average is 6.'],
    ]);
  });

  it('keeps typing, repeated, in group chats', async () => {
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
    expect(s.fake.messages().at(-1)!.activity.text).toBe('72 °F is 22.2 °C.');
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
      await s.fake.waitFor((r) => r.activity.text === '⏳ running code…');
      const before = s.fake.recorded.length;
      expect((await s.send(activity)).status).toBe(200);
      await sleep(700); // past the typing fallback
      duplicateSent = s.fake.recorded.slice(before);
    } finally {
      release();
      await s.settle();
    }
    expect(duplicateSent).toEqual([]);
    expect(s.fake.recorded.filter((r) => r.activity.type === 'typing')).toHaveLength(1);
    expect(s.fake.messages().filter((r) => r.activity.text === 'Once.')).toHaveLength(1);
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
