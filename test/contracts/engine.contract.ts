import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AttachmentError, type Engine, type EngineFile, type EngineRunInput, type EngineSession, type Progress } from '../../src/core/index.js';

/**
 * One suite that every Engine runs (the hosted `responses` one, the `local` one, the fake): what the core
 * and, through it, Slack, Teams and the CLI rely on. Each engine comes with a driver that scripts its
 * model the same way, in that engine's own terms.
 */

export interface ScriptedAnswer {
  /** The answer's text. */
  text: string;
  /** The code also makes a PNG chart. */
  chart?: boolean;
  /** Answer with the sentence of the conversation's first message that starts with this (so: remember it). */
  recall?: string;
  /** Take far longer than any test waits (to be aborted). */
  slow?: boolean;
}

export interface EngineDriver {
  engine: Engine;
  /** The model's next answer. */
  answer(step: ScriptedAnswer): void;
  close(): Promise<void>;
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function engineContract(name: string, open: () => Promise<EngineDriver>, timeoutMs = 30_000): void {
  describe(`Engine contract: ${name}`, () => {
    let driver: EngineDriver;
    beforeEach(async () => {
      driver = await open();
    }, 60_000);
    afterEach(async () => {
      await driver.close();
    });

    async function run(text: string, options: Partial<EngineRunInput> = {}) {
      const progress: Progress[] = [];
      const result = await driver.engine.run({
        session: undefined,
        text,
        files: [],
        progress: (p) => progress.push(p),
        signal: new AbortController().signal,
        checkpoint: async () => undefined,
        ...options,
      });
      return { ...result, progress };
    }

    it('answers with text, streaming its progress and the text as it is written', { timeout: timeoutMs }, async () => {
      driver.answer({ text: 'Twelve months, two regions.' });
      const result = await run('what is in it?');
      expect(result.text).toBe('Twelve months, two regions.');
      expect(result.progress.some((p) => p.type === 'status')).toBe(true);
      expect(result.progress.map((p) => (p.type === 'text' ? p.delta : '')).join('')).toBe(result.text);
      // No code ran, so nothing is collected: no status after the text (it would flash just before the answer).
      const firstText = result.progress.findIndex((p) => p.type === 'text');
      expect(result.progress.slice(firstText).filter((p) => p.type === 'status')).toEqual([]);
      expect(result.session.engine).toBe(driver.engine.name);
      // The provider's count of what the turn consumed, for prices, budgets and the usage log.
      expect(result.usage).toMatchObject({ model: expect.any(String), inputTokens: expect.any(Number), outputTokens: expect.any(Number) });
      expect(result.usage!.inputTokens).toBeGreaterThan(0);
      expect(result.usage!.outputTokens).toBeGreaterThan(0);
      expect(result.usage!.cachedTokens).toBeLessThanOrEqual(result.usage!.inputTokens);
    });

    it('returns a PNG chart that openOutput streams, later', { timeout: timeoutMs }, async () => {
      driver.answer({ text: 'Here is the chart.', chart: true });
      const result = await run('plot it');
      const charts = result.outputs.filter((o) => o.mimeType === 'image/png');
      expect(charts).toHaveLength(1);
      expect(charts[0]!.name).toMatch(/\.png$/);
      expect(charts[0]!.title).not.toBe('');
      const chunks: Buffer[] = [];
      for await (const chunk of await driver.engine.openOutput(JSON.parse(JSON.stringify(charts[0]!.ref)))) chunks.push(chunk as Buffer);
      const png = Buffer.concat(chunks);
      expect(png.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
      if (charts[0]!.sizeBytes !== undefined) expect(png.length).toBe(charts[0]!.sizeBytes);
    });

    it('keeps the context across runs with the session it returned (as the store keeps it: JSON)', { timeout: timeoutMs }, async () => {
      driver.answer({ text: 'Noted.' });
      const first = await run('My favourite colour is teal.');
      const stored = JSON.parse(JSON.stringify(first.session)) as EngineSession;
      driver.answer({ text: '', recall: 'My favourite colour' });
      const second = await run('What did I tell you?', { session: stored });
      expect(second.text).toContain('My favourite colour is teal');
      expect(second.session.contextId).toBe(first.session.contextId);
    });

    it('reports a file that cannot be read as a notice and answers with the rest', { timeout: timeoutMs }, async () => {
      const refused: EngineFile = {
        sourceId: 'bad',
        name: 'private.csv',
        mimeType: 'text/csv',
        open: async () => {
          throw new AttachmentError('**private.csv** skipped: the platform refused the download.');
        },
      };
      const broken: EngineFile = {
        sourceId: 'broken',
        name: 'broken.csv',
        mimeType: 'text/csv',
        open: async () =>
          new Readable({
            read() {
              this.destroy(new AttachmentError('**broken.csv** skipped: the download failed midway. Please share it again.'));
            },
          }),
      };
      const good: EngineFile = { sourceId: 'good', name: 'good.csv', mimeType: 'text/csv', sizeBytes: 8, open: async () => Readable.from([Buffer.from('a,b\n1,2\n')]) };
      driver.answer({ text: 'One file was fine.' });
      const result = await run('look at these', { files: [refused, good, broken] });
      expect(result.text).toBe('One file was fine.');
      expect(result.notices).toEqual([
        '**private.csv** skipped: the platform refused the download.',
        '**broken.csv** skipped: the download failed midway. Please share it again.',
      ]);
    });

    it('stops promptly when its signal aborts', { timeout: timeoutMs }, async () => {
      driver.answer({ text: 'too late', slow: true });
      const controller = new AbortController();
      const running = run('take your time', { signal: controller.signal });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const aborted = Date.now();
      controller.abort(new Error('turn deadline'));
      await expect(running).rejects.toThrow();
      expect(Date.now() - aborted).toBeLessThan(2000);
    });

    it('forgets a session it made, says what it removed, and finds nothing left the second time', { timeout: timeoutMs }, async () => {
      driver.answer({ text: 'Hello.' });
      const result = await run('hi');
      const first = await driver.engine.forget?.(result.session);
      expect(first).toMatchObject({ sandboxes: 1, context: true, failed: 0 });
      const again = await driver.engine.forget?.(result.session);
      expect(again?.failed).toBe(0);
      driver.answer({ text: 'Hello again.' });
      const fresh = await run('hi');
      expect(fresh.session.contextId).not.toBe(result.session.contextId);
    });
  });
}
