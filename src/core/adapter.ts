import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * One route on the bot's HTTP server. Returns true when it answered the request, false to let the next
 * handler try (probot-style handler list).
 */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/** What a platform adapter gives the server: its routes, and a lifecycle. */
export interface ChatAdapter {
  readonly name: string;
  readonly routes: RouteHandler[];
  /** Connects what needs connecting (e.g. Slack Socket Mode). */
  start(): Promise<void>;
  /** Stops taking turns and waits for the ones in flight to post their answers. */
  stop(): Promise<void>;
}
