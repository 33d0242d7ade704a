import OpenAI from 'openai';
import type { Response, ResponseCreateParamsStreaming } from 'openai/resources/responses/responses';
import type { Logger } from 'pino';
import {
  CrunchError,
  type Engine,
  type EngineRunInput,
  type EngineRunResult,
  type EngineSession,
  type EngineUsage,
  type Forgotten,
  type Json,
  type SessionFile,
} from '../../core/index.js';
import { StreamedTextCleaner } from '../shared/answer.js';
import { createOpenAIClient, type ModelApi } from '../shared/client.js';
import { describeRejection, isTransient, mayBeSessionLoss, NoRetry, type RetryPolicy, toCrunchError, withRetries } from '../shared/errors.js';
import { collectAnswer, type ContainerFileRef, openContainerFile, ranCode } from './output.js';
import { ensureContainer, ensureConversation, repairSession, type SessionContext } from './session.js';
import { uploadFile } from './uploads.js';

/**
 * The `responses` engine: OpenAI's (or Azure OpenAI's v1) Responses API with the hosted code_interpreter
 * tool. Per conversation it keeps a Conversations API conversation (context across turns) and an
 * explicit container holding the conversation's files; when the container expires (20 idle minutes) a
 * new one is made with the same files, silently.
 */

export interface ResponsesEngineOptions {
  api: ModelApi;
  retry: RetryPolicy;
  /** Generated files larger than this are not downloaded. */
  maxFileBytes: number;
  logger: Logger;
  /** Per-request timeout handed to the SDK; the turn's own deadline is the signal. */
  requestTimeoutMs?: number;
}

export const ENGINE_NAME = 'responses';
/** How long deleting a conversation's resources may take (it runs outside any turn's deadline). */
const FORGET_TIMEOUT_MS = 30_000;

/** Failures the API reports inside a stream (response.failed / error events) rather than as HTTP errors. */
class StreamFailure extends Error {
  constructor(
    readonly code: string | null | undefined,
    message: string,
  ) {
    super(message);
  }
}

const TRANSIENT_STREAM_CODES = new Set(['server_error', 'rate_limit_exceeded', 'vector_store_timeout']);

export function createResponsesEngine(options: ResponsesEngineOptions): Engine {
  const client = createOpenAIClient(options.api, options.requestTimeoutMs);
  const { retry, logger } = options;

  async function run(input: EngineRunInput): Promise<EngineRunResult> {
    const { signal, progress } = input;
    const notices: string[] = [];
    const ctx: SessionContext = { client, call: (fn) => withRetries(retry, signal, fn), signal, progress, logger, notices, sandboxesOpened: 0 };
    const output = { client, retry, signal, maxFileBytes: options.maxFileBytes };
    const now = new Date().toISOString();
    let session: EngineSession = input.session ?? { engine: ENGINE_NAME, files: [], createdAt: now, lastUsedAt: now };

    // Independent requests run side by side: the conversation is made while the files upload and the sandbox
    // is made (or checked) with them. Everything is awaited before a failure counts, so that every upload that
    // finished and a container that was made are kept in the session.
    const uploaded = { added: [] as SessionFile[], mentioned: [] as string[] };
    const [context, sandbox] = await Promise.allSettled([
      ensureConversation(ctx, session),
      uploadNew(session, input, uploaded, notices).then(() => ensureContainer(ctx, { ...session, files: [...session.files, ...uploaded.added] }, uploaded.added)),
    ]);
    const before = session;
    if (context.status === 'fulfilled') session = { ...session, contextId: context.value.contextId };
    session = sandbox.status === 'fulfilled' ? { ...session, ...pick(sandbox.value.session) } : { ...session, files: [...session.files, ...uploaded.added] };
    const changed = session.contextId !== before.contextId || session.containerId !== before.containerId || session.files.length !== before.files.length;
    if (changed) await input.checkpoint(session);
    if (context.status === 'rejected') throw toCrunchError(context.reason);
    if (sandbox.status === 'rejected') throw toCrunchError(sandbox.reason);

    const mentioned = uploaded.mentioned;
    const userText =
      mentioned.length > 0 ? `${input.text}\n\n(Files attached to this message, in /mnt/data: ${mentioned.join(', ')})` : input.text;

    let response: Response;
    try {
      response = await respond(session, userText, input);
    } catch (err) {
      const repaired = mayBeSessionLoss(err) ? await repairSession(ctx, session) : undefined;
      if (repaired === undefined) throw toCrunchError(err);
      session = repaired;
      await input.checkpoint(session);
      response = await respond(session, userText, input);
    }
    const usage: EngineUsage = {
      model: response.model || options.api.model,
      inputTokens: response.usage?.input_tokens ?? 0,
      cachedTokens: response.usage?.input_tokens_details?.cached_tokens ?? 0,
      outputTokens: response.usage?.output_tokens ?? 0,
      // Containers are made with the default memory (1 GB), billed per session.
      sandboxes: ctx.sandboxesOpened > 0 ? { '1g': ctx.sandboxesOpened } : {},
    };

    // An answer without code has nothing to collect, and no status to flash.
    if (ranCode(response)) progress({ type: 'status', text: 'collecting results…' });
    const answer = await collectAnswer(output, response, session.containerId!, knownFiles(session));
    if (response.status === 'incomplete') {
      answer.text += `\n\n_(The answer was cut short: ${response.incomplete_details?.reason ?? 'incomplete'}.)_`;
    }
    session = { ...session, data: { ...session.data, containerFiles: { [session.containerId!]: answer.containerFiles } } };
    return { session, text: answer.text, outputs: answer.outputs, code: answer.code, notices: [...notices, ...answer.notices], usage };
  }

  /**
   * Uploads the turn's files the session does not hold yet into `into`, as each finishes (a failure keeps the
   * ones done before it); a file that cannot be used becomes a notice.
   */
  async function uploadNew(
    session: EngineSession,
    input: EngineRunInput,
    into: { added: SessionFile[]; mentioned: string[] },
    notices: string[],
  ): Promise<void> {
    const { added, mentioned } = into;
    for (const file of input.files) {
      const known = session.files.find((f) => f.sourceId === file.sourceId);
      if (known) {
        mentioned.push(known.name);
        continue;
      }
      input.progress({ type: 'status', text: `reading ${file.name}…` });
      try {
        const fileId = await uploadFile({ client, retry, signal: input.signal }, file);
        added.push({ sourceId: file.sourceId, fileId, name: file.name });
        mentioned.push(file.name);
      } catch (err) {
        if (err instanceof CrunchError && err.code.startsWith('attachment_')) {
          // Logged too: a refused link (e.g. to a private address) is something an operator should see.
          logger.warn({ err, file: file.name, code: err.code }, 'attachment skipped');
          notices.push(err.userMessage);
        } else if (err instanceof CrunchError && err.code === 'engine_rejected')
          notices.push(`**${file.name}** skipped: the AI service refused this file (${describeRejection(err)}).`);
        else throw toCrunchError(err);
      }
    }
  }

  /** One streamed response. Retried as a whole while nothing has been streamed to the user yet. */
  async function respond(session: EngineSession, text: string, input: EngineRunInput): Promise<Response> {
    const { signal, progress } = input;
    const body: ResponseCreateParamsStreaming = {
      model: options.api.model,
      instructions: options.api.instructions,
      conversation: session.contextId!,
      input: [{ role: 'user', content: [{ type: 'input_text', text }] }],
      tools: [{ type: 'code_interpreter', container: session.containerId! }],
      include: ['code_interpreter_call.outputs'],
      // A long thread must not fail once it outgrows the context window: the oldest items are dropped.
      truncation: 'auto',
      stream: true,
    };
    return withRetries(retry, signal, async () => {
      let streamed = false;
      const cleaner = new StreamedTextCleaner();
      const emit = (text: string) => {
        if (text !== '') progress({ type: 'text', delta: text });
      };
      try {
        progress({ type: 'status', text: 'thinking…' });
        const stream = await client.responses.create(body, { signal });
        for await (const event of stream) {
          switch (event.type) {
            case 'response.output_item.added':
              if (event.item.type === 'code_interpreter_call') progress({ type: 'status', text: 'running code…' });
              break;
            case 'response.code_interpreter_call.interpreting':
              progress({ type: 'status', text: 'running code…' });
              break;
            case 'response.output_text.delta':
              streamed = true;
              emit(cleaner.push(event.delta));
              break;
            case 'response.completed':
            case 'response.incomplete':
              emit(cleaner.flush());
              return event.response;
            case 'response.failed':
              throw new StreamFailure(event.response.error?.code, event.response.error?.message ?? 'response failed');
            case 'error':
              throw new StreamFailure(event.code, event.message);
            default:
              break;
          }
        }
        throw new StreamFailure('server_error', 'the response stream ended before the response completed');
      } catch (err) {
        if (err instanceof StreamFailure) {
          const transient = TRANSIENT_STREAM_CODES.has(err.code ?? '');
          if (transient && !streamed) throw new OpenAI.InternalServerError(500, undefined, err.message, new Headers());
          throw new NoRetry(
            transient
              ? new CrunchError('engine_unavailable', 'The AI service failed while answering. Please ask again in a moment.', { cause: err })
              : new CrunchError('engine_rejected', `The AI service could not complete this answer (${err.code ?? 'failed'}). Please try rephrasing it.`, {
                  cause: err,
                }),
          );
        }
        if (streamed && isTransient(err)) throw new NoRetry(err);
        throw err;
      }
    });
  }

  /** Deletes the session's container, conversation and uploaded files at the provider; a 404 means already gone. */
  async function forget(session: EngineSession): Promise<Forgotten> {
    const signal = AbortSignal.timeout(FORGET_TIMEOUT_MS);
    const removed = (call: () => Promise<unknown>) =>
      withRetries(retry, signal, call).then(
        () => true,
        (err: unknown) => {
          if (err instanceof CrunchError && err.cause instanceof OpenAI.NotFoundError) return true;
          logger.warn({ err }, 'could not delete a resource of a forgotten conversation');
          return false;
        },
      );
    const [sandbox, context, ...files] = await Promise.all([
      session.containerId ? removed(() => client.containers.delete(session.containerId!, { signal })) : undefined,
      session.contextId ? removed(() => client.conversations.delete(session.contextId!, { signal })) : undefined,
      ...session.files.map((file) => removed(() => client.files.delete(file.fileId, { signal }))),
    ]);
    const failed = [sandbox, context, ...files].filter((ok) => ok === false).length;
    return { files: files.filter(Boolean).length, sandboxes: sandbox ? 1 : 0, context: context === true, failed };
  }

  async function openOutput(ref: Json, signal?: AbortSignal) {
    const file = ref as unknown as ContainerFileRef;
    return openContainerFile({ client, retry, signal: signal ?? new AbortController().signal, maxFileBytes: options.maxFileBytes }, file);
  }

  return { name: ENGINE_NAME, run, openOutput, forget };
}

/** What the sandbox side of a turn's set-up decides: the container and the files it holds. */
function pick(session: EngineSession): Pick<EngineSession, 'containerId' | 'files'> {
  return { containerId: session.containerId, files: session.files };
}

/**
 * The container files that were there before this turn: the session's own record for its current container
 * (kept after each turn), or none for a new container (the files people shared come in as `user` files and
 * are never taken for outputs).
 */
function knownFiles(session: EngineSession): Set<string> {
  const byContainer = session.data?.['containerFiles'] as Record<string, string[]> | undefined;
  return new Set(byContainer?.[session.containerId ?? ''] ?? []);
}
