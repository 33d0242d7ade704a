import { BlockList, isIP } from 'node:net';

/**
 * Which URLs taken from a Teams activity the bot may fetch, and which may see its bearer token. Activities
 * carry URLs the bot then calls (pasted images, personal-chat download links, OneDrive upload sessions);
 * anyone who can shape an activity must not turn the bot into a proxy into its own network, nor make it hand
 * its connector token to their server.
 *
 *  - https only. Plain http, and loopback addresses at all, only for a loopback serviceUrl's own host (the
 *    activity's token vouches for its serviceUrl: in production that is a Microsoft host, so this only ever
 *    matches a local fake connector) or for any loopback host while authentication is off (local tools such
 *    as the Agents Playground, which only this machine can reach).
 *  - No private, link-local, CGNAT, multicast or unspecified IP literals (169.254.169.254, 10/8, 172.16/12,
 *    192.168/16, fc00::/7, fe80::/10, …), IPv4-mapped IPv6 included. Host names are not resolved: a public
 *    name pointing at a private address is not caught here (Teams' own links are Microsoft host names).
 *  - Redirects are followed by hand, a few at most, each hop checked again; the token goes only to hops
 *    that may receive it.
 *  - The bot's token goes only to Bot Framework / Teams hosts over https, or to the activity's serviceUrl.
 */

export interface UrlPolicy {
  /** Origin of the activity's serviceUrl (the connector): it may receive the bot's token. */
  serviceOrigin: string | undefined;
  /** Where loopback addresses (over http too) are allowed: any loopback host, or only these `host`s (name:port). */
  loopback: 'any' | readonly string[];
}

export class UnsafeUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeUrlError';
  }
}

/** The policy for URLs in an activity from `serviceUrl`; `authenticationOff` (no MicrosoftAppId) allows loopback. */
export function urlPolicy(serviceUrl: string | undefined, authenticationOff: boolean): UrlPolicy {
  let service: URL | undefined;
  try {
    service = serviceUrl !== undefined ? new URL(serviceUrl) : undefined;
  } catch {
    service = undefined;
  }
  const usable = service !== undefined && (service.protocol === 'https:' || service.protocol === 'http:');
  const serviceOrigin = usable ? service!.origin : undefined;
  if (authenticationOff) return { serviceOrigin, loopback: 'any' };
  return { serviceOrigin, loopback: usable && isLoopbackHost(service!.hostname) ? [service!.host] : [] };
}

/** A policy for a URL the operator configured (e.g. the Graph base URL): its own host may be loopback. */
export function configuredUrlPolicy(base: string): UrlPolicy {
  const url = new URL(base);
  return { serviceOrigin: undefined, loopback: isLoopbackHost(url.hostname) ? [url.host] : [] };
}

/** Parses `raw` and checks it against `policy`; throws UnsafeUrlError saying why not. */
export function checkUrl(raw: string, policy: UrlPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError('not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UnsafeUrlError(`refusing a ${url.protocol} URL`);
  if (url.username !== '' || url.password !== '') throw new UnsafeUrlError('refusing a URL with credentials in it');
  if (isLoopbackHost(url.hostname)) {
    if (policy.loopback === 'any' || policy.loopback.includes(url.host)) return url;
    throw new UnsafeUrlError(`refusing a loopback address (${url.host})`);
  }
  if (url.protocol !== 'https:') throw new UnsafeUrlError(`refusing a non-https URL (${url.host})`);
  if (isPrivateAddress(url.hostname)) throw new UnsafeUrlError(`refusing a private or link-local address (${url.hostname})`);
  return url;
}

/**
 * Bot Framework / Teams hosts the connector token may go to (public cloud, GCC, GCC High, DoD, 21Vianet),
 * after Microsoft's Teams SDK service URL allow-list and the hosts of pasted-image links.
 */
const TOKEN_HOSTS = new Set(['smba.trafficmanager.net', 'smba.onyx.prod.teams.trafficmanager.net']);
const TOKEN_HOST_SUFFIXES = [
  '.botframework.com',
  '.botframework.us',
  '.botframework.azure.us',
  '.botframework.azure.cn',
  '.teams.microsoft.com',
  '.teams.microsoft.us',
  '.teams.microsoftonline.cn',
  '.asm.skype.com',
];

/** True when the bot's connector token may be sent to `url`: a Teams host over https, or the serviceUrl's origin. */
export function mayReceiveToken(url: URL, policy: UrlPolicy): boolean {
  if (policy.serviceOrigin !== undefined && url.origin === policy.serviceOrigin) return true;
  if (url.protocol !== 'https:' || url.port !== '') return false;
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  return TOKEN_HOSTS.has(host) || TOKEN_HOST_SUFFIXES.some((suffix) => host.endsWith(suffix));
}

export interface CheckedFetchOptions {
  policy: UrlPolicy;
  /** `Authorization` header value, sent only to hops `sendTokenTo` accepts. */
  authorization?: string | undefined;
  sendTokenTo?: (url: URL) => boolean;
  /** Redirects followed at most. Default 3. */
  maxRedirects?: number;
  /** Called for each redirect followed, with the hop it leads to. */
  onRedirect?: (to: URL) => void;
  signal?: AbortSignal;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GETs `raw` after checking it, following redirects by hand and checking every hop. */
export async function fetchChecked(raw: string, options: CheckedFetchOptions): Promise<Response> {
  let url = checkUrl(raw, options.policy);
  const maxRedirects = options.maxRedirects ?? 3;
  for (let hop = 0; ; hop++) {
    const token = options.authorization !== undefined && options.sendTokenTo?.(url) === true ? options.authorization : undefined;
    const response = await fetch(url, {
      headers: token !== undefined ? { authorization: token } : {},
      redirect: 'manual',
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    if (!REDIRECTS.has(response.status)) return response;
    await response.body?.cancel().catch(() => {});
    const location = response.headers.get('location');
    if (location === null) throw new UnsafeUrlError(`a redirect (${response.status}) without a Location`);
    if (hop >= maxRedirects) throw new UnsafeUrlError(`more than ${maxRedirects} redirects`);
    url = checkUrl(new URL(location, url).href, options.policy);
    options.onRedirect?.(url);
  }
}

/** localhost, *.localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z). */
export function isLoopbackHost(hostname: string): boolean {
  const host = bare(hostname);
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const v4 = ipv4Of(host);
  if (v4 !== undefined) return LOOPBACK.check(v4, 'ipv4');
  return isIP(host) === 6 && LOOPBACK.check(host, 'ipv6');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** True for an IP literal in a private, link-local, CGNAT, multicast, reserved or unspecified range. */
export function isPrivateAddress(hostname: string): boolean {
  const host = bare(hostname);
  const v4 = ipv4Of(host);
  if (v4 !== undefined) return PRIVATE.check(v4, 'ipv4');
  return isIP(host) === 6 && PRIVATE.check(host, 'ipv6');
}

function bare(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

/** The IPv4 address of a dotted literal or an IPv4-mapped IPv6 literal (::ffff:a.b.c.d, ::ffff:7f00:1). */
function ipv4Of(host: string): string | undefined {
  if (isIP(host) === 4) return host;
  if (isIP(host) !== 6) return undefined;
  const dotted = /^(?:0{0,4}:){5}ffff:(\d+\.\d+\.\d+\.\d+)$|^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  if (dotted) return dotted[1] ?? dotted[2];
  const hex = /^(?:(?:0{0,4}:){5}|::)ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!hex) return undefined;
  const high = Number.parseInt(hex[1]!, 16);
  const low = Number.parseInt(hex[2]!, 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}
