import { afterEach, describe, expect, it } from 'vitest';
import { sizeOf } from '../../../adapters/teams/render/activity.js';
import type { Activity } from 'botbuilder';
import { codeAction, planReply, renderReply } from '../../../adapters/teams/render/cards.js';
import { CHUNK_BYTES, createFileHost, sign, verify } from '../../../adapters/teams/files/signed-urls.js';
import { openStorage, readOutput, type Reply, type ReplyOutput, textReply } from '../../../src/core/index.js';
import { startServer } from '../../../src/server/index.js';
import { memoryLogger } from '../../support/logger.js';
import { outputOf } from '../../support/outputs.js';
import { fakePng, shownCards, shownTexts, startStack, type Stack } from './harness.js';

const BUDGET = 40 * 1024;
const host = async (file: ReplyOutput) => ({ url: `https://crunch.example/files/${file.name}`, size: (await readOutput(file, 1 << 30)).length });

function reply(over: Partial<Reply>): Reply {
  return { ...textReply('answer', ''), ...over };
}

const cardOf = (activity: Partial<Activity>) => activity.attachments![0]!.content as Record<string, any>;
const types = (elements: Array<{ type: string }>) => elements.map((e) => e.type);

describe('renderReply', () => {
  it('puts notices before the answer, as markdown text', async () => {
    const out = await renderReply(reply({ text: 'All good.', notices: ['*a.rar* skipped: no.'] }), { maxMessageBytes: BUDGET, host });
    expect(out).toHaveLength(1);
    expect(out[0]!.activity).toMatchObject({ type: 'message', textFormat: 'markdown', text: '> ⚠️ *a.rar* skipped: no.\n\nAll good.' });
  });

  it('holds the whole answer in one card: notices, text, table, chart, file links and "Show the code"', async () => {
    const r = reply({
      text: 'Totals\n\n| a | b |\n|---|---|\n| 1 | 2 |',
      notices: ['*a.rar* skipped: no.'],
      images: [outputOf('chart.png', fakePng(1000), 'image/png', 'Revenue by month')],
      files: [outputOf('table.csv', 'a,b\n1,2\n', 'text/csv')],
      code: [{ code: 'df.plot()', output: 'ok' }],
    });
    const out = await renderReply(r, { maxMessageBytes: BUDGET, host });
    expect(out.map((m) => m.part)).toEqual(['answer']);
    const card = cardOf(out[0]!.activity);
    expect(types(card.body)).toEqual(['TextBlock', 'TextBlock', 'Table', 'Image', 'TextBlock']);
    expect(card.body[0].text).toBe('⚠️ *a.rar* skipped: no.');
    expect(card.body[3]).toMatchObject({ altText: 'Revenue by month', url: expect.stringMatching(/^data:image\/png;base64,/) });
    expect(card.body[4].text).toContain('[table.csv](https://crunch.example/files/table.csv)');
    expect(card.actions.map((a: { title: string }) => a.title)).toEqual(['Show the code']);
    // The chart carries its own title: no heading repeats it.
    expect(JSON.stringify(card.body)).not.toContain('"text":"Revenue by month"');
    expect(out[0]!.activity.text).toBeUndefined();
  });

  it('plans the table as text for a stream to end with, and the card as the answer', () => {
    const plan = planReply(reply({ text: 'Totals\n\n| a | b |\n|---|---|\n| 1 | 2 |' }), { maxMessageBytes: BUDGET, host });
    expect(plan.text).toContain('```\na  b');
    expect(plan.answerIsText).toBe(false);
    expect(planReply(reply({ text: 'Just words.' }), { maxMessageBytes: BUDGET, host }).answerIsText).toBe(true);
  });

  it('splits a long answer into messages that each fit', async () => {
    const text = Array.from({ length: 400 }, (_, i) => `Line ${i}: ${'lorem ipsum '.repeat(10)}`).join('\n\n');
    const out = await renderReply(reply({ text }), { maxMessageBytes: BUDGET, host });
    expect(out.length).toBeGreaterThan(2);
    for (const m of out) expect(sizeOf(m.activity) * 2).toBeLessThan(BUDGET);
  });

  it('follows a text too long for one message with one card of its charts and code', async () => {
    const text = Array.from({ length: 400 }, (_, i) => `Line ${i}: ${'lorem ipsum '.repeat(10)}`).join('\n\n');
    const out = await renderReply(reply({ text, images: [outputOf('c.png', fakePng(1000), 'image/png', 'C')], code: [{ code: 'x = 1' }] }), { maxMessageBytes: BUDGET, host });
    expect(out.map((m) => m.part)).toEqual(['answer', ...out.slice(1, -1).map(() => 'text'), 'extras']);
    const extras = cardOf(out.at(-1)!.activity);
    expect(types(extras.body)).toEqual(['Image']);
    expect(extras.actions[0].title).toBe('Show the code');
    for (const m of out) expect(sizeOf(m.activity)).toBeLessThan(BUDGET);
  });

  it('inlines a small chart, with the chart by URL as the fallback, and hosts a big one', async () => {
    const [small] = await renderReply(reply({ text: 'x', images: [outputOf('s.png', fakePng(1000), 'image/png', 'Small')] }), { maxMessageBytes: BUDGET, host });
    expect(JSON.stringify(small!.activity)).toContain('data:image/png;base64,');
    expect(JSON.stringify(await small!.fallback!())).toContain('https://crunch.example/files/s.png');
    const [big] = await renderReply(reply({ text: 'x', images: [outputOf('b.png', fakePng(35_000), 'image/png', 'Big')] }), { maxMessageBytes: BUDGET, host });
    expect(JSON.stringify(big!.activity)).toContain('https://crunch.example/files/b.png');
    expect(big!.fallback).toBeUndefined();
    expect(sizeOf(big!.activity)).toBeLessThan(BUDGET);
  });

  it('keeps a chart inline by trimming a long code, and goes by URL rather than trim it to nothing', async () => {
    const code = [{ code: Array.from({ length: 2000 }, (_, i) => `v_${i} = ${i} * 2`).join('\n') }];
    const [answer] = await renderReply(reply({ text: 'x', images: [outputOf('s.png', fakePng(12_000), 'image/png', 'S')], code }), { maxMessageBytes: BUDGET, host });
    expect(JSON.stringify(answer!.activity)).toContain('data:image/png;base64,');
    expect(sizeOf(answer!.activity)).toBeLessThan(BUDGET);
    const [crowded] = await renderReply(reply({ text: 'x', images: [outputOf('b.png', fakePng(28_000), 'image/png', 'B')], code }), { maxMessageBytes: BUDGET, host });
    expect(JSON.stringify(crowded!.activity)).toContain('https://crunch.example/files/b.png');
    expect(sizeOf(crowded!.activity)).toBeLessThan(BUDGET);
  });

  it('puts file links in the card, or one offered message per file after it (personal chat)', async () => {
    const files = [outputOf('a.csv', 'a\n1\n', 'text/csv'), outputOf('b.json', '{}', 'application/json')];
    const [linked] = await renderReply(reply({ text: 'x', files }), { maxMessageBytes: BUDGET, host });
    expect(cardOf(linked!.activity).body.at(-1).text).toBe(
      '📎 **Your files** (links stay valid for a limited time):\n\n- [a.csv](https://crunch.example/files/a.csv) (4 bytes)\n- [b.json](https://crunch.example/files/b.json) (2 bytes)',
    );
    const offer = async (file: { name: string }) => ({ part: 'files' as const, activity: { type: 'message', summary: file.name } });
    const offered = await renderReply(reply({ text: 'x', files }), { maxMessageBytes: BUDGET, host, offer });
    expect(offered.map((m) => m.activity.summary ?? m.activity.text)).toEqual(['x', 'a.csv', 'b.json']);
  });

  it('says which chart could not be attached, in the same card', async () => {
    const gone: ReplyOutput = { ...outputOf('gone.png', fakePng(100_000), 'image/png', 'Gone'), open: async () => Promise.reject(new Error('expired')) };
    const failing = async (file: ReplyOutput) => (file.name === 'gone.png' ? Promise.reject(Object.assign(new Error('x'), { userMessage: '**gone.png** is no longer available.' })) : host(file));
    const [answer] = await renderReply(reply({ text: 'x', images: [gone, outputOf('ok.png', fakePng(500), 'image/png', 'Ok')] }), { maxMessageBytes: BUDGET, host: failing });
    const card = cardOf(answer!.activity);
    expect(types(card.body)).toEqual(['TextBlock', 'Image', 'TextBlock']);
    expect(card.body[2].text).toBe('⚠️ **gone.png** is no longer available.');
  });

  it('trims the code to fit the budget', async () => {
    const [answer] = await renderReply(reply({ text: 'x', code: [{ code: 'x = 1\n'.repeat(20_000), output: 'ok' }] }), { maxMessageBytes: BUDGET, host });
    expect(sizeOf(answer!.activity)).toBeLessThan(BUDGET);
    expect(JSON.stringify(answer!.activity)).toContain('more line');
  });

  it('marks an error reply, as text', async () => {
    const [m] = await renderReply(reply({ ...textReply('error', 'The engine is down.'), error: { code: 'engine_unavailable' } }), { maxMessageBytes: BUDGET, host });
    expect(m!.activity.text).toBe('⚠️ The engine is down.');
  });
});

/** The text a client without CodeBlock support shows: the fallback's lines, no-break spaces as spaces. */
function fallbackText(element: Record<string, any>): string {
  expect(element.type).toBe('Container');
  return (element.items as Array<Record<string, any>>)
    .map((item) => {
      expect(item).toMatchObject({ type: 'RichTextBlock', spacing: 'None' });
      expect(item.inlines).toHaveLength(1);
      expect(item.inlines[0]).toMatchObject({ type: 'TextRun', fontType: 'Monospace' });
      return String(item.inlines[0].text).replaceAll('\u00a0', ' ').trimEnd();
    })
    .join('\n');
}

describe('the "Show the code" card without CodeBlock support', () => {
  let s: Stack | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  const code = [
    'import pandas as pd',
    '',
    'def summarise(df, **kwargs):',
    '    """Totals by __month__."""',
    '    for col in df.columns:',
    '        print(col, df[col].sum() * 2)',
    '    return df',
  ].join('\n');
  const output = ['   month  revenue', '0    Jan      120', '1    Feb      135'].join('\n');

  it('keeps every line, its indentation and its characters, in the code and in its output', async () => {
    s = await startStack({ script: () => ({ text: 'All of it.', code: [{ code, output }] }) });
    await s.ask(s.fixture('personal-text'));
    const card = shownCards(s.fake).find((c) => c.actions?.[0]?.title === 'Show the code')!;
    expect(shownTexts(s.fake)).toEqual(['All of it.']);
    const body = card.actions[0].card.body as Array<Record<string, any>>;
    const block = body.find((e) => e.type === 'CodeBlock')!;
    expect(block.codeSnippet).toBe(code);
    expect(fallbackText(block.fallback)).toBe(code);
    // Blank lines keep their height (a no-break space), indentation is made of no-break spaces.
    expect(block.fallback.items[1].inlines[0].text).toBe('\u00a0');
    expect(block.fallback.items[4].inlines[0].text).toBe(`${'\u00a0'.repeat(4)}for col in df.columns:`);
    const outputIndex = body.findIndex((e) => e.type === 'TextBlock' && e.text === 'Output');
    expect(fallbackText(body[outputIndex + 1]!)).toBe(output);
  });

  it('caps the fallback of long code with a note, and the card still fits', () => {
    const long = Array.from({ length: 500 }, (_, i) => `total_${i} = ${i} * 2`).join('\n');
    const action = codeAction([{ code: long, output: Array.from({ length: 300 }, (_, i) => `row ${i}`).join('\n') }], 20_000);
    expect(sizeOf(action)).toBeLessThan(BUDGET);
    const body = (action as Record<string, any>).card.body as Array<Record<string, any>>;
    const block = body.find((e) => e.type === 'CodeBlock')!;
    const lines = fallbackText(block.fallback).split('\n');
    expect(lines.length).toBeLessThan(200);
    expect(lines[0]).toBe('total_0 = 0 * 2');
    expect(lines.at(-1)).toMatch(/^… \(\d+ more lines not shown\)$/);
    expect(fallbackText(body.at(-1)!).split('\n').at(-1)).toMatch(/more lines not shown/);
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
});

describe('files kept behind signed links', () => {
  async function hostOn() {
    const storage = await openStorage('memory://', { dedupeMs: 1000, joinedMs: 1000 });
    const files = createFileHost({ store: storage.store, publicUrl: 'http://127.0.0.1', secret: 's', ttlMs: 60_000, now: Date.now, logger: memoryLogger().logger });
    const server = await startServer({ port: 0, host: '127.0.0.1', routes: [files.route], logger: memoryLogger().logger });
    const get = (url: string) => fetch(url.replace('http://127.0.0.1', server.url));
    const close = async () => {
      await server.close();
      await storage.close();
    };
    return { files, get, close };
  }

  it('serves a generated SVG (or HTML) as a download that can run nothing, and a PNG inline', async () => {
    const h = await hostOn();
    try {
      const svg = await h.files.put(outputOf('evil.svg', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'image/svg+xml'));
      const response = await h.get(svg.url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename\*=UTF-8''evil\.svg$/);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
      expect(await response.text()).toContain('<script>');
      const png = await h.files.put(outputOf('chart.png', fakePng(500), 'image/png'));
      expect((await h.get(png.url)).headers.get('content-disposition')).toMatch(/^inline;/);
    } finally {
      await h.close();
    }
  });

  it('keeps and serves a file of several chunks byte for byte, and reports its size', async () => {
    const h = await hostOn();
    try {
      const data = Buffer.alloc(CHUNK_BYTES * 2 + 12_345, 7);
      data.write('start');
      data.write('end', data.length - 3);
      const kept = await h.files.put(outputOf('big.bin', data, 'application/octet-stream'));
      expect(kept.size).toBe(data.length);
      const served = Buffer.from(await (await h.get(kept.url)).arrayBuffer());
      expect(served.equals(data)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
