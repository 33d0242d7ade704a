import { type Activity, type ConversationReference, TurnContext } from 'botbuilder';
import type { FileRef, Json, Turn } from '../../src/core/index.js';
import { cleanIncomingText, decodeEntities } from './markdown.js';
import {
  FILE_DOWNLOAD_INFO,
  type FileDownloadInfo,
  type FileHint,
  type GraphMessageLocator,
  type TeamsChannelData,
  type TeamsTurnData,
  type TeamsFileSource,
  type TeamsScope,
} from './types.js';

/**
 * Teams activity → Turn, with small pure filters (bolt-style): only messages, never the bot's own, only
 * mentions outside personal chat, never a tenant that contradicts itself. TEAMS_ALLOWED_TENANTS is the core's
 * workspace allow-list for Teams (it refuses with one line, and the audit log records it). No I/O: files are only described (opened by
 * prepare.ts in whichever worker runs the turn), and files Teams only hints at (channel and group-chat files
 * live in SharePoint) go into the turn's data as `fileHints`.
 */
export type Received = { kind: 'ignore'; reason: string } | { kind: 'refuse'; tenantId: string | undefined; reason: TenantRefusal } | { kind: 'turn'; turn: Turn };

/**
 * Why an authenticated activity is not for this adapter, or undefined when it is. A Bot Framework token only
 * proves the request came through some channel of this bot; Web Chat and Direct Line clients write their own
 * attachments and channelData. So only Teams ('msteams') is accepted, plus the Bot Framework Emulator's
 * 'emulator' while authentication is off (local tools).
 */
export function channelRefusal(activity: Partial<Activity>, authenticationOff: boolean): string | undefined {
  const channel = activity.channelId;
  if (channel === 'msteams') return undefined;
  if (channel === 'emulator' && authenticationOff) return undefined;
  return `channel ${JSON.stringify(channel ?? null)} is not Microsoft Teams`;
}

export type TenantRefusal = 'not_allowed' | 'conflict';

/**
 * The tenant is `conversation.tenantId`, which Teams sets on every activity. `channelData.tenant.id` is never
 * used as the tenant: it only has to agree when both are present (a conflict is refused). Without
 * `conversation.tenantId` the tenant is unknown, which TEAMS_ALLOWED_TENANTS refuses.
 */
export function checkTenant(
  activity: Partial<Activity>,
  allowedTenants: string[],
): { ok: true; tenantId: string | undefined } | { ok: false; tenantId: string | undefined; reason: TenantRefusal } {
  const tenantId = activity.conversation?.tenantId;
  const claimed = (activity.channelData as TeamsChannelData | undefined)?.tenant?.id;
  if (claimed !== undefined && tenantId !== undefined && claimed.toLowerCase() !== tenantId.toLowerCase()) {
    return { ok: false, tenantId, reason: 'conflict' };
  }
  return isTenantAllowed(tenantId, allowedTenants) ? { ok: true, tenantId } : { ok: false, tenantId, reason: 'not_allowed' };
}

export function scopeOf(activity: Partial<Activity>): TeamsScope {
  const type = activity.conversation?.conversationType;
  if (type === 'channel' || type === 'groupChat' || type === 'personal') return type;
  return activity.conversation?.isGroup ? 'groupChat' : 'personal';
}

/** Splits `19:abc@thread.tacv2;messageid=1700000000000` into the channel and the reply-chain root. */
export function splitConversationId(id: string): { base: string; rootId: string | undefined } {
  const match = /^(.*?);messageid=(.+)$/i.exec(id);
  return match ? { base: match[1]!, rootId: match[2]! } : { base: id, rootId: undefined };
}

export function isTenantAllowed(tenantId: string | undefined, allowed: string[]): boolean {
  if (allowed.length === 0) return true;
  return tenantId !== undefined && allowed.some((t) => t.toLowerCase() === tenantId.toLowerCase());
}

export function receiveActivity(activity: Partial<Activity>): Received {
  if (activity.type !== 'message') return { kind: 'ignore', reason: `activity type ${activity.type ?? 'none'}` };
  const botId = activity.recipient?.id;
  if (activity.from?.id !== undefined && activity.from.id === botId) return { kind: 'ignore', reason: 'own message' };
  const conversationId = activity.conversation?.id;
  if (conversationId === undefined || activity.id === undefined) return { kind: 'ignore', reason: 'no conversation or id' };

  const tenant = checkTenant(activity, []);
  if (!tenant.ok) return { kind: 'refuse', tenantId: tenant.tenantId, reason: tenant.reason };
  const { tenantId } = tenant;

  const scope = scopeOf(activity);
  const botMentions = (activity.entities ?? [])
    .filter((e) => e.type === 'mention' && (e as { mentioned?: { id?: string } }).mentioned?.id === botId)
    .map((e) => String((e as { text?: string }).text ?? ''));
  const rawText = activity.text ?? '';
  const mentionedByName = activity.recipient?.name !== undefined && rawText.includes(`<at>${activity.recipient.name}</at>`);
  if (scope !== 'personal' && botMentions.length === 0 && !mentionedByName) return { kind: 'ignore', reason: 'bot not mentioned' };

  const { files, fileHints } = readAttachments(activity);
  const channelData = activity.channelData as TeamsChannelData | undefined;
  const { base, rootId } = splitConversationId(conversationId);
  const root = rootId ?? activity.id;
  const channel = scope === 'channel' ? (channelData?.channel?.id ?? base) : conversationId;
  const thread = scope === 'channel' ? root : conversationId;

  let graph: GraphMessageLocator | undefined;
  if (scope === 'channel' && channelData?.team?.id !== undefined) {
    const teamId = channelData.team.aadGroupId;
    graph = { kind: 'channel', ...(teamId !== undefined ? { teamId } : {}), teamThreadId: channelData.team.id, channelId: channel, rootId: root, messageId: activity.id };
  } else if (scope === 'groupChat') {
    graph = { kind: 'chat', chatId: conversationId, messageId: activity.id };
  }
  const data: TeamsTurnData = {
    reference: TurnContext.getConversationReference(activity) as ConversationReference,
    scope,
    ...(tenantId !== undefined ? { tenantId } : {}),
    fileHints,
    ...(graph !== undefined ? { graph } : {}),
  };

  const turn: Turn = {
    conversation: { platform: 'teams', workspace: tenantId ?? 'unknown', channel, thread },
    messageKey: `teams:${conversationId}:${activity.id}`,
    user: {
      id: activity.from?.aadObjectId ?? activity.from?.id ?? 'unknown',
      ...(activity.from?.name !== undefined ? { name: activity.from.name } : {}),
    },
    text: cleanIncomingText(rawText, botMentions, activity.recipient?.name),
    files,
    platformData: data as unknown as { [key: string]: Json },
    ...(scope === 'personal' ? { direct: true } : {}),
  };
  return { kind: 'turn', turn };
}

interface TeamsAttachment {
  contentType?: string;
  contentUrl?: string;
  content?: unknown;
  name?: string;
}

function readAttachments(activity: Partial<Activity>): { files: FileRef[]; fileHints: FileHint[] } {
  const files: FileRef[] = [];
  const hints: FileHint[] = [];
  const raw = (activity.attachments ?? []) as TeamsAttachment[];
  let images = 0;
  const hasImageAttachment = raw.some((a) => a.contentType?.startsWith('image/') && a.contentUrl !== undefined);
  for (const a of raw) {
    const type = (a.contentType ?? '').toLowerCase();
    if (type === FILE_DOWNLOAD_INFO) {
      const info = (a.content ?? {}) as FileDownloadInfo;
      const name = a.name ?? `file.${info.fileType ?? 'bin'}`;
      files.push(fileRef(`teams:file:${info.uniqueId ?? name}`, name, undefined, { kind: 'download', ...(info.downloadUrl !== undefined ? { url: info.downloadUrl } : {}) }));
    } else if (type.startsWith('image/') && a.contentUrl !== undefined) {
      const subtype = type.split('/')[1] ?? '*';
      // Teams often declares pasted images as "image/*"; screenshots are PNG, so that is the best guess.
      const ext = subtype === 'jpeg' || subtype === 'jpg' ? 'jpg' : subtype === 'gif' ? 'gif' : 'png';
      files.push(fileRef(`teams:image:${a.contentUrl}`, `pasted-image-${++images}.${ext}`, subtype !== '*' ? type : undefined, { kind: 'image', url: a.contentUrl }));
    } else if (type === 'text/html') {
      hints.push(...hintsFromHtml(typeof a.content === 'string' ? a.content : '', hasImageAttachment));
    } else if (type === 'reference') {
      hints.push({ name: a.name ?? 'a shared file', ...(a.contentUrl !== undefined ? { url: a.contentUrl } : {}) });
    } else if (type.startsWith('application/vnd.microsoft.card.') || type === 'application/vnd.microsoft.teams.card.o365connector') {
      // Cards (e.g. a forwarded card) are not files.
    } else if (a.name !== undefined || a.contentUrl !== undefined) {
      hints.push({ name: a.name ?? 'an attachment', ...(a.contentUrl !== undefined ? { url: a.contentUrl } : {}) });
    }
  }
  hints.push(...sharePointLinks(activity.text ?? ''));
  return { files, fileHints: dedupeHints(hints) };
}

function fileRef(sourceId: string, name: string, mimeType: string | undefined, source: TeamsFileSource): FileRef {
  return { sourceId, name, ...(mimeType !== undefined ? { mimeType } : {}), source: source as unknown as Json };
}

const SHAREPOINT = /https:\/\/[a-z0-9.-]*(?:sharepoint\.com|sharepoint\.us|onedrive\.live\.com|1drv\.ms)\/[^\s"'<>)]*/gi;

/** File links and stubs in the message HTML: SharePoint/OneDrive links, <attachment> tags, pasted images. */
export function hintsFromHtml(html: string, hasImageAttachment: boolean): FileHint[] {
  const hints: FileHint[] = [];
  for (const m of html.matchAll(/<a\b[^>]*href="([^"]+)"[^>]*>(.*?)<\/a>/gis)) {
    const url = decodeEntities(m[1]!);
    SHAREPOINT.lastIndex = 0;
    if (SHAREPOINT.test(url)) hints.push({ name: decodeEntities(m[2]!.replace(/<[^>]*>/g, '')).trim() || fileName(url), url });
  }
  const attachmentTags = [...html.matchAll(/<attachment\b[^>]*>/gi)].length;
  for (let i = 0; i < attachmentTags; i++) hints.push({ name: attachmentTags === 1 ? 'the attached file' : `attached file ${i + 1}` });
  if (!hasImageAttachment) {
    const images = [...html.matchAll(/<img\b[^>]*>/gi)].filter((m) => !/schema\.skype\.com\/(Emoji|Mention)/i.test(m[0]));
    for (const [i] of images.entries()) hints.push({ name: images.length === 1 ? 'the pasted image' : `pasted image ${i + 1}` });
  }
  return hints;
}

function sharePointLinks(text: string): FileHint[] {
  return [...text.matchAll(SHAREPOINT)].map((m) => ({ name: fileName(m[0]), url: m[0] }));
}

function fileName(url: string): string {
  try {
    const last = new URL(url).pathname.split('/').filter((p) => p !== '').pop();
    return last !== undefined ? decodeURIComponent(last) : 'a shared file';
  } catch {
    return 'a shared file';
  }
}

function dedupeHints(hints: FileHint[]): FileHint[] {
  const seen = new Set<string>();
  return hints.filter((h) => {
    const key = h.url ?? h.name;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
