import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Inbox, Lease, Turn } from '../../src/core/index.js';

/** One suite every inbox backend runs (memory, SQLite, Redis). */
export function inboxContract(name: string, open: () => Promise<{ inbox: Inbox; close(): Promise<void> }>): void {
  describe(`Inbox contract: ${name}`, () => {
    let opened: { inbox: Inbox; close(): Promise<void> };
    let inbox: Inbox;
    // Keys unique to this run: a Redis server keeps claims between runs.
    let run: string;
    beforeEach(async () => {
      opened = await open();
      inbox = opened.inbox;
      run = randomUUID().slice(0, 8);
    });
    afterEach(async () => {
      await opened.close();
    });

    const turn = (thread: string, text: string): Turn => ({
      conversation: { platform: 'test', workspace: run, channel: 'C', thread },
      messageKey: `${run}:${thread}:${text}`,
      user: { id: 'U' },
      text,
      files: [],
      platformData: { n: text },
    });
    const take = async (): Promise<Lease> => {
      const lease = await inbox.take(AbortSignal.timeout(5000));
      if (lease === undefined) throw new Error('nothing to take');
      return lease;
    };

    it('records a turn once: a second delivery of its key is a duplicate', async () => {
      expect(await inbox.accept(turn('t', 'one'))).toBe('accepted');
      expect(await inbox.accept(turn('t', 'one'))).toBe('duplicate');
      const lease = await take();
      const entry = await lease.next();
      expect(entry).toMatchObject({ turn: { text: 'one', platformData: { n: 'one' } }, attempts: 1 });
      await lease.done(entry!.turn.messageKey);
      expect(await lease.release()).toBe(true);
      // Still claimed after it is done (a late retry).
      expect(await inbox.accept(turn('t', 'one'))).toBe('duplicate');
    });

    it('gives a conversation to one worker at a time, its turns oldest first, and keeps it while turns arrive', async () => {
      await inbox.accept(turn('a', 'a1'));
      await inbox.accept(turn('a', 'a2'));
      const lease = await take();
      expect((await lease.next())?.turn.text).toBe('a1');
      // Nobody else gets conversation a while it is owned.
      expect(await inbox.take(AbortSignal.timeout(300))).toBeUndefined();
      await lease.done(`${run}:a:a1`);
      await inbox.accept(turn('a', 'a3'));
      expect((await lease.next())?.turn.text).toBe('a2');
      await lease.done(`${run}:a:a2`);
      expect((await lease.next())?.turn.text).toBe('a3');
      expect(await lease.release()).toBe(false);
      await lease.done(`${run}:a:a3`);
      expect(await lease.next()).toBeUndefined();
      expect(await lease.release()).toBe(true);
      await inbox.idle();
    });

    it('runs different conversations side by side', async () => {
      await inbox.accept(turn('x', 'x1'));
      await inbox.accept(turn('y', 'y1'));
      const [first, second] = [await take(), await take()];
      expect(new Set([first.conversation, second.conversation]).size).toBe(2);
      for (const lease of [first, second]) {
        const entry = await lease.next();
        await lease.done(entry!.turn.messageKey);
        expect(await lease.release()).toBe(true);
      }
    });

    it('takes a thread reply only in a joined conversation', async () => {
      expect(await inbox.accept(turn('j', 'reply'), { onlyIfJoined: true })).toBe('ignored');
      expect(await inbox.accept(turn('j', 'mention'))).toBe('accepted');
      expect(await inbox.accept(turn('j', 'reply'), { onlyIfJoined: true })).toBe('accepted');
      const lease = await take();
      for (const text of ['mention', 'reply']) {
        const entry = await lease.next();
        expect(entry?.turn.text).toBe(text);
        await lease.done(entry!.turn.messageKey);
      }
      expect(await lease.release()).toBe(true);
    });

    it('takes a turn that does not join its conversation (a refusal, a retention turn) without joining it', async () => {
      expect(await inbox.accept(turn('nj', 'refused'), { join: false })).toBe('accepted');
      expect(await inbox.accept(turn('nj', 'reply'), { onlyIfJoined: true })).toBe('ignored');
      expect(await inbox.accept(turn('nj', 'mention'))).toBe('accepted');
      expect(await inbox.accept(turn('nj', 'expire'), { join: false })).toBe('accepted');
      // A turn that does not join never shortens a join either.
      expect(await inbox.accept(turn('nj', 'reply 2'), { onlyIfJoined: true })).toBe('accepted');
      const lease = await take();
      for (const text of ['refused', 'mention', 'expire', 'reply 2']) {
        const entry = await lease.next();
        expect(entry?.turn.text).toBe(text);
        await lease.done(entry!.turn.messageKey);
      }
      expect(await lease.release()).toBe(true);
    });

    it('lets a conversation handed back unfinished be taken again, the turn still first, its attempt counted', async () => {
      await inbox.accept(turn('h', 'h1'));
      const lease = await take();
      expect((await lease.next())?.attempts).toBe(1);
      await lease.handBack();
      const again = await take();
      expect(again.conversation).toBe(lease.conversation);
      const entry = await again.next();
      expect(entry).toMatchObject({ turn: { text: 'h1' }, attempts: 2 });
      await again.done(entry!.turn.messageKey);
      expect(await again.release()).toBe(true);
    });

    it('stops waiting for work when its signal aborts', async () => {
      const stop = new AbortController();
      const waiting = inbox.take(stop.signal);
      setTimeout(() => stop.abort(), 50);
      expect(await waiting).toBeUndefined();
    });
  });
}
