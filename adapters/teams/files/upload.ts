import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { retryAfterMs } from '../../../src/core/index.js';

/**
 * A kept file → an OneDrive upload session, one range in memory at a time: the `uploadUrl` Teams hands over when the user accepts a file consent
 * card. As Microsoft Graph documents it ("Upload bytes to the upload session", driveitem-createuploadsession):
 *  - sequential PUTs, each with `Content-Length` and `Content-Range: bytes <start>-<end>/<total>`;
 *  - every range but the last a multiple of 320 KiB, each under 60 MiB (5-10 MiB recommended);
 *  - `202 Accepted` with `nextExpectedRanges` until the last range, which answers `200`/`201` with the item;
 *  - no `Authorization` header: the URL is pre-authenticated, a bearer token may get a 401, and the bot's
 *    token must never travel to a URL taken from a request body;
 *  - 500/502/503/504 and dropped connections are retried with exponential backoff, anything else fails,
 *    redirects included (they are not followed: the caller checked the URL, not where it points to).
 */

/** Range sizes must be multiples of this (327,680 bytes). */
export const UPLOAD_RANGE_UNIT = 320 * 1024;
/** 5 MiB: the low end of the recommended range size, so a slow link still makes progress. */
export const DEFAULT_RANGE_BYTES = 16 * UPLOAD_RANGE_UNIT;

export class UploadError extends Error {
  constructor(
    /** OneDrive's HTTP status, or undefined when it could not be reached. */
    readonly status: number | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UploadError';
  }
}

export interface UploadOptions {
  /** Bytes per PUT, a multiple of UPLOAD_RANGE_UNIT. */
  rangeBytes?: number;
  /** Tries per range (retrying transient failures only). Default 3. */
  attempts?: number;
  /** First backoff; doubles per retry. Default 500 ms. */
  retryBaseMs?: number;
  /** Per-PUT timeout. Default 2 minutes. */
  timeoutMs?: number;
}

const TRANSIENT = new Set([500, 502, 503, 504]);
const MAX_RETRY_WAIT_MS = 10_000;

/** Uploads the file whole, reading it once, in order; resolves once OneDrive confirmed the complete file. */
export async function uploadToSession(uploadUrl: string, file: { size: number; stream: Readable }, options: UploadOptions = {}): Promise<void> {
  const rangeBytes = options.rangeBytes ?? DEFAULT_RANGE_BYTES;
  if (rangeBytes <= 0 || rangeBytes % UPLOAD_RANGE_UNIT !== 0) throw new RangeError(`rangeBytes must be a multiple of ${UPLOAD_RANGE_UNIT}`);
  const total = file.size;
  if (total === 0) throw new UploadError(undefined, 'an upload session cannot take an empty file');
  const ranges = new RangeReader(file.stream);
  try {
    await uploadRanges(uploadUrl, ranges, total, rangeBytes, options);
  } finally {
    file.stream.destroy();
  }
}

async function uploadRanges(uploadUrl: string, ranges: RangeReader, total: number, rangeBytes: number, options: UploadOptions): Promise<void> {
  let start = 0;
  while (start < total) {
    const end = Math.min(start + rangeBytes, total) - 1;
    const data = await ranges.read(start, end);
    const response = await putRange(uploadUrl, data, total, options);
    if (response.status === 200 || response.status === 201) {
      await response.body?.cancel().catch(() => {});
      if (end === total - 1) return;
      throw new UploadError(response.status, `OneDrive completed the file after ${end + 1} of ${total} bytes`);
    }
    if (response.status !== 202) {
      const text = await response.text().catch(() => '');
      throw new UploadError(response.status, `OneDrive answered ${response.status} to bytes ${start}-${end}/${total}: ${text.slice(0, 200)}`);
    }
    const next = nextExpectedStart(await response.json().catch(() => undefined)) ?? end + 1;
    if (next <= start || next >= total) throw new UploadError(202, `OneDrive expects bytes from ${next} after ${start}-${end}/${total}`);
    start = next;
  }
}

/** Reads a stream forward in ranges; OneDrive may ask to resume a little earlier, within the last range read. */
class RangeReader {
  private readonly source: AsyncIterator<Buffer>;
  private held: Buffer = Buffer.alloc(0);
  /** The stream offset of `held`'s first byte. */
  private heldAt = 0;

  constructor(stream: Readable) {
    this.source = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(start: number, end: number): Promise<{ bytes: Buffer; start: number; end: number }> {
    if (start < this.heldAt) throw new UploadError(undefined, `OneDrive asked for bytes from ${start} again, which are no longer at hand`);
    // Keep only what is at or after `start`, then read on until `end` is covered.
    this.held = this.held.subarray(Math.min(this.held.length, start - this.heldAt));
    this.heldAt = start;
    const wanted = end - start + 1;
    const parts: Buffer[] = [this.held];
    let have = this.held.length;
    while (have < wanted) {
      const step = await this.source.next();
      if (step.done) throw new UploadError(undefined, `the file ended after ${start + have} bytes`);
      parts.push(step.value);
      have += step.value.length;
    }
    this.held = Buffer.concat(parts, have);
    return { bytes: this.held.subarray(0, wanted), start, end };
  }
}

async function putRange(uploadUrl: string, range: { bytes: Buffer; start: number; end: number }, total: number, options: UploadOptions): Promise<Response> {
  const { bytes: data, start, end } = range;
  const attempts = options.attempts ?? 3;
  const base = options.retryBaseMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    let response: Response | undefined;
    let failure: unknown;
    try {
      response = await fetch(uploadUrl, {
        method: 'PUT',
        headers: { 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${total}` },
        body: new Uint8Array(data.buffer, data.byteOffset, data.length),
        // A redirect would carry the bytes to a URL nobody checked: it fails the upload instead.
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
      });
    } catch (err) {
      failure = err;
    }
    if (response !== undefined && !TRANSIENT.has(response.status)) return response;
    if (attempt >= attempts) {
      if (response !== undefined) return response;
      throw new UploadError(undefined, 'could not reach OneDrive', { cause: failure });
    }
    const wait = retryAfterMs(response?.headers.get('retry-after') ?? null) ?? base * 2 ** (attempt - 1);
    await response?.body?.cancel().catch(() => {});
    await delay(Math.min(wait, MAX_RETRY_WAIT_MS));
  }
}

/** The start of the first range in `{"nextExpectedRanges": ["26-"]}` (or "12345-55232"). */
function nextExpectedStart(body: unknown): number | undefined {
  const ranges = (body as { nextExpectedRanges?: unknown } | undefined)?.nextExpectedRanges;
  const first = Array.isArray(ranges) ? ranges[0] : undefined;
  const match = typeof first === 'string' ? /^(\d+)-/.exec(first) : null;
  return match ? Number(match[1]) : undefined;
}
