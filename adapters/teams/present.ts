import type { Logger } from 'pino';
import type { DeliveryLedger, Presenter, Reply, ReplyOutput, Turn } from '../../src/core/index.js';
import type { FileOffers, OfferRecipient } from './files/file-consent.js';
import type { FileHost } from './files/signed-urls.js';
import { type OutboundMessage, type PlannedPart, textActivity } from './render/activity.js';
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
/** What a progress message says when the answer had to be posted as a new message below it, and it could not be deleted. */
const ANSWER_BELOW = '⬇️ My answer is just below.';

/**
 * A turn on Teams, as the person sees it: typing (chats only), the progress in a stream (personal chat) or a
 * status message edited in place, and then the answer in that same message: one message per answer. A stream
 * ends with the answer's text and is then edited into the answer's card when it has charts, file links,
 * tables or code (measured in the Agents Playground: a final stream message with text and a card shows two
 * bubbles, a final text message edited into the card shows one); a status message is edited into the answer.
 * What cannot be in that message follows it: file consent cards (personal chat), the further parts of a very
 * long text. All of it goes through the turn's proactive context, replying to the user's message. The progress
 * message's id and each part are recorded in the turn's ledger, so that a resumed turn edits the same message
 * and never posts a part twice.
 */
export function createPresenter(turn: Turn, ledger: DeliveryLedger, deps: PresentDeps): Presenter {
  const data = turn.platformData as unknown as TeamsTurnData;
  const log = deps.logger.child({ message: turn.messageKey });
  const opened = deps.turns.get(turn.messageKey, data.reference);
  const progressId = typeof ledger.memo['progressId'] === 'string' ? ledger.memo['progressId'] : undefined;
  const progress = opened.then(({ io }) => {
    const presenter = new ProgressPresenter(io, {
      typingIntervalMs: deps.typingIntervalMs,
      streamIntervalMs: 1000,
      streaming: deps.streaming && data.scope === 'personal',
      // No typing in channels: Teams does not show it there, and the Playground drops the next message.
      typing: data.scope !== 'channel',
      logger: log,
      ...(progressId !== undefined ? { progressId } : {}),
      remember: (id) => ledger.remember({ progressId: id }),
    });
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
        await presenter.close();
        await post(reply, presenter, io);
      } catch (err) {
        log.error({ err }, 'teams could not deliver the answer');
      } finally {
        deps.turns.close(turn.messageKey);
      }
    },
    async suspend() {
      await progress.then((presenter) => presenter.close(), () => undefined);
      deps.turns.close(turn.messageKey);
    },
  };

  /**
   * Posts the answer: into the progress message when there is one (a stream ends with the text first, so the
   * person reads it at once, then becomes the card), else as a new message; then the parts that follow it,
   * each rendered only when it is its turn. In personal chat files are offered with consent cards.
   */
  async function post(reply: Reply, presenter: ProgressPresenter, io: TurnIO): Promise<void> {
    const { parts, text, answerIsText } = planReply(reply, {
      maxMessageBytes: deps.maxMessageBytes,
      host: (file) => deps.files.put(file),
      ...(offerTo !== undefined ? { offer: (file: ReplyOutput) => deps.offers.offer(file, offerTo) } : {}),
    });
    const [answer, ...rest] = parts;
    if (answer !== undefined && !ledger.posted(answer.id) && (await placeAnswer(answer, { text, answerIsText }, presenter, io))) await ledger.markPosted(answer.id);
    for (const planned of rest) {
      if (ledger.posted(planned.id)) continue;
      const message = await planned.render();
      if (message !== undefined && (await send(io, message))) await ledger.markPosted(planned.id);
    }
  }

  /**
   * The answer's message in place of the progress message, or posted new (the progress message then goes);
   * when Teams takes neither, a short apology in its place. True when the answer is shown.
   */
  async function placeAnswer(answer: PlannedPart, streamed: { text: string; answerIsText: boolean }, presenter: ProgressPresenter, io: TurnIO): Promise<boolean> {
    let home = presenter.progressMessage;
    if (presenter.streaming) {
      if (!(await presenter.endStream(textActivity(streamed.text)))) home = undefined;
      else if (streamed.answerIsText) return true;
    }
    const message = await answer.render();
    if (message === undefined) return true;
    if (home !== undefined && (await edit(io, home, message))) return true;
    if (await send(io, message)) {
      if (home !== undefined) await io.remove(home).catch(() => io.update({ ...textActivity(ANSWER_BELOW), id: home })).catch((err: unknown) => log.warn({ err }, 'teams could not clear the progress message'));
      return true;
    }
    const apology = textActivity(TEXT_REFUSED);
    if (home === undefined || !(await edit(io, home, { part: 'answer', activity: apology }))) {
      await io.send(apology).catch((err: unknown) => log.error({ err }, 'teams could not post the fallback message'));
    }
    return false;
  }

  /** Edits message `id` into `part` (or its smaller fallback, made only when needed). */
  async function edit(io: TurnIO, id: string, part: OutboundMessage): Promise<boolean> {
    for (const next of [async () => part.activity, ...(part.fallback !== undefined ? [part.fallback] : [])]) {
      try {
        await io.update({ ...(await next()), id });
        return true;
      } catch (err) {
        log.warn({ err: { message: (err as Error).message, status: (err as { statusCode?: number }).statusCode } }, 'teams could not edit the progress message into the answer');
      }
    }
    return false;
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
