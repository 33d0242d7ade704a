import { constants, createWriteStream } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CrunchError } from '../../core/index.js';

/**
 * Which files an execution created or changed in the conversation folder, and their snapshots.
 *
 * The folder is written by untrusted code, so everything here treats it as hostile: symlinks, FIFOs and
 * devices are never followed or opened, a file is opened without following links and checked to still be
 * a regular file inside the folder, and walks and copies are bounded.
 */

interface FileState {
  size: bigint;
  mtimeNs: bigint;
}

/** Relative path → size and modification time of every regular file in a folder. */
export type Snapshot = Map<string, FileState>;

const MAX_ENTRIES = 5000;
const MAX_DEPTH = 6;

/** The folder's regular files (not following links), at most MAX_ENTRIES of them, MAX_DEPTH deep. */
export async function scan(dir: string): Promise<Snapshot> {
  const files: Snapshot = new Map();
  let seen = 0;
  async function walk(path: string, depth: number): Promise<void> {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (++seen > MAX_ENTRIES) return;
      const full = join(path, entry.name);
      if (entry.isDirectory() && depth < MAX_DEPTH) await walk(full, depth + 1);
      else if (entry.isFile() && !entry.name.startsWith('.crunch-upload-')) {
        const info = await lstat(full, { bigint: true }).catch(() => undefined);
        if (info?.isFile()) files.set(relative(dir, full), { size: info.size, mtimeNs: info.mtimeNs });
      }
    }
  }
  await walk(dir, 0);
  return files;
}

export interface ChangedFile {
  path: string;
  bytes: number;
  mtimeNs: bigint;
}

/** Files that are new in `after`, or whose size or modification time changed, in the order they were written. */
export function changedFiles(before: Snapshot, after: Snapshot): ChangedFile[] {
  const changed: ChangedFile[] = [];
  for (const [path, state] of after) {
    const old = before.get(path);
    if (old === undefined || old.size !== state.size || old.mtimeNs !== state.mtimeNs) changed.push({ path, bytes: Number(state.size), mtimeNs: state.mtimeNs });
  }
  return changed.sort((a, b) => (a.mtimeNs < b.mtimeNs ? -1 : a.mtimeNs > b.mtimeNs ? 1 : a.path.localeCompare(b.path)));
}

export type KeepResult = { kept: true; bytes: number } | { kept: false; reason: 'too_large' | 'unavailable' };

/**
 * Copies `relPath` of the folder `dir` to `dest` (a new file), refusing links, non-regular files, files
 * that resolve outside `dir`, and anything past `maxBytes` (also while it grows during the copy).
 */
export async function keepFile(dir: string, relPath: string, dest: string, maxBytes: number): Promise<KeepResult> {
  let handle: FileHandle;
  try {
    handle = await open(join(dir, relPath), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return { kept: false, reason: 'unavailable' };
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || !(await insideFolder(handle.fd, dir))) return { kept: false, reason: 'unavailable' };
    if (info.size > maxBytes) return { kept: false, reason: 'too_large' };
    let copied = 0;
    const capped = async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        copied += chunk.length;
        if (copied > maxBytes) throw new OutputTooLarge();
        yield chunk;
      }
    };
    await pipeline(handle.createReadStream({ start: 0, autoClose: false }), capped, createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
    return { kept: true, bytes: copied };
  } catch (err) {
    await rm(dest, { force: true });
    if (err instanceof OutputTooLarge) return { kept: false, reason: 'too_large' };
    return { kept: false, reason: 'unavailable' };
  } finally {
    await handle.close();
  }
}

class OutputTooLarge extends Error {}

/** Whether the open file really lies inside `dir` (no directory along its path was swapped for a link). */
async function insideFolder(fd: number, dir: string): Promise<boolean> {
  const actual = await readlink(`/proc/self/fd/${fd}`).catch(() => undefined);
  return actual?.startsWith(`${dir}/`) === true;
}

export async function writeOutput(dest: string, data: Buffer): Promise<void> {
  await writeFile(dest, data, { flag: 'wx', mode: 0o600 });
}

export async function makeOutputsDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}

/** Streams a kept output; `output_unavailable` when it is gone or grows past `maxBytes`. */
export async function openKept(path: string, name: string, maxBytes: number, signal?: AbortSignal): Promise<Readable> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new CrunchError('output_unavailable', `**${name}** is no longer available (its conversation was reset or expired); ask again to recreate it.`, {
      cause: err,
    });
  }
  const tooLarge = () => new CrunchError('output_unavailable', `**${name}** is too large to attach here.`);
  if ((await handle.stat()).size > maxBytes) {
    await handle.close();
    throw tooLarge();
  }
  const source = handle.createReadStream({ ...(signal ? { signal } : {}) });
  let size = 0;
  return Readable.from(
    (async function* () {
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > maxBytes) throw tooLarge();
          yield chunk;
        }
      } finally {
        source.destroy();
      }
    })(),
    { objectMode: false },
  );
}
