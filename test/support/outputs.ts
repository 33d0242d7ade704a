import { Readable } from 'node:stream';
import type { ReplyOutput } from '../../src/core/index.js';

/** An output held in memory, as the engine would hand it over (streamed in 64 KiB pieces). */
export function outputOf(name: string, data: Buffer | string, mimeType: string, title = name): ReplyOutput {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return {
    name,
    title,
    mimeType,
    sizeBytes: bytes.length,
    open: async () => Readable.from(Array.from({ length: Math.ceil(bytes.length / 65_536) }, (_v, i) => bytes.subarray(i * 65_536, (i + 1) * 65_536))),
  };
}

/** A file as uploadToSession takes it. */
export function streamOf(data: Buffer): { size: number; stream: Readable } {
  return { size: data.length, stream: Readable.from(data.length === 0 ? [] : [data]) };
}
