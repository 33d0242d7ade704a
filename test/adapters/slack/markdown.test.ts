import { describe, expect, it } from 'vitest';
import { defuseMentions, escapeSlack, markdownToSlack, portableFileName, slackToPlainText, splitSlackText } from '../../../adapters/slack/markdown.js';

const ZWSP = '\u200B';

describe('markdownToSlack', () => {
  it('turns bold, italic, strike and headings into mrkdwn', () => {
    expect(markdownToSlack('Some **bold**, *italic*, _also italic_ and ~~gone~~.')).toBe('Some *bold*, _italic_, _also italic_ and ~gone~.');
    expect(markdownToSlack('***both*** and __bold__')).toBe('*_both_* and *bold*');
    expect(markdownToSlack('## Results for **Q1**')).toBe('*Results for Q1*');
    expect(markdownToSlack('*italic with **bold** inside*')).toBe('_italic with *bold* inside_');
  });

  it('leaves lone asterisks and underscores inside words alone', () => {
    expect(markdownToSlack('2 * 3 * 4 = 24, see snake_case_name and a_b')).toBe('2 * 3 * 4 = 24, see snake_case_name and a_b');
  });

  it('adds zero-width spaces where Slack would not see a word boundary', () => {
    expect(markdownToSlack('Total**2024**年')).toBe(`Total${ZWSP}*2024*${ZWSP}年`);
  });

  it('escapes & < > everywhere, so an answer cannot ping a channel or fake a link', () => {
    expect(markdownToSlack('AT&T <b>bold</b> 3 < 4 > 2 <!channel> <@U123>')).toBe(
      'AT&amp;T &lt;b&gt;bold&lt;/b&gt; 3 &lt; 4 &gt; 2 &lt;!channel&gt; &lt;@U123&gt;',
    );
    expect(escapeSlack('a & b')).toBe('a &amp; b');
  });

  it('converts links, autolinks and bare URLs, and drops sandbox links the engine attaches instead', () => {
    expect(markdownToSlack('[the docs](https://example.com/a?x=1&y=2) and <https://x.dev/p_q_r>')).toBe(
      '<https://example.com/a?x=1&amp;y=2|the docs> and <https://x.dev/p_q_r>',
    );
    expect(markdownToSlack('see https://x.dev/a_b_c.')).toBe('see https://x.dev/a_b_c.');
    expect(markdownToSlack('[**Wiki**](https://en.wikipedia.org/wiki/Foo_(bar))')).toBe('<https://en.wikipedia.org/wiki/Foo_(bar)|Wiki>');
    expect(markdownToSlack('![chart](sandbox:/mnt/data/chart.png)\nText [file](sandbox:/mnt/data/out.csv)')).toBe('Text file');
    expect(markdownToSlack('![logo](https://example.com/logo.png)')).toBe('<https://example.com/logo.png|logo>');
  });

  it('keeps code verbatim (escaped), without language hints', () => {
    const md = 'Run:\n\n```python\nif a < b and c > d:\n    print("**not bold** & done")\n```\n\nInline `x <= 1 && **y**` too.';
    expect(markdownToSlack(md)).toBe(
      'Run:\n\n```\nif a &lt; b and c &gt; d:\n    print("**not bold** &amp; done")\n```\n\nInline `x &lt;= 1 &amp;&amp; **y**` too.',
    );
    expect(markdownToSlack('~~~\nunclosed fence\n')).toBe('```\nunclosed fence\n```');
    expect(markdownToSlack('```\na ``` b\n```')).toBe(`\`\`\`\na \`${ZWSP}\`\` b\n\`\`\``);
  });

  it('renders tables as aligned monospace blocks, honouring alignment', () => {
    const md = [
      'Summary:',
      '',
      '| Region | **Revenue** | Share |',
      '|:-------|------------:|:-----:|',
      '| North  | 1,200 | 60% |',
      '| South & East | 800 | 40% |',
      '',
      'Done.',
    ].join('\n');
    expect(markdownToSlack(md)).toBe(
      [
        'Summary:',
        '',
        '```',
        'Region       | Revenue | Share',
        '-------------+---------+------',
        'North        |   1,200 |  60%',
        'South &amp; East |     800 |  40%',
        '```',
        '',
        'Done.',
      ].join('\n'),
    );
  });

  it('keeps a pipe that is not a table as text', () => {
    expect(markdownToSlack('a | b\nno delimiter row')).toBe('a | b\nno delimiter row');
  });

  it('renders lists, task lists, quotes and rules', () => {
    const md = '- one **1**\n  - nested\n* two\n- [ ] todo\n- [x] done\n\n1. first\n2) second\n\n> quoted *text*\n\n---';
    expect(markdownToSlack(md)).toBe('• one *1*\n    ◦ nested\n• two\n• ☐ todo\n• ☑ done\n\n1. first\n2. second\n\n> quoted _text_\n\n──────────');
  });

  it('shows display math as a code block', () => {
    expect(markdownToSlack('$$\nx = \\frac{-b}{2a}\n$$')).toBe('```\nx = \\frac{-b}{2a}\n```');
  });
});

describe('splitSlackText', () => {
  it('returns short text as one chunk', () => {
    expect(splitSlackText('hello', 3000)).toEqual(['hello']);
  });

  it('keeps every chunk under the limit, cuts between paragraphs, and rebalances code fences', () => {
    const paragraph = (n: number) => `Paragraph ${n}: ${'words '.repeat(30).trim()}`;
    const code = ['```', ...Array.from({ length: 20 }, (_v, i) => `line_${i} = ${i}`), '```'];
    const text = [paragraph(1), '', paragraph(2), '', ...code, '', paragraph(3)].join('\n');
    const chunks = splitSlackText(text, 300);
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(300);
      expect((chunk.match(/```/g) ?? []).length % 2).toBe(0);
    }
    expect(chunks[0]).toBe(paragraph(1));
    expect(chunks.join('\n').replace(/```\n```\n?/g, '')).toContain('line_19 = 19');
  });

  it('wraps a single overlong line at spaces', () => {
    const chunks = splitSlackText('word '.repeat(200).trim(), 100);
    expect(chunks.every((c) => c.length <= 100)).toBe(true);
    expect(chunks.join(' ')).toBe('word '.repeat(200).trim());
  });
});

describe('slackToPlainText', () => {
  it("removes the bot's mention and makes other markup readable", () => {
    expect(
      slackToPlainText('<@UBOT>   plot <https://a.b/c?x=1&amp;y=2|this> for <@U2|bob> in <#C1|general> &lt;3 <!here> <mailto:a@b.c|a@b.c>', 'UBOT'),
    ).toBe('plot this (https://a.b/c?x=1&y=2) for @bob in #general <3 @here a@b.c');
    expect(slackToPlainText('<@UBOT> reset', 'UBOT')).toBe('reset');
    expect(slackToPlainText('hey <@UOTHER>', 'UBOT')).toBe('hey @UOTHER');
  });
});

describe('defuseMentions and portableFileName', () => {
  it('keeps the text as shown but opens no mention', () => {
    expect(defuseMentions('hi <!channel>, <@U1> and <#C1> or <https://x.example>')).toBe('hi <\u200B!channel>, <\u200B@U1> and <\u200B#C1> or <https://x.example>');
    expect(portableFileName('<!here>/..\\a:b?.csv')).toBe('_!here__.._a_b_.csv');
  });
});
