import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AttachmentError, type Attachment } from '../../src/core/index.js';
import type { RequestSigner } from './auth.js';
import type { FileDownloadInfo } from './types.js';

/**
 * Turns Teams attachments into core Attachments whose `open()` streams the download: nothing is buffered,
 * and nothing is fetched until the core has screened the name, type and size.
 */

/** Gives the `Authorization` header value the bot's own token makes, or undefined when auth is off. */
export type BotAuthorization = () => Promise<string | undefined>;

/** A file from personal chat: `downloadUrl` is pre-authenticated and short-lived (a few minutes). */
export function fileDownloadAttachment(name: string, info: FileDownloadInfo, mimeType: string | undefined): Attachment {
  return {
    sourceId: `teams:file:${info.uniqueId ?? name}`,
    name,
    ...(mimeType !== undefined ? { mimeType } : {}),
    open: () => {
      if (info.downloadUrl === undefined) throw new AttachmentError(`**${name}** skipped: Teams sent no download link for it.`);
      return download(info.downloadUrl, name, undefined, 'the download link expired; please send the file again.');
    },
  };
}

/**
 * An image pasted into the message: its `contentUrl` lives on the Bot Framework connector and needs the
 * bot's bearer token, which `authorization` provides while the turn runs.
 */
export function inlineImageAttachment(
  index: number,
  contentType: string,
  contentUrl: string,
  authorization: BotAuthorization,
): Attachment {
  const subtype = contentType.split('/')[1]?.toLowerCase() ?? '*';
  // Teams often declares pasted images as "image/*"; screenshots are PNG, so that is the best guess.
  const ext = subtype === 'jpeg' || subtype === 'jpg' ? 'jpg' : subtype === 'gif' ? 'gif' : 'png';
  const name = `pasted-image-${index + 1}.${ext}`;
  return {
    sourceId: `teams:image:${contentUrl}`,
    name,
    ...(subtype !== '*' ? { mimeType: contentType } : {}),
    open: async () => download(contentUrl, name, await authorization(), 'Teams refused the image download; please paste it again.'),
  };
}

/** Downloads `url` as a stream, turning refusals into friendly attachment errors. */
export async function download(url: string, name: string, authorization: string | undefined, expiredHint: string): Promise<Readable> {
  let response: Response;
  try {
    response = await fetch(url, { headers: authorization !== undefined ? { authorization } : {}, redirect: 'follow' });
  } catch (err) {
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
