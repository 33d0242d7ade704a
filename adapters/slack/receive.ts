import type { FileRef, Json, Turn } from '../../src/core/index.js';
import { slackToPlainText } from './markdown.js';
import type { BotIdentity, SlackAddress, SlackEnvelope, SlackFile, SlackMessageEvent } from './types.js';

/**
 * Slack event → Turn, with small pure functions (Bolt's `ignoreSelf`/`directMention` style) and no I/O: the
 * files are only described here, and opened by prepare.ts in whichever worker runs the turn.
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
export function teamOf(envelope: SlackEnvelope, event: { team?: string }): string {
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

/**
 * The Turn for an accepted event. In a channel a mention arrives twice under one message key: as an
 * `app_mention`, which may lack the message's files, and as a `message`, which has them. The first one
 * recorded is answered; an `app_mention` without files waits briefly for its `message` twin's files.
 */
export function buildTurn(team: string, event: SlackMessageEvent, bot: BotIdentity): Turn {
  const files = (event.files ?? []).map(fileRef);
  const inChannel = !isDirectMessage(event);
  const twin = !inChannel ? undefined : event.type === 'app_mention' ? (files.length === 0 ? 'awaits' : undefined) : mentions(event.text ?? '', bot.userId) ? 'completes' : undefined;
  const address: SlackAddress = {
    channel: event.channel,
    threadTs: threadOf(event),
    userId: event.user ?? '',
    userTeamId: event.user_team ?? event.team ?? team,
    // Another bot gets the answer whole: nobody watches it typed, and a stream's recipient must be a person.
    stream: event.bot_id === undefined,
  };
  return {
    conversation: { platform: 'slack', workspace: team, channel: event.channel, thread: threadOf(event) },
    messageKey: messageKeyOf(team, event),
    user: { id: authorOf(event) },
    text: slackToPlainText(event.text ?? '', bot.userId),
    files,
    platformData: { ...address },
    ...(twin !== undefined ? { twin } : {}),
    ...(inChannel ? {} : { direct: true }),
  };
}

/** A file of the event, as Slack describes it there (Slack Connect files only by id, until files.info). */
function fileRef(file: SlackFile): FileRef {
  return {
    sourceId: file.id,
    name: file.name ?? file.title ?? file.id,
    ...(file.size !== undefined ? { sizeBytes: file.size } : {}),
    ...(file.mimetype ? { mimeType: file.mimetype } : {}),
    source: file as unknown as Json,
  };
}
