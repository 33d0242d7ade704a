import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Platform } from './platform.js';

/**
 * One route on the bot's HTTP server. Returns true when it answered the request, false to let the next
 * handler try (probot-style handler list).
 */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/**
 * What a chat adapter gives the app: its routes on the bot's server, the platform the core's workers use
 * to prepare and present its turns, and a lifecycle. Receiving (verify, normalise to a Turn, hand it to the
 * core, acknowledge), presenting and transport are the adapter's; order, dedupe and the turn's journey are
 * the core's.
 */
export interface ChatAdapter {
  readonly name: string;
  readonly routes: RouteHandler[];
  readonly platform: Platform;
  /** Connects what needs connecting (e.g. Slack Socket Mode, checking the token). */
  start(): Promise<void>;
  /** Stops taking messages (the platform delivers them again, elsewhere or later) and waits for those being handed over. */
  stop(): Promise<void>;
}
