import { describe, expect, it } from 'vitest';
import { codeActivity, renderReply, sizeOf } from '../../../adapters/teams/render.js';
import { retryAfterMs } from '../../../adapters/teams/send.js';
import { sign, verify } from '../../../adapters/teams/signed-urls.js';
import { textReply, type Reply } from '../../../src/core/index.js';
import { fakePng } from './harness.js';

const BUDGET = 40 * 1024;
const host = async (file: { name: string }) => `https://crunch.example/files/${file.name}`;

function reply(over: Partial<Reply>): Reply {
  return { ...textReply('answer', ''), ...over };
}

describe('renderReply', () => {
  it('puts notices before the answer, as markdown text', async () => {
    const out = await renderReply(reply({ text: 'All good.', notices: ['*a.rar* skipped: no.'] }), { maxMessageBytes: BUDGET, host });
    expect(out).toHaveLength(1);
    expect(out[0]!.activity).toMatchObject({ type: 'message', textFormat: 'markdown', text: '> ⚠️ *a.rar* skipped: no.\n\nAll good.' });
  });

  it('renders an answer with a table as an Adaptive Card table, or as text when streamed', async () => {
    const r = reply({ text: 'Totals\n\n| a | b |\n|---|---|\n| 1 | 2 |' });
    const [asCard] = await renderReply(r, { maxMessageBytes: BUDGET, host });
    const content = (asCard!.activity.attachments![0]!.content as { body: Array<{ type: string }> });
    expect(content.body.map((e) => e.type)).toEqual(['TextBlock', 'Table']);
    const [asText] = await renderReply(r, { maxMessageBytes: BUDGET, host, textOnly: true });
    expect(asText!.activity.text).toContain('```\na  b');
  });

  it('splits a long answer into messages that each fit', async () => {
    const text = Array.from({ length: 400 }, (_, i) => `Line ${i}: ${'lorem ipsum '.repeat(10)}`).join('\n\n');
    const out = await renderReply(reply({ text }), { maxMessageBytes: BUDGET, host });
    expect(out.length).toBeGreaterThan(2);
    for (const m of out) expect(sizeOf(m.activity) * 2).toBeLessThan(BUDGET);
  });

  it('inlines a small chart with a by-URL fallback, and hosts a big one', async () => {
    const [, small] = await renderReply(reply({ text: 'x', images: [{ title: 'Small', name: 's.png', png: fakePng(1000) }] }), { maxMessageBytes: BUDGET, host });
    expect(JSON.stringify(small!.activity)).toContain('data:image/png;base64,');
    expect(JSON.stringify(await small!.fallback!())).toContain('https://crunch.example/files/s.png');
    const [, big] = await renderReply(reply({ text: 'x', images: [{ title: 'Big', name: 'b.png', png: fakePng(35_000) }] }), { maxMessageBytes: BUDGET, host });
    expect(JSON.stringify(big!.activity)).toContain('https://crunch.example/files/b.png');
    expect(sizeOf(big!.activity)).toBeLessThan(BUDGET);
  });

  it('puts files in one message of links, or one offered message per file (personal chat)', async () => {
    const files = [
      { name: 'a.csv', mimeType: 'text/csv', data: Buffer.from('a\n1\n') },
      { name: 'b.json', mimeType: 'application/json', data: Buffer.from('{}') },
    ];
    const [, links] = await renderReply(reply({ text: 'x', files }), { maxMessageBytes: BUDGET, host });
    expect(links!.activity.text).toBe('📎 **Your files** (links stay valid for a limited time):\n\n- [a.csv](https://crunch.example/files/a.csv) (4 bytes)\n- [b.json](https://crunch.example/files/b.json) (2 bytes)');
    const offer = async (file: { name: string }) => ({ part: 'files' as const, activity: { type: 'message', summary: file.name } });
    const offered = await renderReply(reply({ text: 'x', files }), { maxMessageBytes: BUDGET, host, offer });
    expect(offered.slice(1).map((m) => m.activity.summary)).toEqual(['a.csv', 'b.json']);
  });

  it('trims the code card to fit the budget', () => {
    const activity = codeActivity([{ code: 'x = 1\n'.repeat(20_000), output: 'ok' }], BUDGET);
    expect(sizeOf(activity)).toBeLessThan(BUDGET);
    expect(JSON.stringify(activity)).toContain('more line');
  });

  it('marks an error reply', async () => {
    const [m] = await renderReply({ ...textReply('error', 'The engine is down.'), error: { code: 'engine_unavailable' } }, { maxMessageBytes: BUDGET, host });
    expect(m!.activity.text).toBe('⚠️ The engine is down.');
  });
});

describe('signed links and Retry-After', () => {
  it('verifies signature and expiry with an injected clock', () => {
    const exp = 2_000_000_000;
    const sig = sign('secret', 'id-1', exp);
    expect(verify('secret', 'id-1', String(exp), sig, exp * 1000 - 1)).toBe('ok');
    expect(verify('secret', 'id-1', String(exp), sig, exp * 1000 + 1)).toBe('expired');
    expect(verify('secret', 'id-2', String(exp), sig, 0)).toBe('bad_signature');
    expect(verify('other', 'id-1', String(exp), sig, 0)).toBe('bad_signature');
    expect(verify('secret', 'id-1', null, sig, 0)).toBe('bad_signature');
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs('Thu, 01 Jan 1970 00:00:10 GMT', 4000)).toBe(6000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});
