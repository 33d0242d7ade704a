import { setTimeout as delay } from 'node:timers/promises';
import type { Activity } from 'botbuilder';
import type { Logger } from 'pino';
import { retryAfterMs } from '../../../src/core/index.js';

/**
 * Raw POSTs to the Bot Framework connector, for the few activities the SDK would mangle: botbuilder 4.23.3's
 * Entity mapper keeps only `type`, `text` and `mentioned`, so a `streaminfo` entity loses `streamType`,
 * `streamSequence` and `streamId` and Teams answers "Only start streaming and continue streaming types are
 * allowed as a typing activity" (botbuilder-js#4902, fixed upstream by #4903 after 4.23.3).
 *
 * Retries mirror the SDK's connector pipeline (core-rest-pipeline's defaultRetryPolicy, which every other
 * send goes through): 408/429/5xx, honouring Retry-After. Here the wait is capped and the attempts are
 * bounded by the caller: a streaming update is worth one attempt, the final message three.
 */
const BACKOFF_BASE_MS = 500;
export class ConnectorError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}

const MAX_RETRY_WAIT_MS = 10_000;

export async function postActivity(
  activity: Partial<Activity>,
  authorization: string | undefined,
  attempts: number,
  logger: Logger,
): Promise<string | undefined> {
  const serviceUrl = (activity.serviceUrl ?? '').replace(/\/+$/, '');
  const conversation = activity.conversation?.id;
  if (serviceUrl === '' || conversation === undefined) throw new Error('activity has no serviceUrl or conversation');
  const url = `${serviceUrl}/v3/conversations/${encodeURIComponent(conversation)}/activities`;
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization !== undefined ? { authorization } : {}) },
      body: JSON.stringify(activity),
    });
    const text = await response.text();
    if (response.ok) {
      try {
        return (JSON.parse(text) as { id?: string }).id;
      } catch {
        return undefined;
      }
    }
    const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
    if (!retryable || attempt >= attempts) throw new ConnectorError(response.status, `connector answered ${response.status}: ${text.slice(0, 300)}`);
    const wait = retryAfterMs(response.headers.get('retry-after')) ?? BACKOFF_BASE_MS * 2 ** (attempt - 1);
    logger.info({ status: response.status, wait }, 'teams connector busy; retrying');
    await delay(Math.min(wait, MAX_RETRY_WAIT_MS));
  }
}

/**
 * For sends through the SDK: its pipeline already retries 408/5xx with backoff and 429/503 that carry
 * Retry-After (three retries), but gives up at once on a 429 without Retry-After. This adds a bounded
 * backoff for that case only, so a throttled answer is not lost.
 */
export async function withThrottleRetry<T>(send: () => Promise<T>, logger: Logger, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== 429 || attempt >= attempts) throw err;
      const wait = BACKOFF_BASE_MS * 2 ** (attempt - 1);
      logger.info({ status, wait }, 'teams connector throttled; retrying');
      await delay(wait);
    }
  }
}
