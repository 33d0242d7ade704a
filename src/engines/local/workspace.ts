import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chown, lstat, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * The conversations' folders on the bot's disk, under CRUNCH_SESSIONS_DIR:
 *
 *   <root>/<session id>/data/                 the conversation's files; /mnt/data in its sandbox
 *   <root>/<session id>/outputs/<turn id>/    snapshots of what each answer posted (read by openOutput)
 *   <root>/.support/                          generated files every sandbox reads (passwd, font cache)
 *
 * Session ids are random UUIDs (never the chat's conversation id). The root and each session folder can be
 * traversed but not listed by the sandbox user; a data folder belongs to it alone.
 */

export interface Owner {
  uid: number;
  gid: number;
}

const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && SESSION_ID.test(value);
}

/** A file name that stays one plain entry of the folder, whatever the platform sent. */
export function safeFileName(name: string): string {
  const cleaned = name.replace(/[/\\\0]/g, '_').replace(/[\r\n\t]/g, ' ').trim();
  if (cleaned === '' || cleaned === '.' || cleaned === '..') return 'file';
  if (cleaned.length <= 180) return cleaned;
  const dot = cleaned.lastIndexOf('.');
  const ext = dot > 0 && cleaned.length - dot <= 12 ? cleaned.slice(dot) : '';
  return cleaned.slice(0, 180 - ext.length) + ext;
}

export class Workspace {
  constructor(
    readonly root: string,
    /** Who the sandboxed code runs as, when not the bot's own user. */
    private readonly owner: Owner | undefined,
  ) {}

  async prepare(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
  }

  newId(): string {
    return randomUUID();
  }

  sessionDir(id: string): string {
    if (!isSessionId(id)) throw new Error(`not a session id: ${id}`);
    return join(this.root, id);
  }

  dataDir(id: string): string {
    return join(this.sessionDir(id), 'data');
  }

  outputsDir(id: string, turn: string): string {
    if (!isSessionId(turn)) throw new Error(`not a turn id: ${turn}`);
    return join(this.sessionDir(id), 'outputs', turn);
  }

  /** Creates the session's folders, if missing (safe to call twice at once). */
  async create(id: string): Promise<void> {
    await mkdir(this.sessionDir(id), { recursive: true, mode: 0o711 });
    await mkdir(join(this.sessionDir(id), 'outputs'), { recursive: true, mode: 0o700 });
    // Only the call that made the data folder hands it to the sandbox user.
    if ((await mkdir(this.dataDir(id), { recursive: true, mode: 0o700 })) !== undefined) await this.own(this.dataDir(id));
  }

  async exists(id: string): Promise<boolean> {
    return (await stat(this.dataDir(id)).catch(() => undefined))?.isDirectory() ?? false;
  }

  /** Marks the session as used now (old, unused sessions are swept). */
  async touch(id: string): Promise<void> {
    const now = new Date();
    await utimes(this.sessionDir(id), now, now).catch(() => undefined);
  }

  async hasFile(id: string, name: string): Promise<boolean> {
    return (await lstat(join(this.dataDir(id), name)).catch(() => undefined))?.isFile() ?? false;
  }

  /**
   * Streams a file into the session folder under `name`. Written to a fresh temporary name first and then
   * renamed over the target, so a symlink the code left at that name is replaced, never followed.
   */
  async addFile(id: string, name: string, source: Readable): Promise<void> {
    const dir = this.dataDir(id);
    const temp = join(dir, `.crunch-upload-${randomUUID()}`);
    try {
      await pipeline(source, createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
      await this.own(temp);
      await rename(temp, join(dir, name));
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  async remove(id: string): Promise<void> {
    await rm(this.sessionDir(id), { recursive: true, force: true });
  }

  /** Removes the folders of sessions unused for `maxAgeMs` (the store forgets them after as long). */
  async sweep(maxAgeMs: number, inUse: (id: string) => boolean): Promise<string[]> {
    const removed: string[] = [];
    const entries = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || !isSessionId(entry.name) || inUse(entry.name)) continue;
      const info = await stat(join(this.root, entry.name)).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > maxAgeMs) {
        await this.remove(entry.name);
        removed.push(entry.name);
      }
    }
    return removed;
  }

  private async own(path: string): Promise<void> {
    if (this.owner) await chown(path, this.owner.uid, this.owner.gid);
  }
}
