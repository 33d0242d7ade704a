import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CrunchError, type Governance } from '../../src/core/index.js';
import type { FakeEngine } from '../fakes/engine.js';

/**
 * What every chat adapter must do, whatever its platform: the suite talks to the adapter over real HTTP
 * through a driver (the platform's fake, its payloads, its notion of a conversation), with the real core
 * and the fake engine behind it.
 */
export interface Delivery {
  /** Which conversation the message belongs to (the driver's own handle). */
  conversation: string;
  payload: Record<string, unknown>;
}

export interface AdapterDriver {
  engine: FakeEngine;
  /** A message from a person: in a new conversation, or in the conversation of `after`. */
  message(text: string, options?: { after?: Delivery; file?: { name: string; data: Buffer } }): Delivery;
  /**
   * The platform's event for a person opening Crunch for the first time (Teams: installed in their personal
   * chat; Slack: its App Home's Messages tab), in their one-to-one conversation with it. Called again for the
   * same person, it is the platform telling it again (Teams tells an install twice).
   */
  opened(person: string): Delivery;
  /** Delivers it as the platform would; resolves with the HTTP status the platform got. */
  send(delivery: Delivery): Promise<number>;
  /** The messages the person sees in that conversation (for a message: its answers; for `opened`: the greeting), in order. */
  answers(delivery: Delivery): string[];
  /** The small print under the answers there (Slack context blocks, Teams subtle text): notices, receipts. */
  smallPrint(delivery: Delivery): string[];
  /** The titles of the charts and the names of the files posted there. */
  outputs(delivery: Delivery): string[];
  /** How many calls the adapter made to the platform for that conversation (progress included). */
  calls(delivery: Delivery): number;
  /** Waits until everything received is handled and every turn answered. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export interface DriverOptions {
  /** The admin's rules the core applies (allow-lists, budgets, receipts). */
  governance?: Partial<Governance>;
}

export function adapterContract(name: string, open: (options?: DriverOptions) => Promise<AdapterDriver>): void {
  describe(`Adapter contract: ${name}`, () => {
    let d: AdapterDriver;
    const others: AdapterDriver[] = [];
    beforeEach(async () => {
      d = await open();
    });
    afterEach(async () => {
      await Promise.all([d, ...others.splice(0)].map((driver) => driver.close()));
    });

    it('answers a message in its conversation', async () => {
      d.engine.script.push({ text: 'The answer is 4.' });
      const m = d.message('what is 2 + 2?');
      expect(await d.send(m)).toBe(200);
      await d.settle();
      expect(d.engine.calls.map((c) => c.text)).toEqual(['what is 2 + 2?']);
      expect(d.answers(m)).toEqual(['The answer is 4.']);
    });

    it('answers a delivery the platform sends again only once, and shows nothing for the second one', async () => {
      d.engine.script.push({ text: 'Once.' });
      const m = d.message('hello');
      await d.send(m);
      await d.settle();
      const before = d.calls(m);
      expect(await d.send(m)).toBe(200);
      await d.settle();
      expect(d.engine.calls).toHaveLength(1);
      expect(d.answers(m)).toEqual(['Once.']);
      expect(d.calls(m)).toBe(before);
    });

    it('hands the file a person attached to the engine, byte for byte', async () => {
      const data = Buffer.from('month,revenue\n2026-01,100\n2026-02,120\n');
      const m = d.message('sum the revenue', { file: { name: 'revenue.csv', data } });
      await d.send(m);
      await d.settle();
      expect(d.engine.calls[0]?.files).toEqual([{ name: 'revenue.csv', mimeType: 'text/csv', bytes: data }]);
    });

    it('posts the charts and files the engine made', async () => {
      const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea73581e40000000049454e44ae426082', 'hex');
      d.engine.script.push({ text: 'Here.', outputs: [{ name: 'chart.png', title: 'Chart', data: png }, { name: 'table.csv', data: 'a,b\n1,2\n' }] });
      const m = d.message('plot it');
      await d.send(m);
      await d.settle();
      expect(d.outputs(m)).toEqual(expect.arrayContaining(['Chart', 'table.csv']));
    });

    it('answers the messages of one conversation in the order they came', async () => {
      d.engine.script.push({ text: 'First.' }, { text: 'Second.' }, { text: 'Third.' });
      const first = d.message('one');
      const second = d.message('two', { after: first });
      const third = d.message('three', { after: first });
      for (const m of [first, second, third]) expect(await d.send(m)).toBe(200);
      await d.settle();
      expect(d.engine.calls.map((c) => c.text)).toEqual(['one', 'two', 'three']);
      expect(d.answers(first)).toEqual(['First.', 'Second.', 'Third.']);
    });

    it('answers a person outside the allow-list with one line naming whom to ask, and runs nothing', async () => {
      const governed = await open({ governance: { access: { workspaces: {}, channels: [], users: ['U-SOMEONE-ELSE'], adminContact: '#crunch-help' } } });
      others.push(governed);
      const m = governed.message('plot revenue', { file: { name: 'revenue.csv', data: Buffer.from('month,revenue\n') } });
      expect(await governed.send(m)).toBe(200);
      await governed.settle();
      expect(governed.answers(m)).toEqual(['Crunch is not enabled for you yet. Ask #crunch-help for access.']);
      expect(governed.engine.calls).toEqual([]);
      });

    it('shows one message per answer: the progress it showed becomes the answer, and nothing says it is done', async () => {
      const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea73581e40000000049454e44ae426082', 'hex');
      d.engine.script.push({
        statuses: ['reading revenue.csv…', 'running code…'],
        deltas: ['The total ', 'is 220.'],
        text: 'The total is 220.',
        outputs: [{ name: 'chart.png', title: 'Revenue', data: png }],
        code: [{ code: 'df.revenue.sum()', output: '220' }],
      });
      const m = d.message('sum the revenue and plot it');
      await d.send(m);
      await d.settle();
      expect(d.answers(m)).toEqual(['The total is 220.']);
      expect(d.outputs(m)).toContain('Revenue');
    });

    it('turns an engine failure into one friendly message, in place of the part of the answer it showed', async () => {
      d.engine.script.push({ statuses: ['running code…'], deltas: ['The first half of an'], fail: new CrunchError('engine_unavailable', 'The AI service is not answering right now.') });
      const m = d.message('anything');
      await d.send(m);
      await d.settle();
      expect(d.answers(m)).toEqual([expect.stringContaining('The AI service is not answering right now.')]);
    });

    it('greets a person once when they first open Crunch: what it does, an example and the file types, running nothing', async () => {
      const alice = d.opened('alice');
      expect(await d.send(alice)).toBe(200);
      await d.settle();
      expect(await d.send(d.opened('alice'))).toBe(200);
      await d.settle();
      const [greeting, ...more] = d.answers(alice);
      expect(more).toEqual([]);
      expect(greeting).toContain('Crunch');
      expect(greeting).toContain('plot revenue by month');
      expect(greeting).toMatch(/csv.*xlsx/);
      expect(d.engine.calls).toEqual([]);
      const bob = d.opened('bob');
      await d.send(bob);
      await d.settle();
      expect(d.answers(bob)).toHaveLength(1);
    });

    it('ends an answer with its receipt in small print when costs are shown', async () => {
      const shown = await open({ governance: { showCost: true } });
      others.push(shown);
      shown.engine.script.push({ text: 'The total is 220.' });
      const m = shown.message('sum it');
      await shown.send(m);
      await shown.settle();
      expect(shown.answers(m)).toEqual([expect.stringMatching(/^The total is 220\./)]);
      expect(shown.smallPrint(m)).toEqual(['1,100 tokens · 1 sandbox session · ≈ $0.03']);
    });

    it('turns an engine failure into one friendly message', async () => {
      d.engine.script.push({ fail: new CrunchError('engine_quota', 'The AI service account has run out of quota.') });
      const m = d.message('anything');
      await d.send(m);
      await d.settle();
      expect(d.answers(m)).toEqual([expect.stringContaining('The AI service account has run out of quota.')]);
    });
  });
}
