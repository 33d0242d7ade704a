import type { Readable } from 'node:stream';
import type { Json } from './engine.js';

/**
 * Where a turn belongs. Two turns with equal keys share one engine session (context, files, container):
 * a Slack thread, a Teams reply chain, a DM, or a CLI chat.
 */
export interface ConversationKey {
  platform: string;
  /** Slack team id, Teams tenant id, or "local" for the CLI. */
  workspace: string;
  channel: string;
  /** Thread root (Slack thread_ts, Teams reply-chain id); the channel itself for a DM without threads. */
  thread: string;
}

/** Crunch's id for a conversation (the chat thread), used in store keys and logs. */
export function conversationId(key: ConversationKey): string {
  return [key.platform, key.workspace, key.channel, key.thread].map(encodeURIComponent).join(':');
}

/**
 * A file as the platform describes it in the message, before anything is downloaded. Plain JSON: it is
 * recorded in the conversation's inbox and may be prepared by another replica.
 */
export interface FileRef {
  /** The platform's id for the file (Slack file id, Teams unique id, a path): re-shared files are uploaded once. */
  sourceId: string;
  name: string;
  sizeBytes?: number;
  mimeType?: string;
  /** What the adapter needs to fetch it (a download URL, a Slack file object). */
  source?: Json;
}

/** A file the adapter has prepared for download. Nothing is downloaded until `open()` is called. */
export interface Attachment {
  sourceId: string;
  name: string;
  /** The size the platform declares, if it does; enforced again while streaming. */
  sizeBytes?: number;
  /** The MIME type the platform declares, if it does; checked against the extension and the content. */
  mimeType?: string;
  /**
   * Opens a fresh download stream, given up when `signal` aborts (the turn's deadline). Throws an
   * `AttachmentError` when the platform refuses the download.
   */
  open(signal?: AbortSignal): Promise<Readable>;
}

/**
 * Slack sends a file-bearing mention as an `app_mention` and a `message` twin under one message key, in
 * either order, and only the `message` is sure to carry the files. A turn from an `app_mention` without
 * files `awaits` its twin (briefly); a turn from the `message` `completes` the one recorded first.
 */
export type TwinRole = 'awaits' | 'completes';

/**
 * One message from a user, normalised by an adapter: plain JSON, cheap to build (no downloads), recorded
 * durably in its conversation's inbox before the platform is acknowledged, and run by any worker.
 */
export interface Turn {
  conversation: ConversationKey;
  /** Unique per delivered message; a retried delivery (or a twin) carries the same key and is answered once. */
  messageKey: string;
  user: { id: string; name?: string };
  /** The user's text with the bot mention removed. */
  text: string;
  files: FileRef[];
  /** Where and how to answer, and what else only the adapter reads (its own shape). */
  platformData: { [key: string]: Json };
  twin?: TwinRole;
  /** Lines the adapter wants the reply to carry about files it could not even offer (e.g. no permission). */
  notices?: string[];
  /** A one-to-one chat with the bot (a Slack DM, a Teams personal chat), for CRUNCH_ALLOWED_CHANNELS' `dm`. */
  direct?: boolean;
  /** Set by the core when the message may not be answered here: the worker only posts this line. */
  refused?: { reason: 'workspace' | 'channel' | 'user'; line: string };
  /** A turn of the core's own, not a message: `expire` deletes an idle conversation (retention). */
  system?: 'expire';
}
