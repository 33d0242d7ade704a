import { keys } from './keys.js';
import type { Store } from './store/index.js';

/** How long a greeting is remembered: for good, in practice (ten years). */
export const GREETED_TTL_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/**
 * Greets `who` once (see keys.greeted): the store claims the key atomically, so the two events Teams sends for
 * one install, a platform's redelivery or two replicas greet once; then `send` posts the greeting. A greeting
 * that could not be posted is released, for the next event to try again. False when `who` was greeted already.
 * A greeting is not a turn: nothing runs, nothing waits in the inbox, and it needs no order among turns.
 */
export async function greetOnce(store: Store, who: string, send: () => Promise<void>): Promise<boolean> {
  const key = keys.greeted(who);
  if (!(await store.claim(key, GREETED_TTL_MS))) return false;
  try {
    await send();
    return true;
  } catch (err) {
    await store.delete(key).catch(() => undefined);
    throw err;
  }
}
