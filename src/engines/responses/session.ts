import OpenAI from 'openai';
import type { Logger } from 'pino';
import { CrunchError, type EngineSession, type ProgressSink, type SessionFile } from '../../core/index.js';

/**
 * The provider-side state of one conversation: its Conversations API conversation and its container.
 * Containers expire after 20 idle minutes and files or conversations can disappear (deleted, expired,
 * another project's key); each is noticed by asking the API, replaced, and the user told only when
 * something they gave is really gone.
 */
export interface SessionContext {
  client: OpenAI;
  /** Runs a call under the engine's retry policy (failures come back as CrunchErrors with the cause). */
  call: <T>(fn: () => Promise<T>) => Promise<T>;
  signal: AbortSignal;
  progress: ProgressSink;
  logger: Logger;
  /** Lines for the user about what could not be kept. */
  notices: string[];
  /** Containers made this turn (each is a billed sandbox session). */
  sandboxesOpened: number;
}

const CONTAINER_IDLE_MINUTES = 20;
/** Well inside the idle expiry, with room for clock skew and a long previous turn. */
const TRUSTED_IDLE_MS = 10 * 60 * 1000;

function isNotFound(err: unknown): boolean {
  return err instanceof CrunchError && err.cause instanceof OpenAI.NotFoundError;
}

export async function ensureConversation(ctx: SessionContext, session: EngineSession): Promise<EngineSession> {
  if (session.contextId !== undefined) return session;
  const conversation = await ctx.call(() => ctx.client.conversations.create({}, { signal: ctx.signal }));
  return { ...session, contextId: conversation.id };
}

/** The session's container, alive and holding the session's files; `added` were uploaded this turn. */
export async function ensureContainer(
  ctx: SessionContext,
  session: EngineSession,
  added: SessionFile[],
): Promise<{ session: EngineSession; changed: boolean }> {
  const id = session.containerId;
  if (id !== undefined && (recentlyUsed(session) || (await containerAlive(ctx, id)))) {
    for (const file of added) await ctx.call(() => ctx.client.containers.files.create(id, { file_id: file.fileId }, { signal: ctx.signal }));
    return { session, changed: false };
  }
  if (id !== undefined) ctx.logger.info({ container: id }, 'container expired; starting a new one with the conversation files');
  return { session: await newContainer(ctx, session), changed: true };
}

/**
 * After the model call failed with a 400/404: replaces whatever part of the session the API lost (an
 * expired container, a deleted conversation). Undefined when nothing was lost, so the failure stands.
 */
export async function repairSession(ctx: SessionContext, session: EngineSession): Promise<EngineSession | undefined> {
  if (session.containerId !== undefined && !(await containerAlive(ctx, session.containerId))) {
    ctx.logger.info({ container: session.containerId }, 'container expired mid-turn; starting a new one');
    return newContainer(ctx, session);
  }
  if (session.contextId !== undefined && !(await conversationExists(ctx, session.contextId))) {
    ctx.logger.warn({ conversation: session.contextId }, 'conversation lost at the provider; starting a new one');
    ctx.notices.push('I could not find the earlier context of this conversation on the AI service, so I carried on without it. Your files are still here.');
    return ensureConversation(ctx, { ...session, contextId: undefined });
  }
  return undefined;
}

/**
 * A container used in the last few minutes cannot have reached its 20 idle minutes: skip asking the API
 * (a request on every follow-up). If it was deleted anyway, the model call fails and repairSession
 * replaces it.
 */
function recentlyUsed(session: EngineSession): boolean {
  return Date.now() - Date.parse(session.lastUsedAt) < TRUSTED_IDLE_MS;
}

async function containerAlive(ctx: SessionContext, id: string): Promise<boolean> {
  try {
    const container = await ctx.call(() => ctx.client.containers.retrieve(id, { signal: ctx.signal }));
    return container.status !== 'expired';
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

async function conversationExists(ctx: SessionContext, id: string): Promise<boolean> {
  try {
    await ctx.call(() => ctx.client.conversations.retrieve(id, { signal: ctx.signal }));
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** A fresh container with the session's files; files the API no longer has are dropped, and the user told. */
async function newContainer(ctx: SessionContext, session: EngineSession): Promise<EngineSession> {
  ctx.progress({ type: 'status', text: 'starting the sandbox…' });
  const create = (files: SessionFile[]) =>
    ctx.call(() =>
      ctx.client.containers.create(
        {
          name: 'crunch',
          file_ids: files.map((f) => f.fileId),
          expires_after: { anchor: 'last_active_at', minutes: CONTAINER_IDLE_MINUTES },
        },
        { signal: ctx.signal },
      ),
    );
  let files = session.files;
  let container: Awaited<ReturnType<typeof create>>;
  try {
    container = await create(files);
  } catch (err) {
    if (!isNotFound(err) || files.length === 0) throw err;
    files = await keepExistingFiles(ctx, files);
    container = await create(files);
  }
  ctx.sandboxesOpened += 1;
  return { ...session, files, containerId: container.id };
}

async function keepExistingFiles(ctx: SessionContext, files: SessionFile[]): Promise<SessionFile[]> {
  const kept: SessionFile[] = [];
  for (const file of files) {
    try {
      await ctx.call(() => ctx.client.files.retrieve(file.fileId, { signal: ctx.signal }));
      kept.push(file);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      ctx.logger.warn({ file: file.fileId }, 'file lost at the provider; dropped from the session');
      ctx.notices.push(`**${file.name}** is no longer available to me (it expired or was deleted); please share it again.`);
    }
  }
  return kept;
}
