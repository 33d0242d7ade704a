import { describe, expect, it } from 'vitest';
import { codeFile, composeMessages, MAX_MESSAGE_CHARS } from '../../../adapters/slack/render/compose.js';
import { textReply } from '../../../src/core/index.js';

describe('composeMessages', () => {
  it('puts the text in a section and the notices in a context block of the same message', () => {
    const { messages, longAnswer } = composeMessages(textReply('answer', 'Total: **42**', ['**a.bin** skipped: not supported']));
    expect(longAnswer).toBe(false);
    expect(messages).toEqual([
      {
        text: 'Total: *42*',
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text: 'Total: *42*' }, expand: true },
          { type: 'context', elements: [{ type: 'mrkdwn', text: '*a.bin* skipped: not supported' }] },
        ],
      },
    ]);
  });

  it('marks errors, splits long text, and attaches a very long answer instead of flooding the thread', () => {
    expect(composeMessages({ ...textReply('error', 'The engine is busy.'), error: { code: 'engine_unavailable' } }).messages[0]!.text).toBe(
      ':warning: The engine is busy.',
    );
    const paragraph = 'x'.repeat(2000);
    const medium = composeMessages(textReply('answer', [paragraph, paragraph, paragraph].join('\n\n')));
    expect(medium.messages).toHaveLength(3);
    expect(medium.messages.every((m) => m.text.length <= MAX_MESSAGE_CHARS)).toBe(true);
    const long = composeMessages(textReply('answer', Array.from({ length: 6 }, () => paragraph).join('\n\n')));
    expect(long.longAnswer).toBe(true);
    expect(long.messages.map((m) => m.text)).toEqual([paragraph, '_The answer is long, so the whole of it is attached below as answer.md._']);
  });

  it('gives notices alone a message of their own, and folds more than ten into the last element', () => {
    const notices = Array.from({ length: 12 }, (_v, i) => `file ${i} skipped`);
    const { messages } = composeMessages(textReply('help', '', notices));
    expect(messages).toHaveLength(1);
    const elements = (messages[0]!.blocks[0] as { elements: { text: string }[] }).elements;
    expect(elements).toHaveLength(10);
    expect(elements[9]!.text).toBe('file 9 skipped\nfile 10 skipped\nfile 11 skipped');
  });
});

describe('codeFile', () => {
  it('joins the cells, with their output as comments', () => {
    expect(codeFile([{ code: 'x = 1\n', output: '' }, { code: 'print(x)', output: '1\n' }])).toBe(
      '# ---- step 1 of 2 ----\nx = 1\n\n\n# ---- step 2 of 2 ----\nprint(x)\n\n# Output:\n# 1\n',
    );
  });
});
