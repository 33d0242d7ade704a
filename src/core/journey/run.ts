import type { Logger } from 'pino';
import type { InboxEntry } from '../inbox.js';
import type { Platform, Presenter } from '../platform.js';
import { type Reply, textReply } from '../reply.js';
import { conversationId, type Turn } from '../turn.js';
import type { AuditEntry } from '../governance/index.js';
import { answer, type AnswerDeps, HandBack } from './answer.js';
import { loadTurnRecord } from './ledger.js';
import { metrics } from '../metrics.js';

/** A turn that was started this many times and never finished (it kept taking its worker down) is given up. */
export const MAX_ATTEMPTS = 3;

const GAVE_UP =
  'I was interrupted several times while working on this message (a restart or a crash each time), so I stopped trying. Please send it again; if it keeps happening, tell an admin.';

export type Ran =
  /** Delivered: once the turn is out of the inbox, `forget` drops its record. */
  | { outcome: 'done'; forget: () => Promise<void> }
  | { outcome: 'handed-back' };

/**
 * One attempt at one turn, by the worker that owns its conversation: show progress, compute (or take the
 * reply an earlier attempt computed), deliver, and say whether the turn is done. `stop` aborts when the
 * attempt must end without an answer (shutdown, or the conversation was taken over): the turn then stays
 * in its inbox for the next attempt.
 */
export async function runTurn(entry: InboxEntry, platform: Platform, stop: AbortSignal, deps: AnswerDeps): Promise<Ran> {
  const { turn } = entry;
  const log: Logger = deps.logger.child({ conversation: conversationId(turn.conversation), message: turn.messageKey, attempt: entry.attempts });
  const record = await loadTurnRecord(deps.store, turn.messageKey, (err) => log.warn({ err }, 'could not read or write the turn record'));
  const presenter: Presenter = platform.present(turn, record.ledger);
  const started = Date.now();
  metrics.queueSeconds.observe({ platform: turn.conversation.platform }, Math.max(0, started - entry.acceptedAt) / 1000);
  if (entry.attempts > 1) log.info('resuming a turn an earlier attempt did not finish');

  let reply = record.savedReply(deps.engine);
  if (reply === undefined && entry.attempts > MAX_ATTEMPTS) {
    log.error('turn given up after repeated interruptions');
    reply = { ...textReply('error', GAVE_UP, turn.notices ?? []), error: { code: 'internal' } };
  }
  if (reply === undefined) {
    const deadline = AbortSignal.timeout(deps.limits.turnTimeoutMs);
    const signal = AbortSignal.any([deadline, stop]);
    try {
      const answered = await answer(turn, platform, presenter.progress, signal, { ...deps, logger: log });
      reply = answered.reply;
      await record.saveReply(answered.saved);
    } catch (err) {
      if (!(err instanceof HandBack)) throw err;
      await presenter.suspend();
      log.info({ reason: stop.reason instanceof Error ? stop.reason.message : undefined }, 'turn handed back unanswered');
      return { outcome: 'handed-back' };
    }
  }
  await presenter.deliver(reply);
  audit(turn, reply, deps);
  metrics.turns.inc({ platform: turn.conversation.platform, outcome: reply.error?.code ?? (reply.kind === 'answer' ? 'answered' : reply.kind) });
  metrics.turnSeconds.observe({ platform: turn.conversation.platform }, (Date.now() - started) / 1000);
  return { outcome: 'done', forget: () => record.forget() };
}

/** One line per delivered turn in the audit log (CRUNCH_AUDIT_LOG), when there is one. */
function audit(turn: Turn, reply: Reply, deps: AnswerDeps): void {
  const sink = deps.governance.audit;
  if (sink === undefined) return;
  const { platform, workspace, channel } = turn.conversation;
  const outcome: AuditEntry['outcome'] =
    reply.error !== undefined ? 'failed' : reply.kind === 'refused' ? 'refused' : reply.kind === 'answer' ? 'answered' : 'command';
  const reason = reply.error?.code ?? reply.refused ?? (outcome === 'command' ? reply.kind : undefined);
  const { usage } = reply;
  try {
    sink({
      time: deps.now().toISOString(),
      platform,
      workspace,
      channel,
      user: turn.user.id,
      conversation: conversationId(turn.conversation),
      message: turn.messageKey,
      files: turn.files.map((f) => ({ name: f.name, ...(f.sizeBytes !== undefined ? { sizeBytes: f.sizeBytes } : {}) })),
      outcome,
      ...(reason !== undefined ? { reason } : {}),
      ...(usage !== undefined
        ? {
            model: usage.model,
            tokens: { input: usage.inputTokens, cached: usage.cachedTokens, output: usage.outputTokens },
            sandboxSessions: usage.sandboxSessions,
            costUsd: usage.costUsd ?? null,
          }
        : {}),
      ...(deps.governance.auditText ? { text: turn.text } : {}),
    });
  } catch (err) {
    deps.logger.error({ err }, 'could not write the audit log');
  }
}
