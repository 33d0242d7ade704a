import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type Attachment, AttachmentError, type Turn } from '../../src/core/index.js';
import { slackToPlainText } from './markdown.js';
import type { BotIdentity, SlackEnvelope, SlackFile, SlackMessageEvent } from './types.js';

/**
 * Slack event → Turn. The filters are small pure functions (Bolt's `ignoreSelf`/`directMention` style); the
 * only I/O here is what a Turn needs later: file downloads (Attachment.open) and files.info for Slack Connect.
 */

/** Message subtypes that are still a person talking to the bot; every other subtype (edits, deletes, joins…) is not. */
const USER_SUBTYPES = new Set(['file_share', 'thread_broadcast']);
/** What a bot's own post may carry besides: `bot_message` (integrations and webhooks, which have no user). */
const BOT_SUBTYPES = new Set([...USER_SUBTYPES, 'bot_message']);
const NO_BOTS: ReadonlySet<string> = new Set();

export type Triage =
  | { action: 'accept'; reason: 'mention' | 'dm' | 'bot-thread' }
  /** A reply in a channel thread without a mention: taken only if the bot is part of that thread. */
  | { action: 'check-thread' }
  | { action: 'ignore'; reason: string };

/**
 * Which events become turns. People, and the bots in `allowedBots` (bot ids, B…), follow the same rules:
 * mentions, DMs, and replies in threads Crunch is part of. Crunch's own messages never do, whatever the list
 * says, so it cannot answer itself.
 */
export function triageEvent(event: SlackMessageEvent, bot: BotIdentity, allowedBots: ReadonlySet<string> = NO_BOTS): Triage {
  if (event.hidden) return { action: 'ignore', reason: 'hidden' };
  if (isFromSelf(event, bot)) return { action: 'ignore', reason: 'from myself' };
  const fromBot = event.bot_id !== undefined;
  if (fromBot && !allowedBots.has(event.bot_id!)) return { action: 'ignore', reason: 'from a bot' };
  if (event.subtype !== undefined && !(fromBot ? BOT_SUBTYPES : USER_SUBTYPES).has(event.subtype))
    return { action: 'ignore', reason: `subtype ${event.subtype}` };
  if (!fromBot && event.user === undefined) return { action: 'ignore', reason: 'no author' };
  if (event.type === 'app_mention') return { action: 'accept', reason: 'mention' };
  if (event.type !== 'message') return { action: 'ignore', reason: `event ${event.type}` };
  if (isDirectMessage(event)) return { action: 'accept', reason: 'dm' };
  // In a channel a mention arrives twice (app_mention and message): both become the same Turn, answered once.
  if (mentions(event.text ?? '', bot.userId)) return { action: 'accept', reason: 'mention' };
  if (event.thread_ts !== undefined && event.thread_ts !== event.ts) {
    if (bot.userId !== undefined && event.parent_user_id === bot.userId) return { action: 'accept', reason: 'bot-thread' };
    return { action: 'check-thread' };
  }
  return { action: 'ignore', reason: 'channel message without a mention' };
}

function isFromSelf(event: SlackMessageEvent, bot: BotIdentity): boolean {
  return (bot.botId !== undefined && event.bot_id === bot.botId) || (bot.userId !== undefined && event.user === bot.userId);
}

/** Who wrote the message: the user, or for an integration's `bot_message`, the bot. */
export function authorOf(event: SlackMessageEvent): string {
  return event.user ?? event.bot_id ?? 'unknown';
}

export function isDirectMessage(event: SlackMessageEvent): boolean {
  return event.channel_type === 'im' || (event.channel_type === undefined && event.channel.startsWith('D'));
}

function mentions(text: string, botUserId: string | undefined): boolean {
  return botUserId !== undefined && new RegExp(`<@${botUserId}(\\|[^>]*)?>`).test(text);
}

/** The workspace the event belongs to: the one the app is installed in, identical for both twins of a mention. */
export function teamOf(envelope: SlackEnvelope, event: SlackMessageEvent): string {
  return envelope.team_id ?? envelope.authorizations?.[0]?.team_id ?? event.team ?? 'unknown';
}

/** Replies go in the message's thread, or start one under a top-level message (DMs included). */
export function threadOf(event: SlackMessageEvent): string {
  return event.thread_ts ?? event.ts;
}

/** One key per delivered message: app_mention/message twins and retried deliveries share it. */
export function messageKeyOf(team: string, event: SlackMessageEvent): string {
  return `slack:${team}:${event.channel}:${event.ts}`;
}

/** The store key that remembers a thread the bot is part of. */
export function threadKey(team: string, channel: string, threadTs: string): string {
  return `slack:thread:${team}:${channel}:${threadTs}`;
}

export function buildTurn(input: {
  team: string;
  event: SlackMessageEvent;
  bot: BotIdentity;
  attachments: Attachment[];
  notices: string[];
}): Turn {
  const { team, event } = input;
  return {
    conversation: { platform: 'slack', workspace: team, channel: event.channel, thread: threadOf(event) },
    messageKey: messageKeyOf(team, event),
    user: { id: authorOf(event) },
    text: slackToPlainText(event.text ?? '', input.bot.userId),
    attachments: input.attachments,
    ...(input.notices.length > 0 ? { notices: input.notices } : {}),
  };
}

// ---- Files ----

export interface FileAccess {
  botToken: string;
  /** files.info, for files Slack only describes on request (Slack Connect: file_access "check_file_info"). */
  fileInfo(id: string): Promise<SlackFile>;
  /** How long to wait for Slack to start sending a file. */
  downloadTimeoutMs: number;
}

/** Turns `event.files[]` into attachments, and the files that cannot even be offered into notices. */
export async function collectFiles(files: SlackFile[], access: FileAccess): Promise<{ attachments: Attachment[]; notices: string[] }> {
  const attachments: Attachment[] = [];
  const notices: string[] = [];
  for (const listed of files) {
    let file = listed;
    if (file.file_access === 'check_file_info' || file.mode === 'file_access') {
      try {
        file = { ...(await access.fileInfo(file.id)), id: file.id };
      } catch (err) {
        const code = platformError(err);
        notices.push(
          `*${fileLabel(file)}* skipped: Slack did not let me open it (${code}). If it was shared from another organisation (Slack Connect), download it and attach it here again.`,
        );
        continue;
      }
    }
    const refusal = unusable(file);
    if (refusal !== undefined) {
      notices.push(`*${fileLabel(file)}* skipped: ${refusal}`);
      continue;
    }
    attachments.push({
      sourceId: file.id,
      name: file.name ?? file.title ?? file.id,
      ...(file.size !== undefined ? { sizeBytes: file.size } : {}),
      ...(file.mimetype ? { mimeType: file.mimetype } : {}),
      open: () => openSlackFile(file, access),
    });
  }
  return { attachments, notices };
}

function fileLabel(file: SlackFile): string {
  return file.name ?? file.title ?? 'A file';
}

function unusable(file: SlackFile): string | undefined {
  if (file.mode === 'tombstone') return 'it was deleted.';
  if (file.mode === 'hidden_by_limit') return "it is hidden by this workspace's plan limits, so I cannot open it.";
  if (file.file_access === 'access_denied') return 'Slack denies me access to it.';
  if (file.is_external || file.mode === 'external') {
    const where = file.external_type ? ` (${file.external_type})` : '';
    return `it is a link to a file stored outside Slack${where}. Download it and attach the file itself.`;
  }
  if (file.url_private_download === undefined && file.url_private === undefined) return 'Slack sent no download link for it.';
  return undefined;
}

function platformError(err: unknown): string {
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : 'no access';
}

const MISSING_SCOPE =
  'Slack sent its sign-in page instead of the file, which means the Crunch app lacks the files:read permission. ' +
  'Ask a workspace admin to reinstall the app with the files:read scope (see docs/slack.md), then send the file again.';

/**
 * Downloads a file with the bot token and returns the body as a Node stream, unbuffered. Slack answers a token
 * without files:read with its HTML sign-in page (status 200, often after a redirect) rather than an error.
 */
export async function openSlackFile(file: SlackFile, access: FileAccess): Promise<Readable> {
  const name = fileLabel(file);
  const url = file.url_private_download ?? file.url_private!;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), access.downloadTimeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${access.botToken}` }, signal: controller.signal });
  } catch (err) {
    throw new AttachmentError(`I could not download *${name}* from Slack (the connection failed). Please try again in a moment.`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  const type = (response.headers.get('content-type') ?? '').toLowerCase();
  const htmlExpected = (file.mimetype ?? '').startsWith('text/html') || file.filetype === 'html';
  const signInPage = response.ok && type.startsWith('text/html') && (!htmlExpected || response.redirected);
  if (signInPage || response.status === 401) {
    await response.body?.cancel();
    throw new AttachmentError(`I could not download *${name}*: ${MISSING_SCOPE}`);
  }
  if (response.status === 403) {
    await response.body?.cancel();
    throw new AttachmentError(
      `Slack refused the download of *${name}* (HTTP 403). If the app was installed without it, reinstall the app with the files:read scope; if the file comes from another organisation, download it and attach it here again.`,
    );
  }
  if (response.status === 404 || response.status === 410) {
    await response.body?.cancel();
    throw new AttachmentError(`*${name}* is no longer available in Slack (it may have been deleted).`);
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new AttachmentError(`Slack could not deliver *${name}* (HTTP ${response.status}). Please send it again in a moment.`);
  }
  return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
}
