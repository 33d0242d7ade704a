import type { Json } from './engine.js';
import type { ProgressSink } from './progress.js';
import type { Reply } from './reply.js';
import type { Attachment, Turn } from './turn.js';

/**
 * What a chat adapter gives the core: how to open a turn's files and how to show it. The core calls these
 * from whichever worker runs the turn, possibly on another replica than the one that received it, so both
 * work from the Turn's JSON alone.
 */
export interface Platform {
  /** The `conversation.platform` of the turns this platform serves ("slack", "teams", "cli"). */
  readonly name: string;
  /** The operator's own terminal (the CLI): the allow-lists do not apply; budgets and the usage log still do. */
  readonly operator?: boolean;
  /** How a person follows up here, for `help` (default: reply in the thread). */
  readonly followUp?: string;
  /**
   * Turns the message's files into downloadable attachments (Slack Connect lookups, Graph), plus a line per
   * file that cannot even be offered. Nothing is downloaded yet. Bounded by `signal` (the turn's deadline).
   */
  prepare(turn: Turn, signal: AbortSignal): Promise<{ attachments: Attachment[]; notices: string[] }>;
  /** Shows the turn while it runs and posts its reply; called once per attempt, after the message was claimed. */
  present(turn: Turn, ledger: DeliveryLedger): Presenter;
}

export interface Presenter {
  /** Statuses and streamed text while the engine works. Never throws. */
  progress: ProgressSink;
  /**
   * Posts the reply in place of the progress indicators. Parts the ledger says an earlier attempt posted are
   * skipped, and each part is marked once posted, so a resumed turn never posts twice. Never throws.
   */
  deliver(reply: Reply): Promise<void>;
  /** The attempt stops without an answer (shutdown hand-back): stop showing progress, post nothing. */
  suspend(): Promise<void>;
}

/**
 * What one turn's delivery has done so far, kept in the store across attempts: the messages an adapter
 * posted (to reuse or clean up after a crash) and the parts of the reply already posted.
 */
export interface DeliveryLedger {
  /** What the adapter remembered on an earlier attempt (message ids), or {}. */
  readonly memo: { readonly [key: string]: Json };
  /** Records ids and the like for a later attempt; best effort. */
  remember(patch: { [key: string]: Json }): Promise<void>;
  /** Whether `part` ("text", "upload:chart.png", …) was posted by an earlier attempt. */
  posted(part: string): boolean;
  /** Records that `part` is posted; best effort. */
  markPosted(part: string): Promise<void>;
}
