import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AttachmentError, type Attachment } from '../../src/core/index.js';
import type { RequestSigner } from './auth.js';
import type { FileDownloadInfo } from './types.js';
import { checkUrl, fetchChecked, mayReceiveToken, UnsafeUrlError, type UrlPolicy } from './urls.js';

/**
 * Turns Teams attachments into core Attachments whose `open()` streams the download: nothing is buffered,
 * and nothing is fetched until the core has screened the name, type and size.
 */

/** Gives the `Authorization` header value the bot's own token makes, or undefined when auth is off. */
export type BotAuthorization = () => Promise<string | undefined>;

/**
 * A file from personal chat: `downloadUrl` is pre-authenticated and short-lived (a few minutes). It comes
 * from the activity, so it is fetched only if `policy` allows it (https, no private addresses), never with a token.
 */
export function fileDownloadAttachment(name: string, info: FileDownloadInfo, mimeType: string | undefined, policy: UrlPolicy): Attachment {
  return {
    sourceId: `teams:file:${info.uniqueId ?? name}`,
    name,
    ...(mimeType !== undefined ? { mimeType } : {}),
    open: () => {
      if (info.downloadUrl === undefined) throw new AttachmentError(`**${name}** skipped: Teams sent no download link for it.`);
      return download(info.downloadUrl, name, { policy }, 'the download link expired; please send the file again.');
    },
  };
}

/**
 * An image pasted into the message: its `contentUrl` lives on the Bot Framework connector and needs the
 * bot's bearer token, which `authorization` provides while the turn runs. The token goes only to Teams hosts
 * or the activity's serviceUrl (see urls.ts); an image anywhere else is refused, not fetched.
 */
export function inlineImageAttachment(
  index: number,
  contentType: string,
  contentUrl: string,
  authorization: BotAuthorization,
  policy: UrlPolicy,
): Attachment {
  const subtype = contentType.split('/')[1]?.toLowerCase() ?? '*';
  // Teams often declares pasted images as "image/*"; screenshots are PNG, so that is the best guess.
  const ext = subtype === 'jpeg' || subtype === 'jpg' ? 'jpg' : subtype === 'gif' ? 'gif' : 'png';
  const name = `pasted-image-${index + 1}.${ext}`;
  return {
    sourceId: `teams:image:${contentUrl}`,
    name,
    ...(subtype !== '*' ? { mimeType: contentType } : {}),
    open: async () => {
      let url: URL | undefined;
      try {
        url = checkUrl(contentUrl, policy);
      } catch {
        url = undefined;
      }
      if (url === undefined || !mayReceiveToken(url, policy)) {
        throw new AttachmentError(`**${name}** skipped: its link does not point to Teams, so I did not download it. Please paste the image again.`);
      }
      const sendTokenTo = (hop: URL) => mayReceiveToken(hop, policy);
      return download(contentUrl, name, { policy, authorization: await authorization(), sendTokenTo }, 'Teams refused the image download; please paste it again.');
    },
  };
}

export interface DownloadOptions {
  policy: UrlPolicy;
  /** Bearer sent only to hops `sendTokenTo` accepts. */
  authorization?: string | undefined;
  sendTokenTo?: (url: URL) => boolean;
}

/** Downloads `url` as a stream (checked against the policy, hop by hop), turning refusals into friendly attachment errors. */
export async function download(url: string, name: string, options: DownloadOptions, expiredHint: string): Promise<Readable> {
  let response: Response;
  try {
    response = await fetchChecked(url, options);
  } catch (err) {
    if (err instanceof UnsafeUrlError) {
      throw new AttachmentError(`**${name}** skipped: its download link is not one I may follow (${err.message}).`, { cause: err });
    }
    throw new AttachmentError(`**${name}** skipped: I could not reach Teams to download it. Please try again.`, { cause: err });
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel().catch(() => {});
    const why =
      response.status === 401 || response.status === 403 || response.status === 404 || response.status === 410
        ? expiredHint
        : `the download failed (HTTP ${response.status}); please try again.`;
    throw new AttachmentError(`**${name}** skipped: ${why}`);
  }
  return Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>);
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
