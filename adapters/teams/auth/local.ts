import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from './urls.js';

/**
 * With authentication off (TEAMS_AUTH=off, no MicrosoftAppId) no token vouches for a request, so
 * `/api/messages` takes only what a local tool on this machine (the Microsoft 365 Agents Playground, the Bot
 * Framework Emulator) sends: a direct request from a loopback address, with no sign of a proxy or tunnel, not
 * from a web page, addressed to a local host name, and whose activity's `serviceUrl` (where the bot posts its
 * typing, streamed text and answer) is on this machine too. Otherwise any web page a local browser opens
 * could drive the bot: a `text/plain` POST needs no CORS preflight, and DNS rebinding gives it a foreign Host.
 * A plain TCP forwarder leaves no trace and still gets through: this mode must not be exposed at all.
 */

export interface LocalRefusal {
  status: number;
  error: string;
  /** Why, for the log: completes "authentication is off and …". */
  reason: string;
  details?: Record<string, unknown>;
}

/** Headers a reverse proxy, CDN or tunnel adds: behind one, a remote request arrives from a local address. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'cf-connecting-ip', 'true-client-ip', 'x-client-ip', 'via'] as const;

/** localhost, 127.0.0.1 or [::1], with any port: what a request to a local server carries. */
const LOCAL_HOST = /^(?:localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?$/i;

/** Why `req` is not a direct request from a local tool, or undefined when it is one. */
export function localRequestRefusal(req: IncomingMessage): LocalRefusal | undefined {
  const remote = req.socket.remoteAddress;
  if (remote !== '127.0.0.1' && remote !== '::1' && remote !== '::ffff:127.0.0.1') {
    return { status: 401, error: 'unauthorized', reason: 'the request did not come from this machine' };
  }
  const forwarded = FORWARDING_HEADERS.filter((h) => req.headers[h] !== undefined);
  if (forwarded.length > 0) {
    return {
      status: 401,
      error: 'unauthorized',
      reason: 'the request came through a proxy or tunnel (forwarding headers), so it may not be local',
      details: { headers: forwarded },
    };
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    return { status: 403, error: 'cross_site_request', reason: 'the request came from a web page (it has an Origin header)', details: { origin } };
  }
  const host = req.headers.host;
  if (host === undefined || !LOCAL_HOST.test(host)) {
    return { status: 403, error: 'host_not_local', reason: 'the Host header is not localhost, 127.0.0.1 or [::1]', details: { host: host ?? null } };
  }
  const type = req.headers['content-type'];
  if ((type ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/json') {
    return { status: 415, error: 'json_only', reason: 'the request is not application/json', details: { contentType: type ?? null } };
  }
  return undefined;
}

/** Why an activity's `serviceUrl` is not on this machine, or undefined when it is. */
export function localServiceUrlRefusal(serviceUrl: unknown): LocalRefusal | undefined {
  let url: URL | undefined;
  try {
    url = typeof serviceUrl === 'string' ? new URL(serviceUrl) : undefined;
  } catch {
    url = undefined;
  }
  if (url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname)) return undefined;
  return {
    status: 403,
    error: 'service_url_not_local',
    reason: 'the activity asks for answers to go to a serviceUrl that is not on this machine',
    details: { serviceUrl: typeof serviceUrl === 'string' ? serviceUrl : null },
  };
}
