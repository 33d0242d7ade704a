import type { Logger } from 'pino';
import { type Attachment, raceAbort } from '../../../src/core/index.js';
import { download, type DownloadLimits } from './download.js';
import { ClientCredentials } from '../auth/auth.js';
import { DEFAULTS, type FileHint, type GraphMessageLocator, type TeamsAdapterConfig, type TeamsScope } from '../types.js';
import { configuredUrlPolicy, type UrlPolicy } from '../auth/urls.js';

/**
 * Teams does not hand files posted in channels and group chats to bots: the activity only carries an HTML
 * stub. They live in SharePoint/OneDrive, and the message's `reference` attachments (name + SharePoint URL)
 * are visible through Microsoft Graph. This optional capability needs application permissions an admin
 * grants to the bot's app registration:
 *   - ChannelMessage.Read.All (channels) and Chat.Read.All (group chats) to read the message;
 *   - Files.Read.All (or Sites.Read.All) to read the files.
 *
 * Those permissions reach every file in the tenant, while a message's `reference` attachments are whatever its
 * sender wrote (Graph lets users post messages with any attachment URL). So a file is only read when its sender
 * could share it there anyway (no confused deputy):
 *   - channel: the item must sit inside the channel's own files folder (GET …/channels/{id}/filesFolder gives
 *     its drive and folder; the item's parentReference must name that drive and a path at or below the folder);
 *   - group chat: the item must be in the sender's own OneDrive (the drive's owner is the message's sender),
 *     which is where Teams puts files shared in a chat.
 * Anything else is refused with a notice and never downloaded.
 */
export interface ChannelFileSource {
  /**
   * The files attached to a message, and notices for those refused; throws a GraphPermissionError when Graph
   * refuses. Every request, and every download it leads to, ends with `signal` (the turn's deadline).
   */
  files(tenantId: string, locator: GraphMessageLocator, signal: AbortSignal): Promise<{ attachments: Attachment[]; notices: string[] }>;
}

export class GraphPermissionError extends Error {
  constructor(
    readonly permission: string,
    readonly status: number,
  ) {
    super(`Microsoft Graph refused (${status}); the app registration needs the ${permission} application permission`);
    this.name = 'GraphPermissionError';
  }
}

class GraphNotFound extends Error {}

interface GraphAttachment {
  id?: string;
  contentType?: string;
  contentUrl?: string | null;
  name?: string | null;
}

interface GraphMessage {
  attachments?: GraphAttachment[];
  from?: { user?: { id?: string | null } | null } | null;
}

interface DriveItem {
  id?: string;
  name?: string;
  size?: number;
  file?: unknown;
  parentReference?: { driveId?: string; id?: string; path?: string };
}

export interface GraphOptions {
  credentials: ClientCredentials;
  graphUrl: string;
  loginUrl: string;
  /** How long each file download may take to start, and may stall. */
  downloads: DownloadLimits;
}

/** Where the message's files may come from. */
type FileScope = { kind: 'folder'; driveId: string; path: string } | { kind: 'owner'; ownerId: string | undefined };

export function createGraphFileSource(options: GraphOptions): ChannelFileSource {
  const graphOrigin = new URL(options.graphUrl).origin;
  const policy = configuredUrlPolicy(options.graphUrl);
  const token = (tenantId: string) =>
    options.credentials.token(`${options.loginUrl}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`, `${graphOrigin}/.default`);

  return {
    async files(tenantId, locator, signal) {
      const bearer = `Bearer ${await raceAbort(token(tenantId), signal)}`;
      const get = async <T>(path: string, permission: string): Promise<T> => {
        const response = await fetch(`${options.graphUrl}${path}`, { headers: { authorization: bearer }, redirect: 'error', signal });
        if (response.status === 401 || response.status === 403) {
          await response.body?.cancel().catch(() => {});
          throw new GraphPermissionError(permission, response.status);
        }
        if (response.status === 404) {
          await response.body?.cancel().catch(() => {});
          throw new GraphNotFound(`Microsoft Graph found nothing at ${path}`);
        }
        if (!response.ok) throw new Error(`Microsoft Graph answered ${response.status} for ${path}: ${(await response.text()).slice(0, 200)}`);
        return (await response.json()) as T;
      };

      const message = await get<GraphMessage>(messagePath(locator), locator.kind === 'channel' ? 'ChannelMessage.Read.All' : 'Chat.Read.All');
      const references = (message.attachments ?? []).filter((a) => a.contentType === 'reference' && typeof a.contentUrl === 'string' && a.contentUrl !== '');
      if (references.length === 0) return { attachments: [], notices: [] };
      const scope: FileScope =
        locator.kind === 'channel' ? await channelFolder(get, locator) : { kind: 'owner', ownerId: message.from?.user?.id ?? undefined };

      const attachments: Attachment[] = [];
      const notices: string[] = [];
      const owners = new Map<string, Promise<string | undefined>>();
      for (const reference of references) {
        const shownName = reference.name ?? fileNameOf(reference.contentUrl!);
        let item: DriveItem;
        try {
          item = await get<DriveItem>(`/shares/${shareId(reference.contentUrl!)}/driveItem?$select=id,name,size,file,parentReference`, 'Files.Read.All');
        } catch (err) {
          if (!(err instanceof GraphNotFound)) throw err;
          notices.push(`**${shownName}** skipped: I could not find it in SharePoint or OneDrive.`);
          continue;
        }
        const driveId = item.parentReference?.driveId;
        let allowed = false;
        if (driveId !== undefined && item.id !== undefined && item.file !== undefined) {
          if (scope.kind === 'folder') {
            if (driveId === scope.driveId) {
              // Addressed through its drive, the item reports its folder path (the /shares view may not).
              const full = await get<DriveItem>(`/drives/${e(driveId)}/items/${e(item.id)}?$select=id,name,size,file,parentReference`, 'Files.Read.All');
              const parent = drivePath(full.parentReference?.path);
              allowed = full.parentReference?.driveId === scope.driveId && parent !== undefined && (parent === scope.path || parent.startsWith(`${scope.path}/`));
            }
          } else if (scope.ownerId !== undefined) {
            if (!owners.has(driveId)) {
              owners.set(driveId, get<{ owner?: { user?: { id?: string } } }>(`/drives/${e(driveId)}?$select=id,owner`, 'Files.Read.All').then((d) => d.owner?.user?.id));
            }
            const owner = await owners.get(driveId)!;
            allowed = owner !== undefined && owner.toLowerCase() === scope.ownerId.toLowerCase();
          }
        }
        if (!allowed) {
          notices.push(outsideNotice(shownName, locator.kind));
          continue;
        }
        const name = item.name ?? shownName;
        const url = `${options.graphUrl}/drives/${e(driveId!)}/items/${e(item.id!)}/content`;
        attachments.push(driveFile({ url, name, sourceId: `teams:drive:${driveId}:${item.id}`, size: item.size }, graphOrigin, policy, options.downloads, () => token(tenantId), signal));
      }
      return { attachments, notices };
    },
  };
}

const e = encodeURIComponent;

function messagePath(locator: GraphMessageLocator): string {
  if (locator.kind === 'chat') return `/chats/${e(locator.chatId)}/messages/${e(locator.messageId)}`;
  const base = `/teams/${e(locator.teamId ?? '')}/channels/${e(locator.channelId)}/messages/${e(locator.rootId)}`;
  return locator.messageId === locator.rootId ? base : `${base}/replies/${e(locator.messageId)}`;
}

/** The channel's files folder: its drive and its path from the drive root (normalised, see drivePath). */
async function channelFolder(
  get: <T>(path: string, permission: string) => Promise<T>,
  locator: Extract<GraphMessageLocator, { kind: 'channel' }>,
): Promise<FileScope> {
  const folder = await get<DriveItem>(`/teams/${e(locator.teamId ?? '')}/channels/${e(locator.channelId)}/filesFolder`, 'Files.Read.All');
  const driveId = folder.parentReference?.driveId;
  if (driveId === undefined || folder.id === undefined) throw new Error('Microsoft Graph returned a files folder without its drive');
  // filesFolder usually leaves out the folder's own path; the same item read through its drive has it.
  const withPath =
    folder.parentReference?.path !== undefined ? folder : await get<DriveItem>(`/drives/${e(driveId)}/items/${e(folder.id)}?$select=id,name,parentReference`, 'Files.Read.All');
  const path = drivePath(withPath.parentReference?.path, withPath.name ?? folder.name);
  if (path === undefined) throw new Error('Microsoft Graph did not say where the channel files folder is');
  return { kind: 'folder', driveId, path };
}

/**
 * `/drive/root:/General/Sub%20folder` or `/drives/{id}/root:/General` (+ `name`) → `/general/sub folder`:
 * the part after `root:`, percent-decoded, lower-cased (SharePoint paths are case-insensitive), or undefined
 * when it is not such a path.
 */
export function drivePath(parentPath: string | undefined, name?: string): string | undefined {
  if (parentPath === undefined) return undefined;
  const at = parentPath.indexOf('/root:');
  if (at < 0) return undefined;
  let segments: string[];
  try {
    segments = parentPath
      .slice(at + '/root:'.length)
      .split('/')
      .filter((p) => p !== '')
      .map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
  if (name !== undefined) segments.push(name);
  if (segments.some((p) => p === '.' || p === '..' || p.includes('/'))) return undefined;
  return `/${segments.join('/')}`.toLowerCase();
}

function shareId(url: string): string {
  return `u!${Buffer.from(url).toString('base64url')}`;
}

/** Graph refused the file (401/403, or a sign-in page after its redirect). */
const NOT_ALLOWED =
  'I am not allowed to read it: a Teams admin must grant Crunch the Files.Read.All application permission. Until then, attach the file in a 1:1 chat with Crunch.';

/**
 * A file read through /drives/{drive}/items/{item}/content, which Graph answers with a redirect to a download
 * URL; the token goes to Graph only, not to where it redirects.
 */
function driveFile(
  file: { url: string; name: string; sourceId: string; size: number | undefined },
  graphOrigin: string,
  policy: UrlPolicy,
  limits: DownloadLimits,
  token: () => Promise<string>,
  deadline: AbortSignal,
): Attachment {
  const { url, name, sourceId, size } = file;
  return {
    sourceId,
    name,
    ...(typeof size === 'number' ? { sizeBytes: size } : {}),
    open: (signal = deadline) =>
      download(
        { url, name },
        {
          policy,
          limits,
          signal,
          from: 'SharePoint',
          authorization: async () => `Bearer ${await token()}`,
          sendTokenTo: (hop: URL) => hop.origin === graphOrigin,
          redirects: 1,
          refused: NOT_ALLOWED,
          gone: 'it is no longer in SharePoint (it may have been moved or deleted).',
        },
      ),
  };
}

function fileNameOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? 'file');
  } catch {
    return 'file';
  }
}

function outsideNotice(name: string, kind: GraphMessageLocator['kind']): string {
  return kind === 'channel'
    ? `**${name}** skipped: it is not stored in this channel's files, so I did not open it. Upload it to the channel (or send it to me in a 1:1 chat).`
    : `**${name}** skipped: it is not a file from your own OneDrive shared in this chat, so I did not open it. Attach the file itself (or send it to me in a 1:1 chat).`;
}

export function graphSource(config: TeamsAdapterConfig, downloads: DownloadLimits, logger: Logger): ChannelFileSource | undefined {
  if (!config.graphFiles) return undefined;
  if (config.appId === undefined || config.appPassword === undefined) {
    logger.warn('TEAMS_GRAPH_FILES needs MicrosoftAppId and MicrosoftAppPassword (client secret); channel files stay off');
    return undefined;
  }
  return createGraphFileSource({
    credentials: new ClientCredentials(config.appId, config.appPassword),
    graphUrl: config.endpoints?.graphUrl ?? DEFAULTS.graphUrl,
    loginUrl: config.endpoints?.graphLoginUrl ?? DEFAULTS.graphLoginUrl,
    downloads,
  });
}

export function unreachableFileNotice(hint: FileHint, scope: TeamsScope, graphOn: boolean): string {
  const where = scope === 'channel' ? 'channel posts' : scope === 'groupChat' ? 'group chats' : 'this message';
  const how = graphOn
    ? 'I could not find it through Microsoft Graph either.'
    : 'Ask your Teams admin to let Crunch read channel files (Microsoft Graph application permissions ChannelMessage.Read.All, Chat.Read.All and Files.Read.All, then TEAMS_GRAPH_FILES=true).';
  return `**${hint.name}** skipped: Teams does not hand bots the files in ${where}. Send it to me in a 1:1 chat with Crunch instead. ${how}`;
}

export function graphRefusedNotice(hint: FileHint, permission: string): string {
  return `**${hint.name}** skipped: Microsoft Graph refused to show me this message's files. A Teams admin must grant Crunch the ${permission} and Files.Read.All application permissions; until then, send the file to me in a 1:1 chat.`;
}
