/** Work started in the background (turns after an early ack), so that shutdown and tests can wait for it. */
export class InFlight {
  private readonly tasks = new Set<Promise<unknown>>();

  /** Tracks `work` until it settles and returns it unchanged. */
  track<T>(work: Promise<T>): Promise<T> {
    this.tasks.add(work);
    void work.finally(() => this.tasks.delete(work)).catch(() => undefined);
    return work;
  }

  /** Resolves when everything tracked so far, and anything it started meanwhile, has settled. */
  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }
}
