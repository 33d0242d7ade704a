import { readFile } from 'node:fs/promises';
import type { ChatRequest } from '../fakes/chat-completions.js';
import { createFakeEngine } from '../fakes/engine.js';
import type { ScriptRequest } from '../fakes/openai.js';
import { type EngineDriver, engineContract, type ScriptedAnswer } from '../contracts/engine.contract.js';
import { startStack } from '../support/stack.js';
import { startLocal } from './local/harness.js';

/** Every engine against the one contract the core relies on. */

const PNG = await readFile(new URL('../fixtures/files/revenue.png', import.meta.url));

/** The first sentence in `text` that starts with `start`. */
function sentence(text: string, start: string): string {
  return new RegExp(`${start}[^.]*`).exec(text)?.[0] ?? '(nothing to recall)';
}

engineContract('responses (hosted code interpreter, fake OpenAI)', async (): Promise<EngineDriver> => {
  const stack = await startStack();
  return {
    engine: stack.crunch.engine,
    answer(step: ScriptedAnswer) {
      stack.openai.script.push((request: ScriptRequest) => ({
        text: step.recall ? sentence(JSON.stringify(request.history), step.recall) : step.text,
        ...(step.chart ? { code: 'plt.savefig("/mnt/data/chart.png")', images: [{ filename: 'chart.png', data: PNG }] } : {}),
        ...(step.slow ? { delayMs: 30_000 } : {}),
      }));
    },
    async close() {
      stack.expectSpecClean();
      await stack.close();
    },
  };
});

engineContract(
  'local (Python in bubblewrap, fake chat model)',
  async (): Promise<EngineDriver> => {
    const stack = await startLocal();
    return {
      engine: stack.engine,
      answer(step: ScriptedAnswer) {
        if (step.chart) stack.chat.script.push({ python: "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.title('Chart of three')" });
        stack.chat.script.push((request: ChatRequest) => ({
          text: step.recall ? sentence(JSON.stringify(request.messages), step.recall) : step.text,
          ...(step.slow ? { delayMs: 30_000 } : {}),
        }));
      },
      close: () => stack.close(),
    };
  },
  60_000,
);

engineContract('fake (test/fakes/engine.ts)', async (): Promise<EngineDriver> => {
  const engine = createFakeEngine();
  return {
    engine,
    answer(step: ScriptedAnswer) {
      engine.script.push((input) => {
        const text = step.recall ? sentence(input.session ? (engine.calls[0]?.text ?? '') : '', step.recall) : step.text;
        return {
          text,
          statuses: ['thinking…'],
          deltas: [text],
          outputs: step.chart ? [{ name: 'chart.png', data: PNG, title: 'Chart' }] : [],
          hang: step.slow ?? false,
        };
      });
    },
    close: async () => undefined,
  };
});
