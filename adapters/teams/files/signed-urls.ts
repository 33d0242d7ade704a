import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { keys, type RouteHandler, type Store } from '../../../src/core/index.js';

/**
 * Short-lived signed links on the bot's own server: `GET /files/<id>?exp=<unix seconds>&sig=<HMAC>`.
 * Charts too big to inline in a Teams message, and generated files, are kept in the Store with a TTL and
 * served from here. The signature covers the id and the expiry, so a link cannot be extended or guessed.
 */

interface StoredFile {
  name: string;
  mimeType: string;
  /** base64, so every keyv backend stores it as plain JSON. */
  data: string;
}

export interface HostedFile {
  id: string;
  /** When the stored bytes expire, and with them every link to them (ms since epoch). */
  expiresAtMs: number;
}

export interface FileHost {
  /** Stores the file and returns its signed public URL. */
  put(file: { name: string; mimeType: string; data: Buffer }): Promise<string>;
  /** Stores the file without making a link yet (file consent offers keep only the id). */
  keep(file: { name: string; mimeType: string; data: Buffer }): Promise<HostedFile>;
  /** The signed URL of a kept file, valid until the file expires. */
  link(file: HostedFile): string;
  /** The kept file's bytes, or undefined once it expired. */
  read(id: string): Promise<{ name: string; mimeType: string; data: Buffer } | undefined>;
  route: RouteHandler;
}

export interface FileHostOptions {
  store: Store;
  publicUrl: string;
  secret: string;
  ttlMs: number;
  now: () => number;
  logger: Logger;
}


export function sign(secret: string, id: string, exp: number): string {
  return createHmac('sha256', secret).update(`${id}.${exp}`).digest('base64url');
}

export type Verdict = 'ok' | 'bad_signature' | 'expired';

/** Pure: checks a link's signature and expiry against `nowMs`. */
export function verify(secret: string, id: string, exp: string | null, sig: string | null, nowMs: number): Verdict {
  if (exp === null || sig === null || !/^\d{1,12}$/.test(exp)) return 'bad_signature';
  const expected = Buffer.from(sign(secret, id, Number(exp)));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'bad_signature';
  return Number(exp) * 1000 < nowMs ? 'expired' : 'ok';
}

/**
 * The link secret: TEAMS_FILE_URL_SECRET when set; else derived from the app password (stable across
 * replicas and restarts without another variable); else random per process (links die with it).
 */
export function fileUrlSecret(explicit: string | undefined, appPassword: string | undefined): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  if (appPassword !== undefined && appPassword !== '') return createHmac('sha256', appPassword).update('crunch-teams-file-urls').digest('hex');
  return randomBytes(32).toString('hex');
}

export function createFileHost(options: FileHostOptions): FileHost {
  const base = options.publicUrl.replace(/\/+$/, '');
  const keep = async (file: { name: string; mimeType: string; data: Buffer }): Promise<HostedFile> => {
    const id = randomUUID();
    await options.store.set<StoredFile>(keys.teamsFile(id), { name: file.name, mimeType: file.mimeType, data: file.data.toString('base64') }, options.ttlMs);
    return { id, expiresAtMs: options.now() + options.ttlMs };
  };
  const link = (file: HostedFile): string => {
    const exp = Math.floor(file.expiresAtMs / 1000);
    return `${base}/files/${file.id}?exp=${exp}&sig=${sign(options.secret, file.id, exp)}`;
  };
  return {
    put: async (file) => link(await keep(file)),
    keep,
    link,
    async read(id) {
      const file = await options.store.get<StoredFile>(keys.teamsFile(id));
      return file === undefined ? undefined : { name: file.name, mimeType: file.mimeType, data: Buffer.from(file.data, 'base64') };
    },
    route: async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const match = /^\/files\/([0-9a-f-]{36})$/.exec(url.pathname);
      if (!match || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
      const id = match[1]!;
      const verdict = verify(options.secret, id, url.searchParams.get('exp'), url.searchParams.get('sig'), options.now());
      if (verdict !== 'ok') {
        options.logger.info({ id, verdict }, 'signed file link refused');
        res.writeHead(403, { 'content-type': 'text/plain' });
        res.end(verdict === 'expired' ? 'This link has expired. Ask Crunch again to get a fresh one.' : 'Invalid link.');
        return true;
      }
      const file = await options.store.get<StoredFile>(keys.teamsFile(id));
      if (file === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('This file is no longer available.');
        return true;
      }
      const data = Buffer.from(file.data, 'base64');
      const inline = file.mimeType.startsWith('image/');
      res.writeHead(200, {
        'content-type': file.mimeType,
        'content-length': data.length,
        'content-disposition': `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(file.name)}`,
        'cache-control': 'private, max-age=3600',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : data);
      return true;
    },
  };
}
