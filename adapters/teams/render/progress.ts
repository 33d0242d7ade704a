import type { Activity } from 'botbuilder';
import type { Logger } from 'pino';
import type { Progress, ProgressSink } from '../../../src/core/index.js';

/**
 * What the user sees while a turn runs:
 *  - in personal and group chats, a typing indicator from the moment a worker starts the turn (the core
 *    only starts a turn it has claimed, so a resent activity never shows any), repeated every few seconds
 *    until the answer is posted. Never in channels: Teams shows no bot typing indicator there, and the Agents
 *    Playground rejects typing in a reply chain (`Invalid conversation id …;messageid=…` at
 *    setBotTypingStatus) and then loses the message posted right after it;
 *  - a status message ("⏳ running code…") posted at the first engine status and edited in place
 *    (updateActivity) as statuses change, ending as "✅ Done in 12 s";
 *  - in personal chat, the answer text streamed as the model writes it (Teams streaming protocol: typing
 *    activities with a `streaminfo` entity, then a final message with streamType "final").
 *
 * Streaming starts at the first text delta rather than at the first status, because Teams ends a stream
 * after two minutes and a code interpreter run can take longer; statuses before that go to the status
 * message. Every outgoing progress call runs on one serial chain, so updates never overtake each other.
 */

export interface TurnIO {
  /** Sends through the SDK (typing, status message); resolves to the new activity id. */
  send(activity: Partial<Activity>): Promise<string | undefined>;
  update(activity: Partial<Activity> & { id: string }): Promise<void>;
  remove(id: string): Promise<void>;
  /** Sends bypassing the SDK serializer, which drops the streaminfo entity's fields (botbuilder-js#4902). */
  sendRaw(activity: Partial<Activity>, options: { attempts: number }): Promise<string | undefined>;
}

export interface PresenterOptions {
  /** Send typing indicators at all (personal and group chats; false in channels). */
  typing: boolean;
  typingIntervalMs: number;
  /** Teams accepts about one streaming update per second. */
  streamIntervalMs: number;
  streaming: boolean;
  logger: Logger;
  now?: () => number;
  /** The status message an earlier attempt at this turn posted, to be reused. */
  statusId?: string;
  /** Told the ids of the status and stream messages as they are created, for a resumed attempt. */
  remember?: (ids: { statusId?: string; streamId?: string }) => Promise<void>;
}

/** Teams rejects a stream's informative text over 1 KB; statuses are short, but be safe. */
const MAX_STATUS_CHARS = 900;

export class ProgressPresenter {
  private chain: Promise<void> = Promise.resolve();
  private typingTimer: NodeJS.Timeout | undefined;
  private typingStarted = false;
  private statusId: string | undefined;
  private statusPending: string | undefined;
  private statusScheduled = false;
  private streamId: string | undefined;
  private streamText = '';
  private streamSequence = 0;
  private streamFailed = false;
  private streamScheduled = false;
  private lastStreamAt = 0;
  private closed = false;
  private readonly startedAt: number;
  private readonly now: () => number;

  constructor(
    private readonly io: TurnIO,
    private readonly options: PresenterOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.statusId = options.statusId;
  }

  /** Typing indicator now and every `typingIntervalMs` until close(); once per turn. */
  startTyping(): void {
    if (!this.options.typing || this.typingStarted || this.closed) return;
    this.typingStarted = true;
    this.typing();
    this.typingTimer = setInterval(() => {
      if (this.streamId === undefined || this.streamFailed) this.typing();
    }, this.options.typingIntervalMs);
    this.typingTimer.unref();
  }

  readonly sink: ProgressSink = (progress: Progress) => {
    if (this.closed) return;
    this.startTyping();
    if (progress.type === 'status') {
      this.statusPending = progress.text.slice(0, MAX_STATUS_CHARS);
      if (!this.statusScheduled) {
        this.statusScheduled = true;
        this.enqueue('status', () => this.flushStatus());
      }
    } else if (this.options.streaming && !this.streamFailed) {
      this.streamText += progress.delta;
      this.scheduleStream();
    }
  };

  /** True once the answer is being streamed (its final message then goes through `endStream`). */
  get streaming(): boolean {
    return this.streamId !== undefined && !this.streamFailed;
  }

  /** Stops typing, waits for pending updates, and marks the status message done (or stopped); `suspended` leaves it. */
  async close(outcome: 'done' | 'failed' | 'suspended'): Promise<void> {
    this.closed = true;
    clearInterval(this.typingTimer);
    await this.chain;
    if (this.statusId !== undefined && outcome !== 'suspended') {
      const seconds = Math.max(1, Math.round((this.now() - this.startedAt) / 1000));
      const text = outcome === 'done' ? `✅ Done in ${seconds} s` : `⚠️ Stopped after ${seconds} s`;
      await this.io.update({ type: 'message', id: this.statusId, text }).catch((err: unknown) => this.warn(err, 'status message'));
    }
  }

  /**
   * Ends the stream with the first message of the answer (text). Returns true when that message is now
   * shown; false when the caller must post it normally (no stream, or Teams refused the final message and
   * the in-place edit of the streamed message failed too).
   */
  async endStream(finalMessage: Partial<Activity>): Promise<boolean> {
    await this.chain;
    if (this.streamId === undefined) return false;
    const streamId = this.streamId;
    if (!this.streamFailed) {
      const final: Partial<Activity> = {
        ...finalMessage,
        type: 'message',
        entities: [{ type: 'streaminfo', streamId, streamType: 'final' }],
        channelData: { streamId, streamType: 'final' },
      };
      try {
        await this.io.sendRaw(final, { attempts: 3 });
        return true;
      } catch (err) {
        this.warn(err, 'final streamed message');
      }
    }
    // After a stream timed out or was refused, Teams keeps the partial bubble: replace it in place.
    try {
      await this.io.update({ ...finalMessage, type: 'message', id: streamId });
      return true;
    } catch (err) {
      this.warn(err, 'streamed message edit');
      return false;
    }
  }

  private typing(): void {
    this.enqueue('typing', async () => {
      await this.io.send({ type: 'typing' });
    });
  }

  private async flushStatus(): Promise<void> {
    this.statusScheduled = false;
    const text = this.statusPending;
    this.statusPending = undefined;
    if (text === undefined || this.closed) return;
    const activity = { type: 'message', text: `⏳ ${text}` } as const;
    if (this.statusId === undefined) {
      this.statusId = await this.io.send(activity);
      if (this.statusId !== undefined) await this.options.remember?.({ statusId: this.statusId });
    } else await this.io.update({ ...activity, id: this.statusId });
  }

  private scheduleStream(): void {
    if (this.streamScheduled) return;
    this.streamScheduled = true;
    const wait = Math.max(0, this.lastStreamAt + this.options.streamIntervalMs - this.now());
    const run = () => this.enqueue('stream', () => this.flushStream());
    if (wait === 0 || this.streamId === undefined) run();
    else setTimeout(run, wait).unref();
  }

  private async flushStream(): Promise<void> {
    this.streamScheduled = false;
    if (this.closed || this.streamFailed || this.streamText.trim() === '') return;
    this.lastStreamAt = this.now();
    const sequence = ++this.streamSequence;
    const info = { streamType: 'streaming', streamSequence: sequence, ...(this.streamId !== undefined ? { streamId: this.streamId } : {}) };
    const activity: Partial<Activity> = {
      type: 'typing',
      text: this.streamText,
      entities: [{ type: 'streaminfo', ...info }],
      channelData: info,
    };
    try {
      const id = await this.io.sendRaw(activity, { attempts: 1 });
      if (this.streamId === undefined) {
        if (id === undefined) throw new Error('Teams returned no stream id');
        this.streamId = id;
        await this.options.remember?.({ streamId: id });
      }
    } catch (err) {
      // 403 (user pressed Stop, stream over two minutes, streaming not allowed) or anything else: the
      // answer is posted as a regular message instead.
      this.streamFailed = true;
      this.warn(err, 'streaming update');
    }
  }

  private enqueue(what: string, task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((err: unknown) => this.warn(err, what));
  }

  private warn(err: unknown, what: string): void {
    this.options.logger.warn({ err }, `teams ${what} failed`);
  }
}
