import { AttachmentError, type Attachment, type FileRef } from '../../../src/core/index.js';
import type { RequestSigner } from '../auth/auth.js';
import type { TeamsFileSource } from '../types.js';
import { checkUrl, mayReceiveToken, type UrlPolicy } from '../auth/urls.js';
import { download, type DownloadLimits } from './download.js';

/**
 * Turns a Teams turn's files into core Attachments whose `open()` streams the download: nothing is buffered,
 * and nothing is fetched until the core has screened the name, type and size.
 */

/** Gives the `Authorization` header value the bot's own token makes, or undefined when auth is off. */
export type BotAuthorization = () => Promise<string | undefined>;

export interface AttachmentAccess {
  authorization: BotAuthorization;
  /** Which URLs from the activity may be fetched (see urls.ts). */
  policy: UrlPolicy;
  limits: DownloadLimits;
}

/** A download link that does not let Crunch in: SharePoint answers 401/403, or its sign-in page instead of the file. */
const SIGN_IN =
  'SharePoint asked for a signed-in user instead of sending it: its link has expired, or the file is not shared with Crunch. ' +
  'Attach the file again in a 1:1 chat with Crunch; for files in channels and group chats, ask your Teams admin to let Crunch read them (TEAMS_GRAPH_FILES).';

/**
 * A file of the turn as an Attachment whose `open()` streams the download. A file from personal chat has a
 * pre-authenticated, short-lived `downloadUrl` (a few minutes), fetched only if `policy` allows it (https, no
 * private addresses), never with a token. A pasted image's `contentUrl` lives on the Bot Framework connector
 * and needs the bot's bearer token, which goes only to Teams hosts or the activity's serviceUrl (see
 * urls.ts); an image anywhere else is refused, not fetched. Every download ends with the turn's deadline, and
 * fails on its own when it does not start or stalls (download.ts).
 */
export function teamsAttachment(ref: FileRef, access: AttachmentAccess, deadline: AbortSignal): Attachment {
  const source = ref.source as unknown as TeamsFileSource;
  const { name } = ref;
  const base = { sourceId: ref.sourceId, name, ...(ref.mimeType !== undefined ? { mimeType: ref.mimeType } : {}) };
  const { policy, limits } = access;
  if (source.kind === 'download') {
    return {
      ...base,
      open: async (signal = deadline) => {
        if (source.url === undefined) throw new AttachmentError(`**${name}** skipped: Teams sent no download link for it.`);
        return download({ ...base, url: source.url }, { policy, limits, signal, from: 'Teams', refused: SIGN_IN, gone: 'the download link expired; please send the file again.' });
      },
    };
  }
  return {
    ...base,
    open: async (signal = deadline) => {
      let url: URL | undefined;
      try {
        url = checkUrl(source.url, policy);
      } catch {
        url = undefined;
      }
      if (url === undefined || !mayReceiveToken(url, policy)) {
        throw new AttachmentError(`**${name}** skipped: its link does not point to Teams, so I did not download it. Please paste the image again.`);
      }
      const again = 'Teams refused the image download; please paste it again.';
      return download(
        { ...base, url: source.url },
        { policy, limits, signal, from: 'Teams', authorization: access.authorization, sendTokenTo: (hop) => mayReceiveToken(hop, policy), refused: again, gone: again },
      );
    },
  };
}

/** `Authorization` header value from a connector's credentials (the same token the SDK sends with). */
export async function authorizationFrom(signer: RequestSigner | undefined): Promise<string | undefined> {
  if (signer === undefined) return undefined;
  let value: string | undefined;
  await signer.signRequest({
    headers: {
      set(header: string, v: string) {
        if (header.toLowerCase() === 'authorization') value = v;
      },
    },
  });
  return value;
}
