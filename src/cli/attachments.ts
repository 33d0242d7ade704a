import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { Attachment } from '../core/index.js';

/** A local file as an attachment; its source id changes when the file does, so an edit is re-uploaded. */
export async function fileAttachment(path: string): Promise<Attachment> {
  const absolute = resolve(path);
  const info = await stat(absolute).catch(() => {
    throw new Error(`No such file: ${path}`);
  });
  if (!info.isFile()) throw new Error(`Not a file: ${path}`);
  return {
    sourceId: `file:${absolute}:${info.size}:${info.mtimeMs}`,
    name: basename(absolute),
    sizeBytes: info.size,
    open: async () => createReadStream(absolute),
  };
}
