import { setTimeout as delay } from 'node:timers/promises';
import type { RedisClientType } from '@redis/client';
import { CrunchError } from '../errors.js';

/**
 * Redis connections with every wait bounded. A Redis client queues commands for ever while disconnected
 * unless told otherwise, which froze the bot during an outage: here commands fail at once while the
 * connection is down (`disableOfflineQueue`) and after COMMAND_TIMEOUT_MS when Redis does not answer, the
 * connection is retried every few seconds, and closing never waits on a dead server.
 */
export const COMMAND_TIMEOUT_MS = 3000;
const CONNECT_TIMEOUT_MS = 3000;
/** How long start-up keeps trying to reach Redis before it gives up with a message. */
const STARTUP_WAIT_MS = 10_000;

export type Redis = RedisClientType;

export interface RedisOptions {
  /** Told about connection errors (throttled by the caller). */
  onError?: (err: unknown) => void;
  /** Per-command timeout; blocking reads need more than their BLOCK time. */
  commandTimeoutMs?: number;
}

export async function connectRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  const { createClient } = await import('@redis/client');
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS },
    pingInterval: 10_000,
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectStrategy: (retries: number) => Math.min(250 * 2 ** retries, 5000),
    },
  }) as unknown as Redis;
  client.on('error', (err: unknown) => options.onError?.(err));
  const connecting = client.connect();
  const gaveUp = delay(STARTUP_WAIT_MS, 'timeout' as const);
  const first = await Promise.race([connecting.then(() => 'connected' as const, (err: unknown) => err), gaveUp]);
  if (first !== 'connected') {
    client.destroy();
    const why = first === 'timeout' ? `no answer for ${STARTUP_WAIT_MS / 1000} s` : ((first as Error)?.message ?? String(first));
    throw new CrunchError('store_unavailable', `Cannot reach Redis at ${redact(url)} (${why}). Start Redis, or fix STORE_URL.`, {
      cause: first,
    });
  }
  return client;
}

/** Closes a client without waiting on a server that may be gone. */
export async function closeRedis(client: Redis): Promise<void> {
  if (!client.isOpen) return;
  await Promise.race([client.close().catch(() => undefined), delay(1000)]);
  if (client.isOpen) client.destroy();
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href;
  } catch {
    return 'the configured STORE_URL';
  }
}
