import type { Readable } from 'node:stream';
import type { CodeCell, ReplyFile, ReplyImage } from '../core/reply.js';
import type { ProgressSink } from '../core/progress.js';

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
  fileId: string;
  name: string;
}

/** What the store keeps per conversation. Plain JSON, so that any keyv backend can hold it. */
export interface EngineSession {
  engine: string;
  /** The engine's conversation handle (a Conversations API id, a local session id). */
  conversationId?: string;
  /** The sandbox the code runs in; it may expire and be replaced. */
  containerId?: string;
  files: SessionFile[];
  createdAt: string;
  lastUsedAt: string;
}

export interface EngineRunInput {
  /** The conversation's session, or undefined for its first turn. */
  session: EngineSession | undefined;
  text: string;
  files: EngineFile[];
  progress: ProgressSink;
  /** Aborted when the turn passes its deadline. */
  signal: AbortSignal;
  /** Saves the session as it changes (uploads done, container made), so a failed turn does not redo them. */
  checkpoint(session: EngineSession): Promise<void>;
}

export interface EngineRunResult {
  session: EngineSession;
  text: string;
  images: ReplyImage[];
  files: ReplyFile[];
  code: CodeCell[];
  /**
   * Friendly lines for the user about what could not be used or kept: a file skipped after all (`open()` or
   * its stream failed with an attachment error), a file or context the provider lost, an output too large.
   * The turn goes on regardless.
   */
  notices: string[];
}

/** A code interpreter: the hosted Responses API one, or later a local sandbox. */
export interface Engine {
  readonly name: string;
  run(input: EngineRunInput): Promise<EngineRunResult>;
  /** Drops what the engine holds for a session the user reset (best effort). */
  forget?(session: EngineSession): Promise<void>;
}
