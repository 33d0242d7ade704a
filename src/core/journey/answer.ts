import type { Logger } from 'pino';
import type { Engine, EngineFile, EngineOutput, EngineSession, EngineUsage, Forgotten } from '../engine.js';
import { CrunchError, errorCode, toUserMessage } from '../errors.js';
import { type FileLimits, formatDuration, helpText, openChecked, screenAttachments, SUPPORTED_EXTENSIONS } from '../files.js';
import { chargeBudgets, checkBudgets, costOf, formatReceipt, type Governance, recordUsage } from '../governance/index.js';
import { metrics } from '../metrics.js';
import { keys } from '../keys.js';
import type { Platform } from '../platform.js';
import { dropRepeatedStatus, type ProgressSink } from '../progress.js';
import { type Reply, type ReplyUsage, textReply } from '../reply.js';
import type { Store } from '../store/index.js';
import { type Attachment, conversationId, type FileRef, type Turn } from '../turn.js';
import type { SavedReply } from './ledger.js';
import { forgetSession, touchConversation, untrackConversation } from './retention.js';

/**
 * The store keeps a session a day past the retention: the retention sweeper deletes it (and what it holds at
 * the provider) first, and the expiry only catches what a sweeper that never ran left.
 */
const SESSION_TTL_MARGIN_MS = 24 * 60 * 60 * 1000;
/** How long a turn from a Slack `app_mention` without files waits for its `message` twin to bring them. */
export const TWIN_WAIT_MS = 2000;
const TWIN_POLL_MS = 100;

const DEFAULT_FILE_PROMPT =
  'Take a look at the attached file(s): say what they contain, summarise the key figures, and suggest what I could ask next.';

export interface AnswerDeps {
  store: Store;
  engine: Engine;
  limits: FileLimits & { turnTimeoutMs: number };
  logger: Logger;
  now: () => Date;
  /** Lines the engine adds to `help` (what its sandbox offers, a warning when it has none). */
  helpLines?: () => string[];
  governance: Governance;
}

export interface Answered {
  reply: Reply;
  /** The same reply as JSON, to be kept until it is delivered. */
  saved: SavedReply;
}

/**
 * The work of one turn: a command (help, reset), or the platform's files prepared and checked, then the
 * engine. Never throws: every failure becomes a friendly error reply. `signal` is the turn's deadline (or
 * its hand-back at shutdown); the caller tells which from its reason.
 */
export async function answer(turn: Turn, platform: Platform, progress: ProgressSink, signal: AbortSignal, deps: AnswerDeps): Promise<Answered> {
  const log = deps.logger;
  const sessionKey = keys.session(conversationId(turn.conversation));
  const text = turn.text.trim();
  let notices = turn.notices ?? [];
  const plain = (reply: Reply): Answered => ({ reply, saved: { ...reply, outputs: [] } });
  try {
    if (turn.refused !== undefined) return plain({ ...textReply('refused', turn.refused.line), refused: turn.refused.reason });
    const files = turn.twin === 'awaits' ? await withTwinFiles(turn, deps.store, signal) : turn.files;
    const command = files.length === 0 ? text.toLowerCase().replace(/^\/|[.!]$/g, '') : '';
    if (command === 'help' || command === '?') return plain(textReply('help', [helpText(deps.limits, platform.followUp), ...(deps.helpLines?.() ?? [])].join('\n'), notices));
    if (command === 'reset' || command === 'new' || command === 'forget' || command === 'delete') {
      const session = await deps.store.get<EngineSession>(sessionKey);
      await deps.store.delete(sessionKey);
      await untrackConversation(deps.store, turn.conversation);
      const forgotten = session === undefined ? undefined : await forgetSession(deps.store, deps.engine, session, log);
      if (command === 'reset' || command === 'new') return plain(textReply('reset', 'Fresh start: I have forgotten this conversation and its files. What shall we look at?'));
      return plain(textReply('forget', forgetConfirmation(forgotten)));
    }
    const overBudget = await checkBudgets(deps.store, turn, deps.governance.budgets, deps.now(), deps.governance.access.adminContact);
    if (overBudget !== undefined) {
      log.info('turn refused: budget reached');
      return plain({ ...textReply('refused', overBudget.line, notices), refused: 'budget' });
    }

    const prepared = await platform.prepare({ ...turn, files }, signal);
    const screening = screenAttachments(prepared.attachments, deps.limits);
    countFiles(prepared.attachments, screening.candidates.map((c) => c.attachment));
    notices = [...notices, ...prepared.notices, ...screening.refusals];
    if (text === '' && screening.candidates.length === 0) {
      const hint =
        files.length > 0 || notices.length > 0
          ? 'I could not use any of the files, so there is nothing to analyse yet.'
          : 'What shall I work on? Ask a question, attach a file, or say `help`.';
      return plain(textReply('help', hint, notices));
    }

    const session = await deps.store.get<EngineSession>(sessionKey);
    // Best effort: a store hiccup must not throw away an answer already computed (or streamed); the
    // next turn then redoes an upload or starts a new sandbox at worst.
    const saveSession = (s: EngineSession) =>
      deps.store.set(sessionKey, s, deps.governance.retentionMs + SESSION_TTL_MARGIN_MS).catch((err: unknown) => log.error({ err }, 'could not save the session'));
    const engineFiles: EngineFile[] = screening.candidates.map((candidate) => ({
      sourceId: candidate.attachment.sourceId,
      name: candidate.name,
      mimeType: candidate.mime,
      ...(candidate.attachment.sizeBytes !== undefined ? { sizeBytes: candidate.attachment.sizeBytes } : {}),
      open: () => openChecked(candidate, deps.limits, signal),
    }));
    const started = Date.now();
    const result = await deps.engine.run({
      session,
      text: text === '' ? DEFAULT_FILE_PROMPT : text,
      files: engineFiles,
      progress: dropRepeatedStatus(progress),
      signal,
      checkpoint: (s) => saveSession(s),
    });
    const usedAt = deps.now();
    await saveSession({ ...result.session, lastUsedAt: usedAt.toISOString() });
    await touchConversation(deps.store, turn.conversation, usedAt.getTime()).catch((err: unknown) => log.error({ err }, 'could not record the conversation for retention'));
    metrics.engineSeconds.observe({ engine: deps.engine.name }, (Date.now() - started) / 1000);
    const usage = result.usage === undefined ? undefined : await account(turn, result.usage, deps);
    const receipt = usage !== undefined && deps.governance.showCost ? formatReceipt(usage) : undefined;
    log.info({ ms: Date.now() - started, outputs: result.outputs.length }, 'turn answered');
    const isImage = (o: EngineOutput) => o.mimeType === 'image/png';
    const opened = (o: EngineOutput) => {
      const { ref, ...described } = o;
      return { ...described, open: (s?: AbortSignal) => deps.engine.openOutput(ref, s) };
    };
    const allNotices = [...notices, ...result.notices];
    const accounted = { ...(usage !== undefined ? { usage } : {}), ...(receipt !== undefined ? { receipt } : {}) };
    return {
      reply: {
        kind: 'answer',
        text: result.text,
        images: result.outputs.filter(isImage).map(opened),
        files: result.outputs.filter((o) => !isImage(o)).map(opened),
        code: result.code,
        notices: allNotices,
        ...accounted,
      },
      saved: {
        kind: 'answer',
        text: result.text,
        outputs: result.outputs.map((o) => ({ ...o, image: isImage(o) })),
        code: result.code,
        notices: allNotices,
        ...accounted,
      },
    };
  } catch (err) {
    if (signal.aborted && signal.reason instanceof HandBack) throw signal.reason;
    const failure = signal.aborted ? deadlineError(deps.limits.turnTimeoutMs, err) : err;
    const code = errorCode(failure);
    metrics.errors.inc({ kind: code });
    log[code === 'internal' ? 'error' : 'warn']({ err: failure, code }, 'turn failed');
    return plain({ ...textReply('error', toUserMessage(failure), notices), error: { code } });
  }
}

/**
 * Prices what the turn consumed, counts it against the budgets and writes it to the usage log. The store
 * failing here costs an entry, never the answer.
 */
async function account(turn: Turn, consumed: EngineUsage, deps: AnswerDeps): Promise<ReplyUsage> {
  const cost = costOf(consumed, deps.governance.prices);
  const usage: ReplyUsage = {
    model: consumed.model,
    inputTokens: consumed.inputTokens,
    cachedTokens: consumed.cachedTokens,
    outputTokens: consumed.outputTokens,
    sandboxSessions: cost.sandboxSessions,
    ...(cost.usd !== undefined ? { costUsd: cost.usd } : {}),
  };
  metrics.tokens.inc({ engine: deps.engine.name, kind: 'input' }, consumed.inputTokens);
  metrics.tokens.inc({ engine: deps.engine.name, kind: 'cached' }, consumed.cachedTokens);
  metrics.tokens.inc({ engine: deps.engine.name, kind: 'output' }, consumed.outputTokens);
  if (cost.usd !== undefined) metrics.cost.inc({ engine: deps.engine.name }, cost.usd);
  const now = deps.now();
  const { platform, workspace, channel } = turn.conversation;
  const onError = (err: unknown) => deps.logger.error({ err }, 'could not record the turn\'s usage');
  await Promise.all([
    cost.usd === undefined ? undefined : chargeBudgets(deps.store, turn, deps.governance.budgets, cost.usd, now).catch(onError),
    recordUsage(deps.store, turn.messageKey, now.getTime(), {
      platform,
      workspace,
      channel,
      user: turn.user.id,
      conversation: conversationId(turn.conversation),
      engine: deps.engine.name,
      model: consumed.model,
      inputTokens: consumed.inputTokens,
      cachedTokens: consumed.cachedTokens,
      outputTokens: consumed.outputTokens,
      sandboxSessions: cost.sandboxSessions,
      costUsd: cost.usd ?? null,
    }).catch(onError),
  ]);
  return usage;
}

/** What `forget` tells the person it deleted. */
function forgetConfirmation(forgotten: Forgotten | undefined): string {
  if (forgotten === undefined) return 'Done: I held nothing for this conversation, and now hold nothing at all. Mention me to start afresh.';
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts = [
    ...(forgotten.files > 0 ? [`${plural(forgotten.files, 'shared file')}`] : []),
    ...(forgotten.sandboxes > 0 ? ['its Python sandbox'] : []),
    ...(forgotten.context ? ['its history with the AI service'] : []),
    'my record of it',
  ];
  const list = parts.length === 1 ? parts[0]! : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]!}`;
  const pending =
    forgotten.failed > 0 ? ` I could not reach the AI service to delete ${plural(forgotten.failed, 'more item')} just now; I will keep trying until it is gone.` : '';
  return `Deleted this conversation: ${list}.${pending} Mention me to start afresh.`;
}

/**
 * The reason a turn's signal aborts when it must end unanswered, to be resumed by another attempt: the
 * process is shutting down, or another replica took the conversation over.
 */
export class HandBack extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'HandBack';
  }
}

function deadlineError(turnTimeoutMs: number, cause: unknown): CrunchError {
  return new CrunchError(
    'deadline',
    `This took longer than ${formatDuration(turnTimeoutMs)}, so I stopped it. Try a narrower question or a smaller file.`,
    { cause },
  );
}

/** Counts the attached files by type (a supported extension, or "other") and whether they passed the checks. */
function countFiles(attachments: Attachment[], used: Attachment[]): void {
  for (const attachment of attachments) {
    const ext = attachment.name.includes('.') ? attachment.name.slice(attachment.name.lastIndexOf('.') + 1).toLowerCase() : '';
    metrics.files.inc({ type: SUPPORTED_EXTENSIONS.includes(ext) ? ext : 'other', outcome: used.includes(attachment) ? 'used' : 'refused' });
  }
}

/**
 * The files of a turn recorded from a Slack `app_mention` without files, once its `message` twin has
 * said which files the message has (it is recorded under `twin:<message key>` when it arrives), or after
 * TWIN_WAIT_MS without it (a channel whose `message` events the app does not receive).
 */
async function withTwinFiles(turn: Turn, store: Store, signal: AbortSignal): Promise<FileRef[]> {
  for (let waited = 0; ; waited += TWIN_POLL_MS) {
    const twin = await store.get<FileRef[]>(keys.twin(turn.messageKey));
    if (twin !== undefined) {
      const known = new Set(turn.files.map((f) => f.sourceId));
      return [...turn.files, ...twin.filter((f) => !known.has(f.sourceId))];
    }
    if (waited >= TWIN_WAIT_MS || signal.aborted) return turn.files;
    await new Promise((resolve) => setTimeout(resolve, TWIN_POLL_MS));
  }
}
