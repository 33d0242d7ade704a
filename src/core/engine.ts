import type { Readable } from 'node:stream';
import type { ProgressSink } from './progress.js';
import type { CodeCell } from './reply.js';

/**
 * The Engine contract: what the core asks of a code interpreter (the hosted Responses one, the local
 * sandbox, a fake in tests). Owned by the core; engines implement it and never import anything else of
 * the core's but its public door.
 */

/** JSON, as the store keeps it. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A file that passed the core's checks and may be handed to the engine. */
export interface EngineFile {
  sourceId: string;
  name: string;
  mimeType: string;
  /** Known when the platform declared it; the engine must still cope with an unknown size. */
  sizeBytes?: number;
  /**
   * Opens the checked download. It, or the stream it returns, fails with a `CrunchError` whose code starts
   * with `attachment_` when the file must be skipped; the engine reports its `userMessage` in `notices`.
   */
  open(): Promise<Readable>;
}

/** A file already inside the engine's session, remembered so that a re-shared file is not uploaded twice. */
export interface SessionFile {
  sourceId: string;
  /** The engine's id for it (an uploaded file id, a name in the session folder). */
  fileId: string;
  name: string;
}

/** What the store keeps per conversation. Plain JSON, so that any store backend can hold it. */
export interface EngineSession {
  engine: string;
  /**
   * The provider's handle for the conversation's context: a Conversations API id, a local session id.
   * Not Crunch's conversation id (`conversationId(turn.conversation)`), which names the chat thread.
   */
  contextId?: string;
  /** The sandbox the code runs in; it may expire and be replaced. */
  containerId?: string;
  files: SessionFile[];
  /** What else the engine keeps between turns (its own shape; JSON). */
  data?: { [key: string]: Json };
  createdAt: string;
  lastUsedAt: string;
}

export interface EngineRunInput {
  /** The conversation's session, or undefined for its first turn. */
  session: EngineSession | undefined;
  text: string;
  files: EngineFile[];
  progress: ProgressSink;
  /** Aborted when the turn passes its deadline, or is handed back at shutdown. */
  signal: AbortSignal;
  /** Saves the session as it changes (uploads done, container made), so a failed turn does not redo them. */
  checkpoint(session: EngineSession): Promise<void>;
}

/**
 * A chart or file the code produced, not yet downloaded: the reply is posted first, and each output is
 * opened (streamed) only when the platform takes it. `ref` reopens it later, from any replica, for as long
 * as the engine keeps it (a container's files, the session folder).
 */
export interface EngineOutput {
  name: string;
  /** A short human title ("Revenue by month"), for an upload title or alt text. */
  title: string;
  mimeType: string;
  /** When the engine knows it; enforced again while streaming. */
  sizeBytes?: number;
  ref: Json;
}

/** What a turn consumed at the provider, as the provider reports it; the core prices it. */
export interface EngineUsage {
  /** The model that answered, as the provider names it (a dated snapshot is fine: prices match its family). */
  model: string;
  /** Input tokens, cached ones included. */
  inputTokens: number;
  /** The part of `inputTokens` the provider served from its prompt cache (billed lower). */
  cachedTokens: number;
  outputTokens: number;
  /** Hosted sandbox sessions this turn opened, by memory tier ("1g", "4g"…); none for a local sandbox. */
  sandboxes: { [tier: string]: number };
}

/** What `forget` removed, for the confirmation line; `failed` counts what could not be removed (to retry). */
export interface Forgotten {
  /** Files the conversation shared, deleted where the engine kept them. */
  files: number;
  /** Sandboxes stopped and deleted. */
  sandboxes: number;
  /** Whether the conversation's context (the provider's conversation, the stored messages) was deleted. */
  context: boolean;
  failed: number;
}

export interface EngineRunResult {
  session: EngineSession;
  /** Markdown. */
  text: string;
  /** PNG charts first, then other files; at most a handful (each engine caps them). */
  outputs: EngineOutput[];
  code: CodeCell[];
  /**
   * Friendly lines for the user about what could not be used or kept: a file skipped after all (`open()` or
   * its stream failed with an attachment error), a file or context the provider lost, an output too large.
   * The turn goes on regardless.
   */
  notices: string[];
  /** Tokens and sandbox sessions, when the provider reported them. */
  usage?: EngineUsage;
}

/** A code interpreter: the hosted Responses API one, or the local sandbox. */
export interface Engine {
  readonly name: string;
  run(input: EngineRunInput): Promise<EngineRunResult>;
  /**
   * Opens an output of an earlier `run` for reading. The stream fails with a `CrunchError` (code
   * `output_unavailable`) when the output is gone (an expired sandbox) or grows past the engine's limit.
   */
  openOutput(ref: Json, signal?: AbortSignal): Promise<Readable>;
  /**
   * Deletes everything the engine holds for a session, wherever it is (uploaded files, sandboxes, the
   * provider's conversation): on `reset`/`forget`, and when retention expires it. Something already gone
   * counts as removed; what fails is counted in `failed` (the core retries it later). Never throws.
   */
  forget?(session: EngineSession): Promise<Forgotten>;
}
