import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AttachmentError, type Attachment, type FileRef } from '../../../src/core/index.js';
import type { RequestSigner } from '../auth/auth.js';
import type { TeamsFileSource } from '../types.js';
import { checkUrl, fetchChecked, mayReceiveToken, UnsafeUrlError, type UrlPolicy } from '../auth/urls.js';

/**
 * Turns a Teams turn's files into core Attachments whose `open()` streams the download: nothing is buffered,
 * and nothing is fetched until the core has screened the name, type and size.
 */

/** Gives the `Authorization` header value the bot's own token makes, or undefined when auth is off. */
export type BotAuthorization = () => Promise<string | undefined>;

/**
 * A file of the turn as an Attachment whose `open()` streams the download. A file from personal chat has a
 * pre-authenticated, short-lived `downloadUrl` (a few minutes), fetched only if `policy` allows it (https, no
 * private addresses), never with a token. A pasted image's `contentUrl` lives on the Bot Framework connector
 * and needs the bot's bearer token, which goes only to Teams hosts or the activity's serviceUrl (see
 * urls.ts); an image anywhere else is refused, not fetched. Every download ends with the turn's deadline.
 */
export function teamsAttachment(ref: FileRef, authorization: BotAuthorization, policy: UrlPolicy, deadline: AbortSignal): Attachment {
  const source = ref.source as unknown as TeamsFileSource;
  const { name } = ref;
  const base = { sourceId: ref.sourceId, name, ...(ref.mimeType !== undefined ? { mimeType: ref.mimeType } : {}) };
  if (source.kind === 'download') {
    return {
      ...base,
      open: async (signal = deadline) => {
        if (source.url === undefined) throw new AttachmentError(`**${name}** skipped: Teams sent no download link for it.`);
        return download(source.url, name, { policy, signal }, 'the download link expired; please send the file again.');
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
      const sendTokenTo = (hop: URL) => mayReceiveToken(hop, policy);
      return download(source.url, name, { policy, authorization: await authorization(), sendTokenTo, signal }, 'Teams refused the image download; please paste it again.');
    },
  };
}

export interface DownloadOptions {
  policy: UrlPolicy;
  /** Ends the download (the turn's deadline). */
  signal?: AbortSignal;
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
    if (options.signal?.aborted) throw options.signal.reason;
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
