import type { Logger } from 'pino';
import { AttachmentError, type Attachment } from '../../src/core/index.js';
import { download } from './attachments.js';
import { ClientCredentials } from './auth.js';
import { DEFAULTS, type FileHint, type GraphMessageLocator, type TeamsAdapterConfig, type TeamsScope } from './types.js';

/**
 * Teams does not hand files posted in channels and group chats to bots: the activity only carries an HTML
 * stub. They live in SharePoint/OneDrive, and the message's `reference` attachments (name + SharePoint URL)
 * are visible through Microsoft Graph. This optional capability needs application permissions an admin
 * grants to the bot's app registration:
 *   - ChannelMessage.Read.All (channels) and Chat.Read.All (group chats) to read the message;
 *   - Files.Read.All (or Sites.Read.All) to download the file through /shares.
 */
export interface ChannelFileSource {
  /** The files attached to a message; throws a GraphPermissionError when Graph refuses. */
  files(tenantId: string, locator: GraphMessageLocator): Promise<Attachment[]>;
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

interface GraphAttachment {
  id?: string;
  contentType?: string;
  contentUrl?: string | null;
  name?: string | null;
}

export interface GraphOptions {
  credentials: ClientCredentials;
  graphUrl: string;
  loginUrl: string;
}

export function createGraphFileSource(options: GraphOptions): ChannelFileSource {
  const graphOrigin = new URL(options.graphUrl).origin;
  const token = (tenantId: string) =>
    options.credentials.token(`${options.loginUrl}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`, `${graphOrigin}/.default`);

  return {
    async files(tenantId, locator) {
      const bearer = `Bearer ${await token(tenantId)}`;
      const response = await fetch(`${options.graphUrl}${messagePath(locator)}`, { headers: { authorization: bearer } });
      if (response.status === 401 || response.status === 403) {
        throw new GraphPermissionError(locator.kind === 'channel' ? 'ChannelMessage.Read.All' : 'Chat.Read.All', response.status);
      }
      if (!response.ok) throw new Error(`Microsoft Graph answered ${response.status} for the message`);
      const message = (await response.json()) as { attachments?: GraphAttachment[] };
      return (message.attachments ?? [])
        .filter((a) => a.contentType === 'reference' && typeof a.contentUrl === 'string' && a.contentUrl !== '')
        .map((a) => sharedFile(options.graphUrl, a.name ?? fileNameOf(a.contentUrl!), a.contentUrl!, () => token(tenantId)));
    },
  };
}

function messagePath(locator: GraphMessageLocator): string {
  const e = encodeURIComponent;
  if (locator.kind === 'chat') return `/chats/${e(locator.chatId)}/messages/${e(locator.messageId)}`;
  const base = `/teams/${e(locator.teamId ?? '')}/channels/${e(locator.channelId)}/messages/${e(locator.rootId)}`;
  return locator.messageId === locator.rootId ? base : `${base}/replies/${e(locator.messageId)}`;
}

/** A SharePoint file, downloaded through /shares/{encoded sharing URL}/driveItem/content. */
function sharedFile(graphUrl: string, name: string, contentUrl: string, token: () => Promise<string>): Attachment {
  const shareId = `u!${Buffer.from(contentUrl).toString('base64url')}`;
  return {
    sourceId: `teams:sharepoint:${contentUrl}`,
    name,
    open: async () => {
      const url = `${graphUrl}/shares/${shareId}/driveItem/content`;
      try {
        return await download(url, name, `Bearer ${await token()}`, 'I am not allowed to read it (the app needs the Files.Read.All permission).');
      } catch (err) {
        if (err instanceof AttachmentError) throw err;
        throw new AttachmentError(`**${name}** skipped: I could not download it from SharePoint.`, { cause: err });
      }
    },
  };
}

function fileNameOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? 'file');
  } catch {
    return 'file';
  }
}

export function graphSource(config: TeamsAdapterConfig, logger: Logger): ChannelFileSource | undefined {
  if (!config.graphFiles) return undefined;
  if (config.appId === undefined || config.appPassword === undefined) {
    logger.warn('TEAMS_GRAPH_FILES needs MicrosoftAppId and MicrosoftAppPassword (client secret); channel files stay off');
    return undefined;
  }
  return createGraphFileSource({
    credentials: new ClientCredentials(config.appId, config.appPassword),
    graphUrl: config.endpoints?.graphUrl ?? DEFAULTS.graphUrl,
    loginUrl: config.endpoints?.graphLoginUrl ?? DEFAULTS.graphLoginUrl,
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
