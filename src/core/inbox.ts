import type { Turn } from './turn.js';

/**
 * The durable inbox of every conversation: turns recorded in arrival order, each conversation owned by at
 * most one worker at a time (across replicas on Redis), a turn removed only once it is done. Backends:
 * memory (tests, the CLI), SQLite (one process, survives restarts) and Redis (several replicas).
 */
export interface InboxEntry {
  turn: Turn;
  /** How many times a worker started this turn (a turn that keeps killing its worker is given up). */
  attempts: number;
  /** When it was accepted (ms since the epoch). */
  acceptedAt: number;
}

export interface AcceptOptions {
  /** Take the turn only if its conversation is already joined (a thread reply without a mention). */
  onlyIfJoined?: boolean;
  /** Whether taking the turn joins its conversation (default true); not for refusals and the core's own turns. */
  join?: boolean;
}

/** `ignored`: `onlyIfJoined` and the conversation is not joined. */
export type AcceptOutcome = 'accepted' | 'duplicate' | 'ignored';

export interface Inbox {
  /**
   * Atomically claims the turn's message key, records the turn at the end of its conversation's inbox and
   * marks the conversation joined. Resolves once the turn is durable; rejects when the store cannot be
   * reached (within its command timeout).
   */
  accept(turn: Turn, options?: AcceptOptions): Promise<AcceptOutcome>;
  /** Waits for a conversation with pending turns that no one owns, and owns it; undefined once `signal` aborts. */
  take(signal: AbortSignal): Promise<Lease | undefined>;
  /** Resolves when no accepted turn is pending or running (tests, graceful shutdown). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** A worker's ownership of one conversation. */
export interface Lease {
  readonly conversation: string;
  /** Aborted when the ownership was lost (this process stalled and another took the conversation over). */
  readonly lost: AbortSignal;
  /** The oldest pending turn, its attempt counted; undefined when the inbox is empty. */
  next(): Promise<InboxEntry | undefined>;
  /** Removes a finished turn from the inbox. */
  done(messageKey: string): Promise<void>;
  /** Lets the conversation go when its inbox is empty; false (still owned) when a turn arrived meanwhile. */
  release(): Promise<boolean>;
  /** Lets the conversation go with turns still pending (shutdown): another worker may take it at once. */
  handBack(): Promise<void>;
}
