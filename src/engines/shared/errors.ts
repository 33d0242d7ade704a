import { setTimeout as delay } from 'node:timers/promises';
import OpenAI from 'openai';
import pRetry from 'p-retry';
import { CrunchError, metrics, retryAfterMs } from '../../core/index.js';

/**
 * OpenAI failures → Crunch errors, by class and error code (never by message text), and the one retry
 * policy for every engine call. The SDK's own retries are off (maxRetries: 0) so that attempts are counted
 * in one place: `maxAttempts` per call, first attempt included.
 */

export interface RetryPolicy {
  maxAttempts: number;
  /** First backoff delay; doubles each attempt, with jitter, up to MAX_BACKOFF_MS. */
  baseDelayMs: number;
}

const MAX_BACKOFF_MS = 30_000;
/** A Retry-After longer than this is not waited for: the call fails as unavailable instead. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Marks an error that must not be retried even if its class usually is (e.g. output already streamed). */
export class NoRetry extends Error {
  constructor(readonly error: unknown) {
    super('not retried');
  }
}

export function isTransient(err: unknown): boolean {
  if (err instanceof OpenAI.APIUserAbortError) return false;
  if (err instanceof OpenAI.APIConnectionError) return true; // includes timeouts and resets
  if (err instanceof OpenAI.RateLimitError) return err.code !== 'insufficient_quota';
  if (err instanceof OpenAI.ConflictError) return true;
  if (err instanceof OpenAI.InternalServerError) return true;
  if (err instanceof OpenAI.APIError) return err.status === 408;
  return err instanceof TypeError && /fetch failed|terminated|ECONNRESET/i.test(String(err.cause ?? err.message));
}

/** Milliseconds the server asked us to wait, from retry-after-ms or retry-after (seconds or a date). */
export function retryAfterFromError(err: unknown): number | undefined {
  if (!(err instanceof OpenAI.APIError) || !err.headers) return undefined;
  const ms = Number(err.headers.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms >= 0 && err.headers.get('retry-after-ms') !== null) return ms;
  return retryAfterMs(err.headers.get('retry-after'));
}

function backoffMs(policy: RetryPolicy, attempt: number): number {
  const base = Math.min(MAX_BACKOFF_MS, policy.baseDelayMs * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

/**
 * Runs one engine call with the retry policy: transient failures are retried with backoff (or the
 * server's Retry-After), permanent ones fail at once. What finally fails is mapped to a `CrunchError`.
 */
export async function withRetries<T>(policy: RetryPolicy, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
  try {
    return await pRetry(call, {
      retries: policy.maxAttempts - 1,
      minTimeout: 0,
      factor: 1,
      signal,
      shouldRetry: ({ error }) => !(error instanceof NoRetry) && isTransient(error) && !signal.aborted,
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft === 0 || error instanceof NoRetry || !isTransient(error)) return;
        const asked = retryAfterFromError(error);
        if (asked !== undefined && asked > MAX_RETRY_AFTER_MS) throw error;
        metrics.retries.inc();
        await delay(asked ?? backoffMs(policy, attemptNumber), undefined, { signal });
      },
    });
  } catch (err) {
    throw toCrunchError(err instanceof NoRetry ? err.error : err);
  }
}

/**
 * True when a failed call may be explained by part of the session being gone at the provider: an expired
 * container (400 "Container is expired." with no error code), a deleted container or conversation (404).
 * The caller then asks the API what is gone instead of reading the message.
 */
export function mayBeSessionLoss(err: unknown): boolean {
  const cause = err instanceof CrunchError ? err.cause : err;
  return cause instanceof OpenAI.BadRequestError || cause instanceof OpenAI.NotFoundError;
}

/** A short, safe description of why the API refused a request: its status and error code. */
export function describeRejection(err: CrunchError): string {
  const cause = err.cause;
  if (!(cause instanceof OpenAI.APIError)) return 'rejected';
  return [cause.status, cause.code].filter((part) => part !== undefined && part !== null).join(' ') || 'rejected';
}

export function toCrunchError(err: unknown): Error {
  if (err instanceof CrunchError) return err;
  if (err instanceof OpenAI.APIUserAbortError) return err;
  if (err instanceof OpenAI.AuthenticationError || err instanceof OpenAI.PermissionDeniedError) {
    return new CrunchError(
      'engine_auth',
      'The AI service refused my credentials, so I cannot answer right now. An admin should check the API key (OPENAI_API_KEY or AZURE_OPENAI_API_KEY).',
      { cause: err },
    );
  }
  if (err instanceof OpenAI.RateLimitError && err.code === 'insufficient_quota') {
    return new CrunchError(
      'engine_quota',
      'The AI service account has run out of quota or credit, so I cannot answer right now. An admin should check the billing of the API key.',
      { cause: err },
    );
  }
  if (err instanceof OpenAI.APIError && (err.code === 'invalid_prompt' || err.code === 'content_policy_violation' || err.code === 'content_filter')) {
    return new CrunchError(
      'engine_content_policy',
      "The AI service's content policy blocked this request. Please rephrase it or leave out the flagged content.",
      { cause: err },
    );
  }
  if (err instanceof OpenAI.APIError && err.code === 'context_length_exceeded') {
    return new CrunchError(
      'engine_rejected',
      'This conversation has grown too long for the model to take in. Say `reset` to start afresh (your files will need sharing again).',
      { cause: err },
    );
  }
  if (err instanceof OpenAI.NotFoundError && err.param === 'model') {
    return new CrunchError('engine_rejected', 'The configured model does not exist for this API key. An admin should check CRUNCH_MODEL.', {
      cause: err,
    });
  }
  if (isTransient(err)) {
    return new CrunchError(
      'engine_unavailable',
      'The AI service is busy or unreachable right now and did not recover after several tries. Please try again in a few minutes.',
      { cause: err },
    );
  }
  if (err instanceof OpenAI.APIError) {
    const id = err.requestID ? ` (request ${err.requestID})` : '';
    return new CrunchError('engine_rejected', `The AI service rejected this request${id}. Please try rephrasing it; if it keeps happening, tell an admin.`, {
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}
