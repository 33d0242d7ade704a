import type { Readable } from 'node:stream';

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

export function conversationId(key: ConversationKey): string {
  return [key.platform, key.workspace, key.channel, key.thread].map(encodeURIComponent).join(':');
}

/** A file the user attached. Nothing is downloaded until `open()` is called. */
export interface Attachment {
  /** The platform's id for the file (Slack file id, Teams unique id, a path): re-shared files are uploaded once. */
  sourceId: string;
  name: string;
  /** The size the platform declares, if it does; enforced again while streaming. */
  sizeBytes?: number;
  /** The MIME type the platform declares, if it does; checked against the extension and the content. */
  mimeType?: string;
  /** Opens a fresh download stream. Throws an `AttachmentError` when the platform refuses the download. */
  open(): Promise<Readable>;
}

/** One message from a user, already normalised by an adapter. */
export interface Turn {
  conversation: ConversationKey;
  /** Unique per delivered message; a retried delivery carries the same key and is answered once. */
  messageKey: string;
  user: { id: string; name?: string };
  /** The user's text with the bot mention removed. */
  text: string;
  attachments: Attachment[];
  /** Lines the adapter wants the reply to carry about files it could not even offer (e.g. no permission). */
  notices?: string[];
}
