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
});
