import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Engine, EngineFile, EngineOutput, EngineSession } from './engine.js';
import { CrunchError, errorCode, toUserMessage } from './errors.js';
import { type FileLimits, formatDuration, helpText, openChecked, screenAttachments } from './files.js';
import { KeyedSerialQueue } from './ordering.js';
import { dropRepeatedStatus, type ProgressSink } from './progress.js';
import { type Reply, type ReplyOutput, textReply } from './reply.js';
import { keys, type Store } from './store.js';
import { conversationId, type Turn } from './turn.js';

export type { FileLimits } from './files.js';

/**
 * How long a delivered message stays claimed. Slack retries an unacknowledged event three times over
 * about five minutes and Teams resends within seconds; an hour outlasts both with a wide margin, while
 * keeping the store small.
 */
export const DEDUPE_TTL_MS = 60 * 60 * 1000;

/** How much longer than a turn's deadline the cross-replica lease lasts: time to post the answer. */
const LOCK_DELIVERY_MARGIN_MS = 2 * 60 * 1000;
const LOCK_POLL_MS = 200;

/** A conversation idle this long is forgotten by the store (its files expire at the provider after 30 days too). */
export const SESSION_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export interface ConversationServiceDeps {
  store: Store;
  engine: Engine;
  limits: FileLimits & { turnTimeoutMs: number };
  logger: Logger;
  now?: () => Date;
}

/** Posts a reply on the platform; called inside the conversation's turn, so replies never interleave. */
export type Deliver = (reply: Reply) => Promise<void>;

export interface ConversationService {
  /**
   * Answers one turn. Resolves to undefined when the message was already handled (a retried delivery),
   * so the adapter posts nothing. Never rejects: failures become a friendly error reply.
   * Turns of one conversation run in the order `handle` was called; with `deliver`, the next turn of the
   * conversation starts only after this one's reply was posted.
   */
  handle(turn: Turn, progress: ProgressSink, deliver?: Deliver): Promise<Reply | undefined>;
  /** Resolves when every turn accepted so far has finished. */
  idle(): Promise<void>;
}

const DEFAULT_FILE_PROMPT =
  'Take a look at the attached file(s): say what they contain, summarise the key figures, and suggest what I could ask next.';

export function createConversationService(deps: ConversationServiceDeps): ConversationService {
  const queue = new KeyedSerialQueue();
  const now = deps.now ?? (() => new Date());

  function handle(turn: Turn, progress: ProgressSink, deliver?: Deliver): Promise<Reply | undefined> {
    const log = deps.logger.child({ conversation: conversationId(turn.conversation), message: turn.messageKey });
    // The place in the conversation's queue is taken now, synchronously, so turns run (and are delivered) in
    // the order the adapter handed them over; the dedupe claim runs meanwhile.
    const claimed = deps.store.claim(keys.dedupe(turn.messageKey), DEDUPE_TTL_MS).then(
      (fresh) => ({ fresh }) as const,
      (err: unknown) => ({ fresh: true, err }) as const,
    );
    const id = conversationId(turn.conversation);
    const post = async (reply: Reply): Promise<Reply> => {
      if (deliver) await deliver(reply).catch((err: unknown) => log.error({ err }, 'delivering the reply failed'));
      return reply;
    };
    const work = queue.run(id, async () => {
      const claim = await claimed;
      if (!claim.fresh) return undefined;
      if ('err' in claim) {
        log.error({ err: claim.err }, 'store unavailable while claiming the message');
        return post(textReply('error', toUserMessage(claim.err)));
      }
      return withConversationLock(id, log, async () => post(await answer(turn, dropRepeatedStatus(progress), log)));
    });
    return claimed.then((claim) => {
      if (claim.fresh) return work;
      log.info('duplicate delivery ignored');
      return undefined;
    });
  }

  /**
   * Several replicas share the store (Redis): the in-process queue orders turns within this process, and a
   * lease in the store keeps two processes from running turns of one conversation at once (they would both
   * read the session and the last write would win). The lease outlives the turn's deadline plus delivery;
   * a replica that dies mid-turn holds it no longer than that.
   */
  async function withConversationLock<T>(id: string, log: Logger, work: () => Promise<T>): Promise<T> {
    const key = keys.lock(id);
    const leaseMs = deps.limits.turnTimeoutMs + LOCK_DELIVERY_MARGIN_MS;
    let acquired = false;
    try {
      for (let waitedMs = 0; !(acquired = await deps.store.claim(key, leaseMs)); waitedMs += LOCK_POLL_MS) {
        if (waitedMs === 0) log.info('conversation busy on another replica; waiting');
        if (waitedMs > leaseMs) break;
        await delay(LOCK_POLL_MS);
      }
    } catch (err) {
      log.warn({ err }, 'could not take the conversation lock; going on without it');
    }
    try {
      return await work();
    } finally {
      if (acquired) await deps.store.delete(key).catch((err: unknown) => log.warn({ err }, 'could not release the conversation lock'));
    }
  }

  async function answer(turn: Turn, progress: ProgressSink, log: Logger): Promise<Reply> {
    const sessionKey = keys.session(conversationId(turn.conversation));
    const text = turn.text.trim();
    const command = turn.attachments.length === 0 ? text.toLowerCase().replace(/^\/|[.!]$/g, '') : '';
    const adapterNotices = turn.notices ?? [];
    let notices = adapterNotices;
    try {
      if (command === 'help' || command === '?') return textReply('help', helpText(deps.limits), adapterNotices);
      if (command === 'reset' || command === 'new') {
        const session = await deps.store.get<EngineSession>(sessionKey);
        await deps.store.delete(sessionKey);
        if (session) await deps.engine.forget?.(session).catch((err: unknown) => log.warn({ err }, 'engine forget failed'));
        return textReply('reset', 'Fresh start: I have forgotten this conversation and its files. What shall we look at?');
      }

      const screening = screenAttachments(turn.attachments, deps.limits);
      notices = [...adapterNotices, ...screening.refusals];
      if (text === '' && screening.candidates.length === 0) {
        const hint =
          turn.attachments.length > 0 || adapterNotices.length > 0
            ? 'I could not use any of the files, so there is nothing to analyse yet.'
            : 'What shall I work on? Ask a question, attach a file, or say `help`.';
        return textReply('help', hint, notices);
      }

      const session = await deps.store.get<EngineSession>(sessionKey);
      // Best effort: a store hiccup must not throw away an answer already computed (or streamed); the
      // next turn then redoes an upload or starts a new sandbox at worst.
      const saveSession = (s: EngineSession) =>
        deps.store.set(sessionKey, s, SESSION_TTL_MS).catch((err: unknown) => log.error({ err }, 'could not save the session'));
      const deadline = new AbortController();
      const files: EngineFile[] = screening.candidates.map((candidate) => ({
        sourceId: candidate.attachment.sourceId,
        name: candidate.name,
        mimeType: candidate.mime,
        ...(candidate.attachment.sizeBytes !== undefined ? { sizeBytes: candidate.attachment.sizeBytes } : {}),
        open: () => openChecked(candidate, deps.limits, deadline.signal),
      }));

      const timer = setTimeout(() => deadline.abort(), deps.limits.turnTimeoutMs);
      const started = Date.now();
      try {
        const result = await deps.engine.run({
          session,
          text: text === '' ? DEFAULT_FILE_PROMPT : text,
          files,
          progress,
          signal: deadline.signal,
          checkpoint: (s) => saveSession(s),
        });
        await saveSession({ ...result.session, lastUsedAt: now().toISOString() });
        log.info({ ms: Date.now() - started, outputs: result.outputs.length }, 'turn answered');
        return {
          kind: 'answer',
          text: result.text,
          images: result.outputs.filter((o) => o.mimeType === 'image/png').map((o) => outputOf(deps.engine, o)),
          files: result.outputs.filter((o) => o.mimeType !== 'image/png').map((o) => outputOf(deps.engine, o)),
          code: result.code,
          notices: [...notices, ...result.notices],
        };
      } catch (err) {
        if (deadline.signal.aborted) {
          throw new CrunchError(
            'deadline',
            `This took longer than ${formatDuration(deps.limits.turnTimeoutMs)}, so I stopped it. Try a narrower question or a smaller file.`,
            { cause: err },
          );
        }
        throw err;
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      const code = errorCode(err);
      log[code === 'internal' ? 'error' : 'warn']({ err, code }, 'turn failed');
      return { ...textReply('error', toUserMessage(err), notices), error: { code } };
    }
  }

  return { handle, idle: () => queue.idle() };
}

function outputOf(engine: Engine, output: EngineOutput): ReplyOutput {
  const { ref, ...described } = output;
  return { ...described, open: (signal) => engine.openOutput(ref, signal) };
}
