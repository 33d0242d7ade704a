/**
 * Deliveries being received, from their request's arrival to its acknowledgement. Workers wait for a lull
 * in them before they start a turn: under a burst, every delivery is acknowledged (within Slack's 3 s)
 * before turn work competes with it for the event loop. The wait is bounded, so that a steady stream of
 * deliveries never starves the turns.
 */
export class Intake {
  private active = 0;
  private waiting: (() => void)[] = [];

  /** A request started; call `leave()` once it is answered. */
  enter(): void {
    this.active += 1;
  }

  leave(): void {
    this.active = Math.max(0, this.active - 1);
    if (this.active === 0) for (const wake of this.waiting.splice(0)) wake();
  }

  /** Resolves when no delivery is being received, or after `maxWaitMs`. */
  lull(maxWaitMs: number): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = this.waiting.filter((w) => w !== wake);
        resolve();
      }, maxWaitMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiting.push(wake);
    });
  }
}
