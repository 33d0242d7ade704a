import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { keys, type RouteHandler, type Store } from '../../../src/core/index.js';

/**
 * Short-lived signed links on the bot's own server: `GET /files/<id>?exp=<unix seconds>&sig=<HMAC>`.
 * Charts too big to inline in a Teams message, and generated files, are kept in the Store with a TTL and
 * served from here. The signature covers the id and the expiry, so a link cannot be extended or guessed.
 *
 * A file is kept in 256 KiB chunks, read from the engine's stream one chunk at a time and served the same way,
 * so neither keeping nor serving holds a whole file in memory, and any replica sharing the store serves it.
 * Served files are downloads (`Content-Disposition: attachment`, `nosniff`, a CSP that runs nothing), except
 * raster images, shown inline: an SVG or HTML the code wrote never runs on the bot's origin.
 */

/** What the store keeps under `teams:file:<id>`; the bytes are under `teams:file:<id>:<n>`, base64. */
interface StoredFile {
  name: string;
  mimeType: string;
  size: number;
  chunks: number;
}

export const CHUNK_BYTES = 256 * 1024;
const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif']);

/** A file to keep: anything that opens as a stream (an engine output). */
export interface HostableFile {
  name: string;
  mimeType: string;
  open(): Promise<Readable>;
}

export interface HostedFile {
  id: string;
  /** When the stored bytes expire, and with them every link to them (ms since epoch). */
  expiresAtMs: number;
  size: number;
}

export interface FileHost {
  /** Keeps the file and returns its signed public URL and its size. */
  put(file: HostableFile): Promise<{ url: string; size: number }>;
  /** Keeps the file without making a link yet (file consent offers keep only the id). */
  keep(file: HostableFile): Promise<HostedFile>;
  /** The signed URL of a kept file, valid until the file expires. */
  link(file: HostedFile): string;
  /** The kept file as a stream, chunk by chunk, or undefined once it expired. */
  open(id: string): Promise<{ name: string; mimeType: string; size: number; stream: Readable } | undefined>;
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
  const { store, ttlMs } = options;
  const base = options.publicUrl.replace(/\/+$/, '');
  const keep = async (file: HostableFile): Promise<HostedFile> => {
    const id = randomUUID();
    let chunks = 0;
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      await store.set(keys.teamsFileChunk(id, chunks++), Buffer.concat(pending, pendingBytes).toString('base64'), ttlMs);
      pending = [];
      pendingBytes = 0;
    };
    for await (const chunk of await file.open()) {
      let rest = chunk as Buffer;
      while (rest.length > 0) {
        const take = rest.subarray(0, CHUNK_BYTES - pendingBytes);
        pending.push(take);
        pendingBytes += take.length;
        size += take.length;
        rest = rest.subarray(take.length);
        if (pendingBytes === CHUNK_BYTES) await flush();
      }
    }
    if (pendingBytes > 0 || chunks === 0) await flush();
    await store.set<StoredFile>(keys.teamsFile(id), { name: file.name, mimeType: file.mimeType, size, chunks }, ttlMs);
    return { id, expiresAtMs: options.now() + ttlMs, size };
  };
  const link = (file: HostedFile): string => {
    const exp = Math.floor(file.expiresAtMs / 1000);
    return `${base}/files/${file.id}?exp=${exp}&sig=${sign(options.secret, file.id, exp)}`;
  };
  const open = async (id: string) => {
    const file = await store.get<StoredFile>(keys.teamsFile(id));
    if (file === undefined) return undefined;
    const stream = Readable.from(
      (async function* () {
        for (let n = 0; n < file.chunks; n++) {
          const data = await store.get<string>(keys.teamsFileChunk(id, n));
          if (data === undefined) throw new Error(`chunk ${n} of file ${id} expired`);
          yield Buffer.from(data, 'base64');
        }
      })(),
    );
    return { name: file.name, mimeType: file.mimeType, size: file.size, stream };
  };
  return {
    async put(file) {
      const kept = await keep(file);
      return { url: link(kept), size: kept.size };
    },
    keep,
    link,
    open,
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
      const file = await open(id);
      if (file === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('This file is no longer available.');
        return true;
      }
      res.writeHead(200, {
        'content-type': file.mimeType,
        'content-length': file.size,
        'content-disposition': `${INLINE_TYPES.has(file.mimeType) ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(file.name)}`,
        'cache-control': 'private, max-age=3600',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; sandbox",
      });
      if (req.method === 'HEAD') {
        file.stream.destroy();
        res.end();
        return true;
      }
      await pipeline(file.stream, res).catch((err: unknown) => options.logger.warn({ err, id }, 'serving a kept file failed'));
      return true;
    },
  };
}
