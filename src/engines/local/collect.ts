import { basename, join } from 'node:path';
import type { EngineOutput, Json } from '../../core/index.js';
import { MAX_OUTPUT_FILES, mimeFor, moreFilesNotice, pngFirst, titleFor, tooLargeNotice } from '../shared/answer.js';
import type { Figure } from './interpreter.js';
import { changedFiles, keepFile, makeOutputsDir, scan, type Snapshot, writeOutput } from './outputs.js';
import { safeFileName, type Workspace } from './workspace.js';

/**
 * The charts and files of one turn. The conversation folder is scanned when the turn starts (after the
 * shared files were added) and after each execution; what is new or changed at the end becomes the
 * answer's files. Each output is a snapshot copied into the turn's own folder, so a later turn that
 * overwrites /mnt/data/chart.png never changes the chart an earlier answer posted.
 */

/** How `openOutput` finds an output again. */
export interface OutputRef {
  session: string;
  turn: string;
  name: string;
}

interface Kept {
  name: string;
  title: string;
  bytes: number;
}

export class TurnFiles {
  private latest: Snapshot;
  private readonly figures: Kept[] = [];
  private readonly names = new Set<string>();
  private readonly dir: string;

  private constructor(
    private readonly workspace: Workspace,
    private readonly session: string,
    readonly turn: string,
    private readonly maxFileBytes: number,
    private readonly baseline: Snapshot,
  ) {
    this.latest = baseline;
    this.dir = workspace.outputsDir(session, turn);
  }

  static async begin(workspace: Workspace, session: string, maxFileBytes: number): Promise<TurnFiles> {
    return new TurnFiles(workspace, session, workspace.newId(), maxFileBytes, await scan(workspace.dataDir(session)));
  }

  /** Keeps an execution's figures and tells which files it created or changed, for the model. */
  async afterExecution(figures: Figure[]): Promise<{ files: { path: string; bytes: number }[]; figures: string[] }> {
    const now = await scan(this.workspace.dataDir(this.session));
    const files = changedFiles(this.latest, now).map(({ path, bytes }) => ({ path, bytes }));
    this.latest = now;
    const names: string[] = [];
    if (figures.length > 0) await makeOutputsDir(this.dir);
    for (const figure of figures) {
      const title = figure.title.replace(/\s+/g, ' ').trim().slice(0, 100);
      const name = this.unique(`${slug(title) || `figure_${this.figures.length + 1}`}.png`);
      await writeOutput(join(this.dir, name), figure.png);
      this.figures.push({ name, title: title || titleFor(name), bytes: figure.png.length });
      names.push(name);
    }
    return { files, figures: names };
  }

  /** The answer's outputs (figures, then changed files; PNGs first, at most MAX_OUTPUT_FILES) and notices. */
  async finish(): Promise<{ outputs: EngineOutput[]; notices: string[] }> {
    // Charts before other files, so that the cap never drops a chart for a CSV.
    const changed = pngFirst(changedFiles(this.baseline, await scan(this.workspace.dataDir(this.session))).map((f) => ({ ...f, mimeType: mimeFor(f.path) })));
    const notices: string[] = [];
    const kept: Kept[] = [...this.figures];
    const rest: string[] = [];
    if (changed.length > 0) await makeOutputsDir(this.dir);
    for (const file of changed) {
      const original = safeFileName(basename(file.path));
      if (file.bytes > this.maxFileBytes) {
        notices.push(tooLargeNotice(original));
        continue;
      }
      if (kept.length >= MAX_OUTPUT_FILES) {
        rest.push(file.path);
        continue;
      }
      const name = this.unique(original);
      const result = await keepFile(this.workspace.dataDir(this.session), file.path, join(this.dir, name), this.maxFileBytes);
      if (result.kept) kept.push({ name, title: titleFor(name), bytes: result.bytes });
      else if (result.reason === 'too_large') notices.push(tooLargeNotice(original));
    }
    rest.unshift(...kept.slice(MAX_OUTPUT_FILES).map((k) => k.name));
    if (rest.length > 0) notices.push(moreFilesNotice(rest));
    const outputs = pngFirst(kept.slice(0, MAX_OUTPUT_FILES).map((k) => this.output(k)));
    return { outputs, notices };
  }

  private output(kept: Kept): EngineOutput {
    const ref: OutputRef & { [key: string]: Json } = { session: this.session, turn: this.turn, name: kept.name };
    return { name: kept.name, title: kept.title, mimeType: mimeFor(kept.name), sizeBytes: kept.bytes, ref };
  }

  /** `name`, or `name-2.ext`, … when the turn already has an output of that name. */
  private unique(name: string): string {
    let candidate = name;
    for (let n = 2; this.names.has(candidate); n++) {
      const dot = name.lastIndexOf('.');
      candidate = dot > 0 ? `${name.slice(0, dot)}-${n}${name.slice(dot)}` : `${name}-${n}`;
    }
    this.names.add(candidate);
    return candidate;
  }
}

/** "Revenue by month (2026)" → "revenue_by_month_2026" */
function slug(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
}
