import type { Logger } from 'pino';
import type { DeliveryLedger, Presenter, Reply, ReplyOutput, Turn } from '../../src/core/index.js';
import type { FileOffers, OfferRecipient } from './files/file-consent.js';
import type { FileHost } from './files/signed-urls.js';
import type { OutboundMessage } from './render/activity.js';
import { planReply } from './render/cards.js';
import { ProgressPresenter, type TurnIO } from './render/progress.js';
import type { ProactiveTurns } from './transport/turns.js';
import type { TeamsTurnData } from './types.js';

export interface PresentDeps {
  turns: ProactiveTurns;
  files: FileHost;
  offers: FileOffers;
  streaming: boolean;
  fileConsent: boolean;
  typingIntervalMs: number;
  maxMessageBytes: number;
  now: () => number;
  logger: Logger;
}

const TEXT_REFUSED = '⚠️ I finished, but Teams would not accept my answer message. Please ask again, perhaps for a shorter answer.';

/**
 * A turn on Teams, as the person sees it: typing (chats only), a status message edited in place, the answer
 * streamed in personal chat, then its parts in order (text, charts, files or consent cards, the code). All of
 * it goes through the turn's proactive context, replying to the user's message. Each part is recorded in the
 * turn's ledger once posted, so that a resumed turn reuses the status message and never posts a part twice.
 */
export function createPresenter(turn: Turn, ledger: DeliveryLedger, deps: PresentDeps): Presenter {
  const data = turn.platformData as unknown as TeamsTurnData;
  const log = deps.logger.child({ message: turn.messageKey });
  const opened = deps.turns.get(turn.messageKey, data.reference);
  const memo = (key: string) => (typeof ledger.memo[key] === 'string' ? (ledger.memo[key] as string) : undefined);
  const progress = opened.then(({ io }) => {
    const presenter = new ProgressPresenter(io, {
      typingIntervalMs: deps.typingIntervalMs,
      streamIntervalMs: 1000,
      streaming: deps.streaming && data.scope === 'personal',
      // No typing in channels: Teams does not show it there, and the Playground drops the next message.
      typing: data.scope !== 'channel',
      logger: log,
      now: deps.now,
      ...(memo('statusId') !== undefined ? { statusId: memo('statusId')! } : {}),
      remember: (ids) => ledger.remember(ids),
    });
    // A resumed attempt: the earlier attempt's half-streamed answer is dropped (this one streams afresh).
    const stale = memo('streamId');
    if (stale !== undefined) void io.remove(stale).catch((err: unknown) => log.debug({ err }, 'could not remove the earlier stream'));
    presenter.startTyping();
    return presenter;
  });
  progress.catch((err: unknown) => log.error({ err }, 'teams could not open the conversation to answer in'));
  const { id: userId, aadObjectId } = data.reference.user ?? { id: '' };
  const offerTo: OfferRecipient | undefined =
    data.scope === 'personal' && deps.fileConsent ? { conversationId: data.reference.conversation.id, userId, ...(aadObjectId !== undefined ? { aadObjectId } : {}) } : undefined;

  return {
    progress(p) {
      void progress.then((presenter) => presenter.sink(p), () => undefined);
    },
    async deliver(reply) {
      try {
        const presenter = await progress;
        const { io } = await opened;
        await presenter.close(reply.kind === 'error' ? 'failed' : 'done');
        await post(reply, presenter, io);
      } catch (err) {
        log.error({ err }, 'teams could not deliver the answer');
      } finally {
        deps.turns.close(turn.messageKey);
      }
    },
    async suspend() {
      await progress.then((presenter) => presenter.close('suspended'), () => undefined);
      deps.turns.close(turn.messageKey);
    },
  };

  /**
   * Posts the answer's parts in order, each rendered only when it is its turn (the text goes out before any
   * chart or file is read); in personal chat files are offered with consent cards.
   */
  async function post(reply: Reply, presenter: ProgressPresenter, io: TurnIO): Promise<void> {
    const plan = planReply(reply, {
      maxMessageBytes: deps.maxMessageBytes,
      host: (file) => deps.files.put(file),
      textOnly: presenter.streaming,
      ...(offerTo !== undefined ? { offer: (file: ReplyOutput) => deps.offers.offer(file, offerTo) } : {}),
    });
    let textFailed = false;
    for (const [i, planned] of plan.entries()) {
      if (ledger.posted(planned.id)) continue;
      const message = await planned.render();
      if (message === undefined) continue;
      // The first text part ends the stream when the answer was streamed (a resumed attempt streams afresh).
      const sent = i === 0 && presenter.streaming && message.part === 'text' ? await presenter.endStream(message.activity) : await send(io, message);
      if (sent) await ledger.markPosted(planned.id);
      else if (message.part === 'text') textFailed = true;
    }
    if (textFailed) await io.send({ type: 'message', text: TEXT_REFUSED }).catch((err: unknown) => log.error({ err }, 'teams could not post the fallback message'));
  }

  async function send(io: TurnIO, part: OutboundMessage): Promise<boolean> {
    try {
      const id = await io.send(part.activity);
      await part.sent?.(id).catch((err: unknown) => log.warn({ err }, 'teams could not record a sent activity'));
      return true;
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      log.warn({ err: { message: (err as Error).message, status }, part: part.part }, 'teams could not post part of the answer');
      if (part.fallback === undefined) return false;
      return part.fallback().then((a) => io.send(a)).then(() => true, () => false);
    }
  }
}
