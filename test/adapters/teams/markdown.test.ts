import { describe, expect, it } from 'vitest';
import {
  cleanIncomingText,
  decodeEntities,
  markdownBlocks,
  splitMarkdown,
  stripSandboxLinks,
  tableToCodeBlock,
  toTeamsMarkdown,
} from '../../../adapters/teams/markdown.js';

describe('cleanIncomingText', () => {
  it('removes the bot mention and keeps other mentions as @name', () => {
    expect(cleanIncomingText('<at>Crunch</at> ask <at>Alex Wilber</at> about Q3\n', ['<at>Crunch</at>'], 'Crunch')).toBe(
      'ask @Alex Wilber about Q3',
    );
  });

  it('removes every occurrence, and the display name when no entity matched', () => {
    expect(cleanIncomingText('<at>Crunch</at> hi <at>Crunch</at>', [], 'Crunch')).toBe('hi');
  });

  it('drops Teams HTML and decodes entities, but keeps a typed comparison', () => {
    expect(cleanIncomingText('<p>is x &lt; 3&nbsp;&amp; y > 2?</p><p>second</p>', [])).toBe('is x < 3 & y > 2?\nsecond');
    expect(cleanIncomingText('if a<b then', [])).toBe('if a<b then');
  });

  it('decodes numeric entities, and keeps those that are no Unicode character as written instead of throwing', () => {
    expect(decodeEntities('&#65;&#x1F600;&#X41;')).toBe('A😀A');
    expect(decodeEntities('a &#99999999; b')).toBe('a &#99999999; b');
    expect(decodeEntities('&#x110000;&#xD800;&#0;&#99999999999999999999999;')).toBe('&#x110000;&#xD800;&#0;&#99999999999999999999999;');
    expect(cleanIncomingText('<at>Crunch</at> what is &#99999999;?', ['<at>Crunch</at>'], 'Crunch')).toBe('what is &#99999999;?');
  });
});

describe('markdown tables', () => {
  const md = 'Totals:\n\n| Month | Revenue |\n|---|---:|\n| Jan | 1,200 |\n| **Feb** | 950 |\n\nDone.';

  it('finds pipe tables outside code fences', () => {
    expect(markdownBlocks(md)).toEqual([
      { type: 'text', text: 'Totals:' },
      { type: 'table', table: { header: ['Month', 'Revenue'], rows: [['Jan', '1,200'], ['**Feb**', '950']] } },
      { type: 'text', text: 'Done.' },
    ]);
    expect(markdownBlocks('```\n| a | b |\n|---|---|\n```')).toHaveLength(1);
  });

  it('renders a table as an aligned code block for text messages', () => {
    expect(tableToCodeBlock({ header: ['Month', 'Revenue'], rows: [['Jan', '1,200'], ['**Feb**', '950']] })).toBe(
      ['```', 'Month  Revenue', '-----  -------', 'Jan      1,200', 'Feb        950', '```'].join('\n'),
    );
    expect(toTeamsMarkdown(md)).toContain('```\nMonth  Revenue');
  });

  it('turns sandbox links into their label', () => {
    expect(stripSandboxLinks('See [the chart](sandbox:/mnt/data/chart.png) and ![x](/mnt/data/x.png).')).toBe('See the chart and x.');
  });
});

describe('splitMarkdown', () => {
  it('keeps short text whole', () => {
    expect(splitMarkdown('hello', 100)).toEqual(['hello']);
  });

  it('splits at paragraphs and never exceeds the limit', () => {
    const text = Array.from({ length: 40 }, (_, i) => `Paragraph ${i} ${'x'.repeat(40)}`).join('\n\n');
    const pieces = splitMarkdown(text, 300);
    expect(pieces.length).toBeGreaterThan(5);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(300);
    expect(pieces.join('\n\n').replace(/\n+/g, '\n')).toBe(text.replace(/\n+/g, '\n'));
  });

  it('closes and reopens a code fence cut in two', () => {
    const code = ['```python', ...Array.from({ length: 60 }, (_, i) => `print(${i})`), '```'].join('\n');
    const pieces = splitMarkdown(code, 200);
    expect(pieces.length).toBeGreaterThan(1);
    for (const p of pieces) {
      expect(p.length).toBeLessThanOrEqual(200);
      expect((p.match(/```/g) ?? []).length % 2).toBe(0);
    }
  });

  it('cuts a single enormous line', () => {
    const pieces = splitMarkdown('y'.repeat(1000), 300);
    expect(pieces.every((p) => p.length <= 300)).toBe(true);
    expect(pieces.join('')).toBe('y'.repeat(1000));
  });
});
