import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import filenamify from 'filenamify';
import type { Reply, ReplyOutput } from '../core/index.js';
import { printable, printableLine } from './text.js';

/** A file saved from an answer. */
export interface SavedFile {
  path: string;
  /** The name the engine gave it (printable), before it was made safe. */
  name: string;
  kind: 'image' | 'file' | 'code';
  title: string;
  mimeType: string;
}

/** A file of an answer that could not be saved, and why. */
export interface UnsavedFile {
  name: string;
  error: string;
}

export interface SavedOutputs {
  /** The answer's own folder; undefined when the answer had nothing to save. */
  dir: string | undefined;
  saved: SavedFile[];
  failed: UnsavedFile[];
}

/**
 * UTF-16 units a saved name may have: at most 3 bytes each in UTF-8 (4 for a surrogate pair, which is 2
 * units), so a name stays under 255 bytes, the limit of common file systems, with room for "-99".
 */
const MAX_NAME_UNITS = 80;

/**
 * A name that is safe to create inside a folder: no path (slashes, `.` and `..`), no control or format
 * characters, no names Windows reserves, no leading dot (no hidden files), at most 240 bytes.
 */
export function safeFileName(name: string, fallback = 'output'): string {
  const safe = filenamify(printable(name).replace(/^[\s.]+/, ''), { replacement: '_', maxLength: MAX_NAME_UNITS });
  return /^[_.\s]*$/.test(safe) ? fallback : safe;
}

/** "plot revenue by month" → "plot-revenue-by-month": a folder name a person recognises. */
function slug(question: string): string {
  const words = question
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .filter((w) => w !== '');
  let out = '';
  for (const word of words) {
    if (out.length + word.length + 1 > 40) break;
    out = out === '' ? word : `${out}-${word}`;
  }
  return out === '' ? 'answer' : out;
}

function timestamp(at: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${p(at.getMonth() + 1)}-${p(at.getDate())}_${p(at.getHours())}-${p(at.getMinutes())}-${p(at.getSeconds())}`;
}

/** Makes a new folder under `base` for one answer: `2025-05-01_14-03-22-plot-revenue`, `-2` and so on if taken. */
async function newAnswerFolder(base: string, question: string, at: Date): Promise<string> {
  await mkdir(base, { recursive: true });
  const stem = `${timestamp(at)}-${slug(question)}`;
  for (let n = 1; ; n += 1) {
    const dir = join(base, n === 1 ? stem : `${stem}-${n}`);
    try {
      await mkdir(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** `chart.png`, then `chart-2.png`, `chart-3.png`…: the next of these names not taken yet in this answer. */
function numbered(name: string, n: number): string {
  if (n === 1) return name;
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)}-${n}${name.slice(dot)}` : `${name}-${n}`;
}

/** Writes `open()`'s content to a new file in `dir` named after `name`; never replaces an existing file. */
async function writeNew(dir: string, name: string, taken: Set<string>, open: () => Promise<NodeJS.ReadableStream>): Promise<string> {
  for (let n = 1; ; n += 1) {
    const candidate = numbered(name, n);
    if (taken.has(candidate.toLowerCase())) continue;
    const path = join(dir, candidate);
    // 'wx': fails if the file exists, so nothing is ever overwritten, whatever else writes here.
    const file = createWriteStream(path, { flags: 'wx' });
    const created = await new Promise<boolean>((resolve, reject) => {
      file.once('open', () => resolve(true));
      file.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EEXIST' ? resolve(false) : reject(err)));
    });
    if (!created) continue;
    taken.add(candidate.toLowerCase());
    try {
      await pipeline(await open(), file);
    } catch (err) {
      file.destroy();
      await rm(path, { force: true });
      throw err;
    }
    return path;
  }
}

function reason(err: unknown): string {
  const e = err as { userMessage?: unknown; message?: unknown };
  return printableLine(String(e.userMessage ?? e.message ?? err)).replace(/\*\*/g, '');
}

/**
 * Saves an answer's charts, files and code in a folder of its own under `base` (nothing when there is
 * nothing to save). Names are made safe and numbered when two are alike; a file that fails is reported
 * in `failed` and the others are saved all the same.
 */
export async function saveOutputs(reply: Reply, base: string, question: string, at = new Date()): Promise<SavedOutputs> {
  const items: { output: Pick<ReplyOutput, 'name' | 'title' | 'mimeType'>; kind: SavedFile['kind']; open: () => Promise<NodeJS.ReadableStream> }[] = [
    ...reply.images.map((o) => ({ output: o, kind: 'image' as const, open: () => o.open() })),
    ...reply.files.map((o) => ({ output: o, kind: 'file' as const, open: () => o.open() })),
  ];
  if (reply.code.length > 0) {
    const code = reply.code.map((c, i) => `# --- cell ${i + 1} ---\n${c.code}\n`).join('\n');
    items.push({ output: { name: 'code.py', title: 'The code that ran', mimeType: 'text/x-python' }, kind: 'code', open: async () => Readable.from([code]) });
  }
  if (items.length === 0) return { dir: undefined, saved: [], failed: [] };

  const dir = await newAnswerFolder(base, question, at);
  const taken = new Set<string>();
  const saved: SavedFile[] = [];
  const failed: UnsavedFile[] = [];
  for (const { output, kind, open } of items) {
    const name = printableLine(output.name);
    try {
      const path = await writeNew(dir, safeFileName(output.name, kind === 'image' ? 'chart.png' : 'output'), taken, open);
      saved.push({ path, name, kind, title: printableLine(output.title), mimeType: output.mimeType });
    } catch (err) {
      failed.push({ name, error: reason(err) });
    }
  }
  return { dir, saved, failed };
}
