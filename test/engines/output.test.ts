import { describe, expect, it } from 'vitest';
import { cleanText, StreamedTextCleaner, titleFor } from '../../src/engines/shared/answer.js';

describe('answer text', () => {
  it('titles charts from their file names, and displayed images as "Chart"', () => {
    expect(titleFor('revenue_by-month.png')).toBe('Revenue by month');
    expect(titleFor('cfile_6889a3b1c2d48191a1b2c3d4e5f6a7b8.png')).toBe('Chart');
  });

  it('replaces sandbox links: images dropped, files named', () => {
    expect(cleanText('See ![chart](sandbox:/mnt/data/a.png)\nand [the table](sandbox:/mnt/data/t.csv).')).toBe('See and **the table**.');
    expect(cleanText('A [normal link](https://example.com) stays.')).toBe('A [normal link](https://example.com) stays.');
  });

  const sample = [
    'Revenue peaks in **March** ([details](https://example.com/a)).',
    '![Revenue by month](sandbox:/mnt/data/revenue.png)',
    'Download [outliers.csv](sandbox:/mnt/data/outliers.csv) or see [x] and a[1] index, then [y](z).',
    '| a | b |\n|---|---|\n| [1] | 2 |',
  ].join('\n');
  const whole = (text: string) => {
    const c = new StreamedTextCleaner();
    return c.push(text) + c.flush();
  };

  it('cleans streamed text the same however the deltas are cut', () => {
    const expected = whole(sample);
    expect(expected).not.toContain('sandbox:');
    for (let i = 0; i <= sample.length; i++) {
      for (let j = i; j <= sample.length; j += 7) {
        const c = new StreamedTextCleaner();
        const out = c.push(sample.slice(0, i)) + c.push(sample.slice(i, j)) + c.push(sample.slice(j)) + c.flush();
        expect(out, `cut at ${i}, ${j}`).toBe(expected);
      }
    }
  });

  it('never shows a sandbox link while streaming, one character at a time', () => {
    const c = new StreamedTextCleaner();
    let shown = '';
    for (const ch of sample) {
      shown += c.push(ch);
      expect(shown).not.toContain('sandbox:');
    }
    expect(shown + c.flush()).toBe(whole(sample));
  });

  it('does not hold text back for long after a bracket that starts no link', () => {
    const c = new StreamedTextCleaner();
    expect(c.push('an array a[')).toBe('an array a');
    expect(c.push('1] is fine')).toBe('[1] is fine');
    expect(c.push(` [${'x'.repeat(500)}`)).toBe(` [${'x'.repeat(500)}`);
  });
});
