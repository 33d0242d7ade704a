import { AttachmentError, type Attachment } from '../../src/core/index.js';
import { download } from './attachments.js';
import type { ClientCredentials } from './auth.js';
import type { GraphMessageLocator } from './types.js';

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
