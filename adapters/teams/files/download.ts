import type { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AttachmentError, downloadBody, formatDuration, raceAbort } from '../../../src/core/index.js';
import { fetchChecked, UnsafeUrlError, type UrlPolicy } from '../auth/urls.js';

/**
 * One download of a file someone sent (a personal-chat file, a pasted image, a channel file through Graph),
 * streamed, never buffered, and never left hanging: it fails with an AttachmentError naming the file, so the
 * turn answers with the other files, when it does not start in time, when it stalls midway, when access is
 * refused (a sign-in page counts), or when the turn's deadline passes. Every way out closes the connection.
 */

export interface DownloadLimits {
  /** How long a download may take to start: the token, every redirect, the response headers. */
  startMs: number;
  /** How long a started download may go without data, while more is awaited, before it fails. */
  idleMs: number;
}

export interface DownloadOptions {
  policy: UrlPolicy;
  limits: DownloadLimits;
  /** The turn's deadline: ends the download wherever it is. */
  signal: AbortSignal;
  /** Who sends the file, as the user knows it ("Teams", "SharePoint"). */
  from: string;
  /** The `Authorization` header value, fetched when the download starts; sent only to hops `sendTokenTo` accepts. */
  authorization?: () => Promise<string | undefined>;
  sendTokenTo?: (url: URL) => boolean;
  /** Redirects the source makes on its own (Graph sends /content on to a download URL); more lead to a sign-in page. */
  redirects?: number;
  /** Why access was refused and what to do (401, 403, or a sign-in page instead of the file). */
  refused: string;
  /** Why the file is gone and what to do (404, 410). */
  gone: string;
}

export interface DownloadTarget {
  url: string;
  name: string;
  mimeType?: string;
}

/** Downloads `file` as a stream (checked against the policy, hop by hop), turning every failure into a friendly AttachmentError. */
export async function download(file: DownloadTarget, options: DownloadOptions): Promise<Readable> {
  const { name } = file;
  const { from, limits, signal } = options;
  signal.throwIfAborted();
  // Aborted when the turn's deadline passes, when the download is too slow to start, or when the stream closes.
  const controller = new AbortController();
  const onDeadline = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onDeadline, { once: true });
  const close = () => {
    signal.removeEventListener('abort', onDeadline);
    controller.abort();
  };
  let tooSlow = false;
  const timer = setTimeout(() => {
    tooSlow = true;
    controller.abort();
  }, limits.startMs);
  let response: Response;
  let redirects = 0;
  try {
    const authorization = options.authorization === undefined ? undefined : await raceAbort(options.authorization(), controller.signal);
    response = await fetchChecked(file.url, {
      policy: options.policy,
      authorization,
      ...(options.sendTokenTo !== undefined ? { sendTokenTo: options.sendTokenTo } : {}),
      onRedirect: () => void redirects++,
      signal: controller.signal,
    });
  } catch (err) {
    close();
    if (signal.aborted) throw signal.reason;
    if (err instanceof UnsafeUrlError) throw new AttachmentError(`**${name}** skipped: its download link is not one I may follow (${err.message}).`, { cause: err });
    const why = tooSlow ? `${from} did not start sending it within ${formatDuration(limits.startMs)}` : `I could not reach ${from} to download it`;
    throw new AttachmentError(`**${name}** skipped: ${why}. Please send it again in a moment.`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  const type = (response.headers.get('content-type') ?? '').toLowerCase();
  const htmlExpected = /\.html?$/i.test(name) || (file.mimeType ?? '').toLowerCase().startsWith('text/html');
  const signInPage = response.ok && type.startsWith('text/html') && (!htmlExpected || redirects > (options.redirects ?? 0));
  const problem =
    signInPage || response.status === 401 || response.status === 403
      ? options.refused
      : response.status === 404 || response.status === 410
        ? options.gone
        : !response.ok || response.body === null
          ? `${from} could not deliver it (HTTP ${response.status}). Please send it again in a moment.`
          : undefined;
  if (problem !== undefined) {
    await response.body?.cancel().catch(() => {});
    close();
    throw new AttachmentError(`**${name}** skipped: ${problem}`);
  }
  return downloadBody(response.body as unknown as WebReadableStream<Uint8Array>, { name, from, idleMs: limits.idleMs, close });
}
