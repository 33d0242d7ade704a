import type { Activity } from 'botbuilder';
import type { Logger } from 'pino';
import type { Progress, ProgressSink } from '../../../src/core/index.js';

/**
 * What the user sees while a turn runs, and where the answer then appears: one message per answer.
 *  - in personal and group chats, a typing indicator from the moment a worker starts the turn (the core
 *    only starts a turn it has claimed, so a resent activity never shows any), repeated every few seconds
 *    until the answer is posted (or a stream shows progress instead). Never in channels: Teams shows no bot
 *    typing indicator there, and the Agents Playground rejects typing in a reply chain (`Invalid conversation
 *    id …;messageid=…` at setBotTypingStatus) and then loses the message posted right after it;
 *  - in personal chat, a Teams stream (typing activities with a `streaminfo` entity) started at the first
 *    engine status: the statuses as informative updates ("running code…"), then the answer's text as the
 *    model writes it; the answer ends the stream (present.ts), in the same message;
 *  - elsewhere, or where Teams refuses the stream, a status message ("⏳ running code…") posted at the first
 *    status and edited in place (updateActivity) as statuses change; the answer then replaces it.
 *
 * So the progress message is the answer's message: nothing is left behind that says "working" or "done".
 * Teams ends a stream after two minutes (403 "Content stream finished due to exceeded streaming time"), and
 * a code interpreter run can take longer: after any refusal the stream's message is edited in place like a
 * status message (as Microsoft's Teams SDK finishes a timed-out stream), and when even that fails a status
 * message takes over. Every outgoing progress call runs on one serial chain, so updates never overtake each
 * other.
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
  /** Show the progress and the answer's text in a Teams stream (personal chat). */
  streaming: boolean;
  logger: Logger;
  /** The message an earlier attempt at this turn showed its progress in: edited in place, never streamed into. */
  progressId?: string;
  /** Told the id of the progress message once it exists, for a resumed attempt. */
  remember?: (progressId: string) => Promise<void>;
}

/** Teams rejects a stream's informative text over 1 KB; statuses are short, but be safe. */
const MAX_STATUS_CHARS = 900;

export class ProgressPresenter {
  private chain: Promise<void> = Promise.resolve();
  private typingTimer: NodeJS.Timeout | undefined;
  private typingStarted = false;
  /** The message that shows the progress and becomes the answer: a stream, or a status message. */
  private messageId: string | undefined;
  private isStream = false;
  private streamFailed: boolean;
  private statusPending: string | undefined;
  private statusScheduled = false;
  private streamText = '';
  private streamSequence = 0;
  private streamScheduled = false;
  private lastStreamAt = 0;
  private closed = false;

  constructor(
    private readonly io: TurnIO,
    private readonly options: PresenterOptions,
  ) {
    this.messageId = options.progressId;
    this.streamFailed = !options.streaming || options.progressId !== undefined;
  }

  /** Typing indicator now and every `typingIntervalMs` until close(), while no stream shows progress; once per turn. */
  startTyping(): void {
    if (!this.options.typing || this.typingStarted || this.closed) return;
    this.typingStarted = true;
    this.typing();
    this.typingTimer = setInterval(() => {
      if (!this.streaming) this.typing();
    }, this.options.typingIntervalMs);
    this.typingTimer.unref();
  }

  readonly sink: ProgressSink = (progress: Progress) => {
    if (this.closed) return;
    this.startTyping();
    if (progress.type === 'status') {
      this.statusPending = progress.text.slice(0, MAX_STATUS_CHARS);
      // Once the answer's text streams, the stream shows it rather than statuses.
      if (!this.streamFailed) {
        if (this.streamText === '') this.scheduleStream();
      } else this.scheduleStatus();
    } else if (!this.streamFailed) {
      this.streamText += progress.delta;
      this.scheduleStream();
    }
  };

  /** True while the progress is a live Teams stream (its answer then goes through `endStream`). */
  get streaming(): boolean {
    return this.isStream && !this.streamFailed;
  }

  /** The message the progress is shown in, which the answer replaces; undefined when none was posted. */
  get progressMessage(): string | undefined {
    return this.messageId;
  }

  /** Stops typing and waits for pending updates; the progress message stays as it is, for the answer to replace. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.typingTimer);
    await this.chain;
  }

  /**
   * Ends the stream with the first message of the answer (text). Returns true when that message is now
   * shown in the stream's message; false when the caller must post it (no stream, or Teams refused the final
   * message and the in-place edit of the streamed message failed too).
   */
  async endStream(finalMessage: Partial<Activity>): Promise<boolean> {
    await this.chain;
    if (!this.isStream || this.messageId === undefined) return false;
    const streamId = this.messageId;
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

  private scheduleStatus(): void {
    if (this.statusScheduled) return;
    this.statusScheduled = true;
    this.enqueue('status', () => this.flushStatus());
  }

  /** The latest status into the status message (posted at the first), or into a refused stream's message. */
  private async flushStatus(): Promise<void> {
    this.statusScheduled = false;
    const text = this.statusPending;
    this.statusPending = undefined;
    if (text === undefined || this.closed) return;
    const activity = { type: 'message', text: `⏳ ${text}` } as const;
    if (this.messageId !== undefined) {
      try {
        await this.io.update({ ...activity, id: this.messageId });
        return;
      } catch (err) {
        // A refused stream may have left no message to edit: a status message takes over.
        if (!this.isStream) throw err;
        this.warn(err, 'edit of the stopped stream');
        this.messageId = undefined;
        this.isStream = false;
      }
    }
    this.messageId = await this.io.send(activity);
    if (this.messageId !== undefined) await this.options.remember?.(this.messageId);
  }

  private scheduleStream(): void {
    if (this.streamScheduled) return;
    this.streamScheduled = true;
    const wait = Math.max(0, this.lastStreamAt + this.options.streamIntervalMs - Date.now());
    const run = () => this.enqueue('stream', () => this.flushStream());
    if (wait === 0 || this.messageId === undefined) run();
    else setTimeout(run, wait).unref();
  }

  /** One streaming update: the latest status (informative) until the answer's text starts, then the text so far. */
  private async flushStream(): Promise<void> {
    this.streamScheduled = false;
    if (this.closed || this.streamFailed) return;
    const informative = this.streamText.trim() === '';
    const text = informative ? this.statusPending : this.streamText;
    if (text === undefined || text.trim() === '') return;
    if (informative) this.statusPending = undefined;
    this.lastStreamAt = Date.now();
    const info = {
      streamType: informative ? 'informative' : 'streaming',
      streamSequence: ++this.streamSequence,
      ...(this.messageId !== undefined ? { streamId: this.messageId } : {}),
    };
    const activity: Partial<Activity> = { type: 'typing', text, entities: [{ type: 'streaminfo', ...info }], channelData: info };
    try {
      const id = await this.io.sendRaw(activity, { attempts: 1 });
      if (this.messageId === undefined) {
        if (id === undefined) throw new Error('Teams returned no stream id');
        this.messageId = id;
        this.isStream = true;
        await this.options.remember?.(id);
      }
    } catch (err) {
      // 403 (user pressed Stop, stream over two minutes, streaming not allowed) or anything else: statuses go
      // to the stream's message (or a status message) from now on, and the answer replaces it.
      this.streamFailed = true;
      this.warn(err, 'streaming update');
      if (informative) this.statusPending ??= text;
      if (this.statusPending !== undefined) this.scheduleStatus();
    }
  }

  private enqueue(what: string, task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((err: unknown) => this.warn(err, what));
  }

  private warn(err: unknown, what: string): void {
    this.options.logger.warn({ err }, `teams ${what} failed`);
  }
}
