import type { Logger } from 'pino';
import type { Interpreter } from './interpreter.js';

/**
 * Interpreters started ahead of need, each in a fresh, empty session folder, with numpy, pandas and
 * matplotlib already imported: a new conversation adopts one (and its session id) instead of waiting
 * for Python to start. Taken ones are replaced in the background; one that dies is dropped and replaced.
 */

export interface Warm {
  id: string;
  interpreter: Interpreter;
}

export interface WarmPoolOptions {
  size: number;
  /** Makes a session folder and starts an interpreter in it. */
  create: () => Promise<Warm>;
  /** Removes the folder of an interpreter that was never used. */
  discard: (id: string) => Promise<void>;
  logger: Logger;
}

/** After a failed start, wait this long before trying again (a broken setup must not spin). */
const RETRY_MS = 30_000;

export class WarmPool {
  private readonly ready: Warm[] = [];
  private readonly starting = new Set<Promise<void>>();
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: WarmPoolOptions) {}

  /** Starts interpreters until `size` are ready or starting. */
  fill(): void {
    while (!this.closed && this.retryTimer === undefined && this.ready.length + this.starting.size < this.options.size) {
      const started: Promise<void> = this.options.create().then(
        (warm) => {
          this.starting.delete(started);
          if (this.closed) return this.drop(warm);
          this.ready.push(warm);
          void warm.interpreter.exited.then(() => {
            const index = this.ready.indexOf(warm);
            if (index < 0) return;
            this.ready.splice(index, 1);
            this.options.logger.warn({ session: warm.id }, 'a warm interpreter exited while waiting; replacing it');
            void this.options.discard(warm.id);
            this.fill();
          });
        },
        (err: unknown) => {
          this.starting.delete(started);
          this.options.logger.error({ err }, 'could not start a warm interpreter; trying again later');
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.fill();
          }, RETRY_MS).unref();
        },
      );
      this.starting.add(started);
    }
  }

  /** A ready interpreter, or undefined when none is; a replacement starts at once. */
  take(): Warm | undefined {
    let warm = this.ready.shift();
    while (warm !== undefined && !warm.interpreter.alive) warm = this.ready.shift();
    this.fill();
    return warm;
  }

  has(id: string): boolean {
    return this.ready.some((warm) => warm.id === id);
  }

  get readyCount(): number {
    return this.ready.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.all([...this.ready.splice(0).map((warm) => this.drop(warm)), ...this.starting]);
  }

  private async drop(warm: Warm): Promise<void> {
    warm.interpreter.kill();
    await warm.interpreter.exited;
    await this.options.discard(warm.id);
  }
}
