import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import type { Progress, Reply } from '../core/index.js';

export interface Terminal {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** Status lines go to stderr so that stdout carries only the answer. */
export function statusPrinter(term: Terminal): (p: Progress) => void {
  let last = '';
  return (p) => {
    if (p.type !== 'status' || p.text === last) return;
    last = p.text;
    term.err.write(`… ${p.text}\n`);
  };
}

/** Prints the reply and writes its images and files into `outDir`; returns the paths written. */
export async function printReply(reply: Reply, outDir: string, term: Terminal): Promise<string[]> {
  term.out.write(`${reply.text}\n`);
  for (const notice of reply.notices) term.out.write(`\n⚠ ${notice}\n`);
  const written: string[] = [];
  if (reply.images.length + reply.files.length + reply.code.length > 0) await mkdir(outDir, { recursive: true });
  for (const item of [...reply.images, ...reply.files]) {
    const path = join(outDir, item.name.replace(/[/\\]/g, '_'));
    await pipeline(await item.open(), createWriteStream(path));
    written.push(path);
  }
  if (reply.code.length > 0) {
    const path = join(outDir, 'code.py');
    await writeFile(path, reply.code.map((c, i) => `# --- cell ${i + 1} ---\n${c.code}\n`).join('\n'));
    written.push(path);
  }
  for (const path of written) term.err.write(`saved ${path}\n`);
  return written;
}
