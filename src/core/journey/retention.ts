import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Engine, EngineSession, Forgotten, Json } from '../engine.js';
import type { AuditEntry } from '../governance/audit.js';
import { USAGE_KEEP_MS, USAGE_TIMELINE } from '../governance/usage.js';
import type { Inbox } from '../inbox.js';
import { keys } from '../keys.js';
import type { Store } from '../store/index.js';
import { type ConversationKey, conversationId, type Turn } from '../turn.js';

/**
 * Retention (CRUNCH_RETENTION): every conversation with a session is in the `conversations` timeline at
 * its last use. The sweeper turns each one idle past the retention into an `expire` turn in that
 * conversation's own inbox, so that it runs in order with the conversation's messages, never beside one;
 * the worker then deletes the session everywhere (files, sandbox and conversation at the provider, the
 * store's record). Deletions that fail upstream are kept in the `leftovers` timeline and retried, at
 * start-up too, until nothing Crunch made is left behind.
 */
export const CONVERSATIONS_TIMELINE = 'conversations';
export const LEFTOVERS_TIMELINE = 'leftovers';
/** How long a failed deletion waits before it is tried again. */
const LEFTOVER_RETRY_MS = 5 * 60 * 1000;
/** Conversations turned into expire turns per sweep; the next sweep takes the rest. */
const SWEEP_BATCH = 200;

export async function touchConversation(store: Store, conversation: ConversationKey, at: number): Promise<void> {
  await store.timeline(CONVERSATIONS_TIMELINE).put(conversationId(conversation), at, conversation as unknown as Json);
}

export async function untrackConversation(store: Store, conversation: ConversationKey): Promise<void> {
  await store.timeline(CONVERSATIONS_TIMELINE).remove(conversationId(conversation));
}

const NOTHING: Forgotten = { files: 0, sandboxes: 0, context: false, failed: 0 };

/** Deletes what the engine holds for `session`; what it could not delete is kept as a leftover and retried. */
export async function forgetSession(store: Store, engine: Engine, session: EngineSession, log: Logger): Promise<Forgotten> {
  if (engine.forget === undefined || session.engine !== engine.name) return NOTHING;
  const forgotten = await engine.forget(session);
  if (forgotten.failed > 0) {
    log.warn({ failed: forgotten.failed }, 'some of a forgotten conversation could not be deleted upstream; retrying later');
    await store
      .timeline(LEFTOVERS_TIMELINE)
      .put(randomUUID(), Date.now() + LEFTOVER_RETRY_MS, session as unknown as Json)
      .catch((err: unknown) => log.error({ err }, 'could not record a leftover to delete later'));
  }
  return forgotten;
}

export interface RetentionDeps {
  store: Store;
  inbox: Inbox;
  engine: Engine;
  retentionMs: number;
  logger: Logger;
  now: () => Date;
  audit?: ((entry: AuditEntry) => void) | undefined;
}

/**
 * Deletes an idle conversation (an `expire` turn), unless it was used since the sweeper saw it: its
 * session everywhere, then its place in the timeline.
 */
export async function expireConversation(turn: Turn, deps: RetentionDeps): Promise<void> {
  const id = conversationId(turn.conversation);
  const sessionKey = keys.session(id);
  const session = await deps.store.get<EngineSession>(sessionKey);
  const lastUsed = session === undefined ? 0 : Date.parse(session.lastUsedAt);
  if (lastUsed > deps.now().getTime() - deps.retentionMs) {
    await touchConversation(deps.store, turn.conversation, lastUsed);
    return;
  }
  const log = deps.logger.child({ conversation: id });
  const forgotten = session === undefined ? NOTHING : await forgetSession(deps.store, deps.engine, session, log);
  await deps.store.delete(sessionKey);
  await untrackConversation(deps.store, turn.conversation);
  log.info({ files: forgotten.files, sandboxes: forgotten.sandboxes, failed: forgotten.failed }, 'idle conversation deleted (retention)');
  const { platform, workspace, channel } = turn.conversation;
  deps.audit?.({ time: deps.now().toISOString(), platform, workspace, channel, user: '', conversation: id, files: [], outcome: 'deleted', reason: 'retention' });
}

export interface Sweeper {
  /** One pass: idle conversations become expire turns, leftovers are retried, the usage log is trimmed. */
  sweep(): Promise<void>;
  stop(): void;
}

/** Starts sweeping now (what a crash left behind is retried at start-up) and then often enough for the retention. */
export function startRetention(deps: RetentionDeps): Sweeper {
  const log = deps.logger;
  const conversations = deps.store.timeline(CONVERSATIONS_TIMELINE);
  const leftovers = deps.store.timeline(LEFTOVERS_TIMELINE);
  let running: Promise<void> | undefined;

  async function pass(): Promise<void> {
    const now = deps.now().getTime();
    for (const { id, at, value } of await conversations.range(0, now - deps.retentionMs, SWEEP_BATCH)) {
      const turn: Turn = {
        conversation: value as unknown as ConversationKey,
        messageKey: `expire:${id}:${at}`,
        user: { id: 'crunch' },
        text: '',
        files: [],
        platformData: {},
        system: 'expire',
      };
      await deps.inbox.accept(turn, { join: false });
    }
    for (const { id, value } of await leftovers.range(0, now, SWEEP_BATCH)) {
      // Removing it claims it: one replica retries each leftover.
      if (await leftovers.remove(id)) await forgetSession(deps.store, deps.engine, value as unknown as EngineSession, log);
    }
    await deps.store.timeline(USAGE_TIMELINE).trim(now - USAGE_KEEP_MS);
  }

  const sweep = () => {
    running ??= pass()
      .catch((err: unknown) => log.error({ err }, 'retention sweep failed; retrying at the next one'))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const every = Math.min(10 * 60 * 1000, Math.max(1000, Math.floor(deps.retentionMs / 4)));
  const timer = setInterval(() => void sweep(), every).unref();
  void sweep();
  return { sweep, stop: () => clearInterval(timer) };
}
