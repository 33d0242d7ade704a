import type { Logger } from 'pino';
import type { Interpreter } from './interpreter.js';

/**
 * Interpreters started ahead of need, each in a fresh, empty session folder, with numpy, pandas and
 * matplotlib already imported: a new conversation adopts one (and its session id) instead of waiting
 * for Python to start; one still starting is adopted too, being further along than a new one. Taken
 * ones are replaced in the background; one that dies while waiting is dropped and replaced.
 */

export interface Warm {
  id: string;
  interpreter: Promise<Interpreter>;
}

export interface WarmPoolOptions {
  size: number;
  newId: () => string;
  /** Makes the session folder `id` and starts an interpreter in it. */
  start: (id: string) => Promise<Interpreter>;
  /** Removes the folder of an interpreter that was never used. */
  discard: (id: string) => Promise<void>;
  logger: Logger;
}

/** After a failed start, wait this long before trying again (a broken setup must not spin). */
const RETRY_MS = 30_000;

export class WarmPool {
  private readonly waiting: Warm[] = [];
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: WarmPoolOptions) {}

  /** Starts interpreters until `size` are ready or starting. */
  fill(): void {
    while (!this.closed && this.retryTimer === undefined && this.waiting.length < this.options.size) {
      const id = this.options.newId();
      const warm: Warm = { id, interpreter: this.options.start(id) };
      this.waiting.push(warm);
      warm.interpreter.then(
        (interpreter) => {
          void interpreter.exited.then(() => {
            if (!this.remove(warm)) return;
            this.options.logger.warn({ session: id }, 'a warm interpreter exited while waiting; replacing it');
            void this.options.discard(id);
            this.fill();
          });
        },
        (err: unknown) => {
          if (!this.remove(warm)) return;
          this.options.logger.error({ err }, 'could not start a warm interpreter; trying again later');
          void this.options.discard(id);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.fill();
          }, RETRY_MS).unref();
        },
      );
    }
  }

  /** The oldest interpreter, ready or still starting, or undefined when none is; a replacement starts at once. */
  take(): Warm | undefined {
    const warm = this.waiting.shift();
    this.fill();
    return warm;
  }

  /** Resolves once every interpreter the pool is starting has started (or failed). */
  async settled(): Promise<void> {
    await Promise.all(this.waiting.map((warm) => warm.interpreter.catch(() => undefined)));
  }

  has(id: string): boolean {
    return this.waiting.some((warm) => warm.id === id);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const left = this.waiting.splice(0);
    await Promise.all(
      left.map(async (warm) => {
        const interpreter = await warm.interpreter.catch(() => undefined);
        interpreter?.kill();
        await interpreter?.exited;
        await this.options.discard(warm.id);
      }),
    );
  }

  private remove(warm: Warm): boolean {
    const index = this.waiting.indexOf(warm);
    if (index >= 0) this.waiting.splice(index, 1);
    return index >= 0;
  }
}
