import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { RecordedActivity } from '../../fakes/teams.js';
import { shownTexts, stacksClosedAfterEach } from './harness.js';

/**
 * Turns of one conversation are answered in the order Teams delivered them, and the messages of one answer are
 * never interleaved with the next turn's, however long a turn takes to prepare (Graph lookups) or to post.
 */

const XLSX = await readFile(new URL('../../fixtures/files/sales.xlsx', import.meta.url));
const CHANNEL = '19:c1a2b3c4d5e6f708@thread.tacv2';

const stack = stacksClosedAfterEach();

/** Which user message each connector call belongs to: POSTs reply to it, PUTs edit a message that did. */
function turnsOf(recorded: RecordedActivity[]): string[] {
  const byId = new Map(recorded.filter((r) => r.id !== undefined).map((r) => [r.id!, r]));
  return recorded.map((r) => (r.method === 'POST' ? r.replyToId : byId.get(r.activityId ?? '')?.replyToId) ?? '?');
}

describe('teams ordering', () => {
  it('answers two quick mentions in one thread in order, the slower-to-prepare first, without interleaving', async () => {
    const s = await stack({
      config: { graphFiles: true },
      script: async (input) => {
        input.progress({ type: 'status', text: `working on: ${input.text}` });
        await s.fake.waitFor((r) => r.activity.text === `⏳ working on: ${input.text}`);
        return {
          text: `answer to: ${input.text}`,
          code: [{ code: 'print(1)', output: '1' }],
          outputs: [{ name: 'out.csv', mimeType: 'text/csv', data: 'a\n1\n' }],
        };
      },
    });
    // Every connector call takes a while, so a turn that posted while another delivers would land in between.
    s.fake.connectorDelayMs = 25;
    const first = s.fixture('channel-file-link');
    s.fake.hostGraphMessage(`/teams/${s.fake.teamAadGroupId}/channels/${CHANNEL}/messages/${first.id}`, [{ name: 'Q3 budget.xlsx', bytes: XLSX }]);
    const second = s.fixture('channel-reply');
    second.id = String(Number(first.id) + 500);
    second.replyToId = first.id;
    second.conversation.id = `${CHANNEL};messageid=${first.id}`;

    // The first mention's channel file is looked up through Graph, which is slow this time.
    const release = s.fake.holdGraph();
    try {
      expect((await s.send(first)).status).toBe(200);
      expect((await s.send(second)).status).toBe(200);
      await sleep(400);
      // The second mention waits for the first, which waits for Graph.
      expect(s.fake.recorded).toEqual([]);
    } finally {
      release();
    }
    await s.settle();

    expect(s.engine.calls.map((c) => [c.text, c.files.map((f) => f.name)])).toEqual([
      ['summarise Q3 budget.xlsx please', ['Q3 budget.xlsx']],
      ['and the median?', []],
    ]);
    const turns = turnsOf(s.fake.recorded);
    expect(turns).not.toContain('?');
    const firstCount = turns.filter((t) => t === first.id).length;
    // The status message and its edit into the answer (text, code, file link) for each turn: all of the first, then all of the second.
    expect(firstCount).toBe(2);
    expect(turns).toEqual([...Array(firstCount).fill(first.id), ...Array(turns.length - firstCount).fill(second.id)]);
    expect(shownTexts(s.fake).map((t) => t.split('\n')[0])).toEqual(['answer to: summarise Q3 budget.xlsx please', 'answer to: and the median?']);
  });
});
