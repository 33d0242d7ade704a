import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { EngineFile } from '../../core/index.js';
import { type RetryPolicy, withRetries } from '../shared/errors.js';

/**
 * Streams a file into OpenAI without ever holding it whole: a file that fits in one part goes through
 * `files.create`; a larger one through the Uploads API, one part at a time. Only one part is in memory.
 */
export const PART_BYTES = 8 * 1024 * 1024;
// The Uploads API takes 'assistants' (not 'user_data'); files for the code interpreter use it on both paths.
const PURPOSE = 'assistants';
/**
 * Uploaded files expire at OpenAI after 30 days (the longest the API allows), so what people share does
 * not stay there for ever; a conversation that outlives them asks for them again (see session.ts).
 */
const EXPIRES_AFTER = { anchor: 'created_at', seconds: 30 * 24 * 60 * 60 } as const;

export interface UploadContext {
  client: OpenAI;
  retry: RetryPolicy;
  signal: AbortSignal;
}

/** Reads up to `limit` bytes from an async iterator, keeping what it read past the limit for later. */
class PartReader {
  private carry: Buffer | undefined;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  async next(limit: number): Promise<Buffer | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    while (size < limit) {
      let chunk = this.carry;
      this.carry = undefined;
      if (chunk === undefined) {
        if (this.done) break;
        const step = await this.source.next();
        if (step.done) {
          this.done = true;
          break;
        }
        chunk = Buffer.from(step.value);
      }
      const room = limit - size;
      if (chunk.length > room) {
        this.carry = chunk.subarray(room);
        chunk = chunk.subarray(0, room);
      }
      chunks.push(chunk);
      size += chunk.length;
    }
    return size === 0 ? undefined : Buffer.concat(chunks, size);
  }
}

export async function uploadFile(ctx: UploadContext, file: EngineFile): Promise<string> {
  const stream = await file.open();
  const reader = new PartReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  try {
    const first = (await reader.next(PART_BYTES)) ?? Buffer.alloc(0);
    const second = first.length === PART_BYTES ? await reader.next(PART_BYTES) : undefined;
    if (second === undefined) {
      const created = await withRetries(ctx.retry, ctx.signal, async () =>
        ctx.client.files.create(
          { file: await toFile(first, file.name, { type: file.mimeType }), purpose: PURPOSE, expires_after: EXPIRES_AFTER },
          { signal: ctx.signal },
        ),
      );
      return created.id;
    }
    if (file.sizeBytes !== undefined) return await uploadInParts(ctx, file, file.sizeBytes, [first, second], reader);
    return await uploadViaSpool(ctx, file, [first, second], reader);
  } finally {
    stream.destroy();
  }
}

async function uploadInParts(
  ctx: UploadContext,
  file: EngineFile,
  bytes: number,
  head: Buffer[],
  reader: PartReader,
): Promise<string> {
  const upload = await withRetries(ctx.retry, ctx.signal, () =>
    ctx.client.uploads.create(
      { bytes, filename: file.name, mime_type: file.mimeType, purpose: PURPOSE, expires_after: EXPIRES_AFTER },
      { signal: ctx.signal },
    ),
  );
  try {
    const partIds: string[] = [];
    const nextPart = async () => head.shift() ?? (await reader.next(PART_BYTES));
    for (let part = await nextPart(); part !== undefined; part = await nextPart()) {
      const data = part;
      const created = await withRetries(ctx.retry, ctx.signal, async () =>
        ctx.client.uploads.parts.create(upload.id, { data: await toFile(data, file.name) }, { signal: ctx.signal }),
      );
      partIds.push(created.id);
    }
    const done = await withRetries(ctx.retry, ctx.signal, () =>
      ctx.client.uploads.complete(upload.id, { part_ids: partIds }, { signal: ctx.signal }),
    );
    if (!done.file) throw new Error(`upload ${upload.id} completed without a file`);
    return done.file.id;
  } catch (err) {
    await ctx.client.uploads.cancel(upload.id).catch(() => undefined);
    throw err;
  }
}

/** Size unknown and larger than a part: spool to a private temp file to learn the size, then upload. */
async function uploadViaSpool(ctx: UploadContext, file: EngineFile, head: Buffer[], reader: PartReader): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'crunch-upload-'));
  const path = join(dir, 'spool');
  try {
    let bytes = 0;
    async function* all(): AsyncGenerator<Buffer> {
      for (const part of head) {
        bytes += part.length;
        yield part;
      }
      for (let part = await reader.next(PART_BYTES); part !== undefined; part = await reader.next(PART_BYTES)) {
        bytes += part.length;
        yield part;
      }
    }
    await pipeline(all, createWriteStream(path, { mode: 0o600 }));
    const spooled: Readable = createReadStream(path, { highWaterMark: 1024 * 1024 });
    try {
      return await uploadInParts(ctx, file, bytes, [], new PartReader(spooled[Symbol.asyncIterator]() as AsyncIterator<Buffer>));
    } finally {
      spooled.destroy();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
