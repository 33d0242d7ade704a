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
  /** How long to wait for Slack to start sending a file (its response headers). */
  downloadTimeoutMs: number;
  /** How long a started download may go without data, while Crunch waits for more, before it fails. */
  downloadIdleTimeoutMs: number;
  /** SLACK_API_URL when configured: its origin (GovSlack, a proxy, a fake in tests) may receive the token too. */
  apiUrl?: string | undefined;
}

/** Slack's own hosts: commercial Slack (slack.com, files.slack.com, *.slack-edge.com) and GovSlack (slack-gov.com). */
const SLACK_DOMAINS = ['slack.com', 'slack-gov.com'];
const SLACK_SUBDOMAIN_ONLY = ['slack-edge.com'];
const MAX_REDIRECTS = 5;

/**
 * Whether the bot token may be sent to `url`: https on Slack's own hosts (default port, no credentials in the URL),
 * or the exact origin of SLACK_API_URL. Everything else, including a look-alike such as files.slack.com.evil.example,
 * gets no token. Pure.
 */
export function mayCarryToken(url: string, apiUrl?: string): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (target.username !== '' || target.password !== '') return false;
  if (apiUrl !== undefined && apiUrl !== '') {
    try {
      if (target.origin === new URL(apiUrl).origin) return true;
    } catch {
      // An unparsable SLACK_API_URL adds no host.
    }
  }
  if (target.protocol !== 'https:' || target.port !== '') return false;
  const host = target.hostname;
  return (
    SLACK_DOMAINS.some((domain) => host === domain || host.endsWith(`.${domain}`)) ||
    SLACK_SUBDOMAIN_ONLY.some((domain) => host.endsWith(`.${domain}`))
  );
}

/**
 * Turns `event.files[]` into attachments, and the files that cannot even be offered into notices. Only Slack Connect
 * files cost a call here (files.info): the core screens a file by its name, type and size before opening it, and
 * Slack sends those for such a file only on request. Every other download waits for `Attachment.open()`.
 */
export async function collectFiles(files: SlackFile[], access: FileAccess): Promise<{ attachments: Attachment[]; notices: string[] }> {
  const attachments: Attachment[] = [];
  const notices: string[] = [];
  const described = await Promise.all(files.map((listed) => describe(listed, access)));
  for (const entry of described) {
    if ('notice' in entry) {
      notices.push(entry.notice);
      continue;
    }
    const { file } = entry;
    const refusal = unusable(file, access);
    if (refusal !== undefined) {
      notices.push(`**${fileLabel(file)}** skipped: ${refusal}`);
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

/** The file as Slack describes it, asking files.info when the event only says that it may (Slack Connect). */
async function describe(listed: SlackFile, access: FileAccess): Promise<{ file: SlackFile } | { notice: string }> {
  if (listed.file_access !== 'check_file_info' && listed.mode !== 'file_access') return { file: listed };
  try {
    return { file: { ...(await access.fileInfo(listed.id)), id: listed.id } };
  } catch (err) {
    const code = platformError(err);
    return {
      notice: `**${fileLabel(listed)}** skipped: Slack did not let me open it (${code}). If it was shared from another organisation (Slack Connect), download it and attach it here again.`,
    };
  }
}

function fileLabel(file: SlackFile): string {
  return file.name ?? file.title ?? 'A file';
}

function downloadUrl(file: SlackFile): string | undefined {
  return file.url_private_download ?? file.url_private;
}

function unusable(file: SlackFile, access: FileAccess): string | undefined {
  if (file.mode === 'tombstone') return 'it was deleted.';
  if (file.mode === 'hidden_by_limit') return "it is hidden by this workspace's plan limits, so I cannot open it.";
  if (file.file_access === 'access_denied') return 'Slack denies me access to it.';
  if (file.is_external || file.mode === 'external') {
    const where = file.external_type ? ` (${file.external_type})` : '';
    return `it is a link to a file stored outside Slack${where}. Download it and attach the file itself.`;
  }
  const url = downloadUrl(file);
  if (url === undefined) return 'Slack sent no download link for it.';
  if (!mayCarryToken(url, access.apiUrl)) return outsideSlack(url);
  return undefined;
}

function outsideSlack(url: string): string {
  return `its download link points outside Slack (${hostOf(url)}), and I send my Slack credentials to Slack only, so I did not open it. Download the file and attach it here again.`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host || 'an unknown host';
  } catch {
    return 'an invalid address';
  }
}

function platformError(err: unknown): string {
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : 'no access';
}

const MISSING_SCOPE =
  'Slack sent its sign-in page instead of the file, which means the Crunch app lacks the files:read permission. ' +
  'Ask a workspace admin to reinstall the app with the files:read scope (see docs/slack.md), then send the file again.';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Downloads a file with the bot token and returns the body as a Node stream, unbuffered. Slack answers a token
 * without files:read with its HTML sign-in page (status 200, often after a redirect) rather than an error.
 *
 * The token only ever goes to Slack (see `mayCarryToken`): redirects are followed by hand, each hop's host checked
 * before the request, and a hop that leaves Slack fails the download without being requested. The stream fails
 * with an `AttachmentError`, never just ends, when the connection drops midway or stays silent for
 * `downloadIdleTimeoutMs` while more is awaited.
 */
export async function openSlackFile(file: SlackFile, access: FileAccess): Promise<Readable> {
  const name = fileLabel(file);
  let url = downloadUrl(file)!;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), access.downloadTimeoutMs);
  let response: Response;
  let redirected = false;
  try {
    for (let hop = 0; ; hop++) {
      if (!mayCarryToken(url, access.apiUrl)) throw new AttachmentError(`**${name}** skipped: ${outsideSlack(url)}`);
      const answer = await fetch(url, { headers: { authorization: `Bearer ${access.botToken}` }, signal: controller.signal, redirect: 'manual' });
      const location = answer.headers.get('location');
      if (!REDIRECT_STATUSES.has(answer.status) || location === null) {
        response = answer;
        break;
      }
      await answer.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new AttachmentError(`Slack sent **${name}** through too many redirects. Please send it again in a moment.`);
      url = new URL(location, url).href;
      redirected = true;
    }
  } catch (err) {
    if (err instanceof AttachmentError) throw err;
    throw new AttachmentError(`I could not download **${name}** from Slack (the connection failed). Please try again in a moment.`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  const type = (response.headers.get('content-type') ?? '').toLowerCase();
  const htmlExpected = (file.mimetype ?? '').startsWith('text/html') || file.filetype === 'html';
  const signInPage = response.ok && type.startsWith('text/html') && (!htmlExpected || redirected);
  if (signInPage || response.status === 401) {
    await response.body?.cancel();
    throw new AttachmentError(`I could not download **${name}**: ${MISSING_SCOPE}`);
  }
  if (response.status === 403) {
    await response.body?.cancel();
    throw new AttachmentError(
      `Slack refused the download of **${name}** (HTTP 403). If the app was installed without it, reinstall the app with the files:read scope; if the file comes from another organisation, download it and attach it here again.`,
    );
  }
  if (response.status === 404 || response.status === 410) {
    await response.body?.cancel();
    throw new AttachmentError(`**${name}** is no longer available in Slack (it may have been deleted).`);
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new AttachmentError(`Slack could not deliver **${name}** (HTTP ${response.status}). Please send it again in a moment.`);
  }
  return bodyStream(response.body as WebReadableStream<Uint8Array>, name, access.downloadIdleTimeoutMs, () => controller.abort());
}

/**
 * A download's body as a Node stream that fails, rather than hangs or ends short, when Slack stops sending: each
 * read waits at most `idleMs` for data (only while the consumer asks for more, so a slow consumer is not blamed on
 * Slack), and a connection that drops midway fails the stream too. Destroying the stream closes the connection.
 */
function bodyStream(body: WebReadableStream<Uint8Array>, name: string, idleMs: number, close: () => void): Readable {
  const reader = body.getReader();
  let idle: NodeJS.Timeout | undefined;
  const stream = new Readable({
    read() {
      idle = setTimeout(
        () =>
          stream.destroy(
            new AttachmentError(`**${name}** skipped: Slack stopped sending it midway (nothing for ${formatSeconds(idleMs)}). Please send it again.`),
          ),
        idleMs,
      );
      reader.read().then(
        ({ done, value }) => {
          clearTimeout(idle);
          if (stream.destroyed) return;
          stream.push(done ? null : Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        },
        (err: unknown) => {
          clearTimeout(idle);
          stream.destroy(new AttachmentError(`**${name}** skipped: the connection to Slack dropped during the download. Please send it again.`, { cause: err }));
        },
      );
    },
    destroy(err, callback) {
      clearTimeout(idle);
      reader.cancel(err ?? undefined).catch(() => undefined);
      close();
      callback(err);
    },
  });
  return stream;
}

function formatSeconds(ms: number): string {
  const seconds = Math.max(1, Math.round(ms / 1000));
  return seconds === 1 ? '1 second' : `${seconds} seconds`;
}
