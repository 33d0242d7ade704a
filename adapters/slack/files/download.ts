import type { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AttachmentError, downloadBody, formatDuration } from '../../../src/core/index.js';
import type { SlackFile } from '../types.js';

/** Downloads of the files people attach, with the bot token, which only ever goes to Slack's own hosts. */
export interface FileAccess {
  botToken: string;
  /** files.info, for files Slack only describes on request (Slack Connect: file_access "check_file_info"). */
  fileInfo(id: string, signal: AbortSignal): Promise<SlackFile>;
  /** How long to wait for Slack to start sending a file (its response headers). */
  downloadTimeoutMs: number;
  /** How long a started download may go without data, while Crunch waits for more, before it fails. */
  downloadIdleTimeoutMs: number;
  /** SLACK_API_URL when configured: its origin (GovSlack, a proxy, a fake in tests) may receive the token too. */
  apiUrl?: string | undefined;
}

/** Slack's own hosts: commercial Slack (slack.com, files.slack.com, *.slack-edge.com) and GovSlack (slack-gov.com). */
const SLACK_DOMAINS = ['slack.com', 'slack-gov.com'];
const SLACK_SUBDOMAIN_ONLY = ['slack-edge.com'];
const MAX_REDIRECTS = 5;

/**
 * Whether the bot token may be sent to `url`: https on Slack's own hosts (default port, no credentials in the URL),
 * or the exact origin of SLACK_API_URL. Everything else, including a look-alike such as files.slack.com.evil.example,
 * gets no token. Pure.
 */
export function mayCarryToken(url: string, apiUrl?: string): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (target.username !== '' || target.password !== '') return false;
  if (apiUrl !== undefined && apiUrl !== '') {
    try {
      if (target.origin === new URL(apiUrl).origin) return true;
    } catch {
      // An unparsable SLACK_API_URL adds no host.
    }
  }
  if (target.protocol !== 'https:' || target.port !== '') return false;
  const host = target.hostname;
  return (
    SLACK_DOMAINS.some((domain) => host === domain || host.endsWith(`.${domain}`)) ||
    SLACK_SUBDOMAIN_ONLY.some((domain) => host.endsWith(`.${domain}`))
  );
}

export function fileLabel(file: SlackFile): string {
  return file.name ?? file.title ?? 'A file';
}

export function downloadUrl(file: SlackFile): string | undefined {
  return file.url_private_download ?? file.url_private;
}

export function outsideSlack(url: string): string {
  return `its download link points outside Slack (${hostOf(url)}), and I send my Slack credentials to Slack only, so I did not open it. Download the file and attach it here again.`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host || 'an unknown host';
  } catch {
    return 'an invalid address';
  }
}

const MISSING_SCOPE =
  'Slack sent its sign-in page instead of the file, which means the Crunch app lacks the files:read permission. ' +
  'Ask a workspace admin to reinstall the app with the files:read scope (see docs/slack.md), then send the file again.';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Downloads a file with the bot token and returns the body as a Node stream, unbuffered. Slack answers a token
 * without files:read with its HTML sign-in page (status 200, often after a redirect) rather than an error.
 *
 * The token only ever goes to Slack (see `mayCarryToken`): redirects are followed by hand, each hop's host checked
 * before the request, and a hop that leaves Slack fails the download without being requested. The stream fails
 * with an `AttachmentError`, never just ends, when the connection drops midway or stays silent for
 * `downloadIdleTimeoutMs` while more is awaited.
 */
export async function openSlackFile(file: SlackFile, access: FileAccess, signal?: AbortSignal): Promise<Readable> {
  const name = fileLabel(file);
  let url = downloadUrl(file)!;
  // Closed when the turn's deadline passes, when Slack is too slow to start sending, or when the stream is destroyed.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), access.downloadTimeoutMs);
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let response: Response;
  let redirected = false;
  try {
    for (let hop = 0; ; hop++) {
      if (!mayCarryToken(url, access.apiUrl)) throw new AttachmentError(`**${name}** skipped: ${outsideSlack(url)}`);
      const answer = await fetch(url, { headers: { authorization: `Bearer ${access.botToken}` }, signal: controller.signal, redirect: 'manual' });
      const location = answer.headers.get('location');
      if (!REDIRECT_STATUSES.has(answer.status) || location === null) {
        response = answer;
        break;
      }
      await answer.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new AttachmentError(`Slack sent **${name}** through too many redirects. Please send it again in a moment.`);
      url = new URL(location, url).href;
      redirected = true;
    }
  } catch (err) {
    signal?.removeEventListener('abort', onAbort);
    if (err instanceof AttachmentError) throw err;
    if (signal?.aborted) throw signal.reason;
    const why = controller.signal.aborted ? `Slack did not start sending it within ${formatDuration(access.downloadTimeoutMs)}` : 'the connection failed';
    throw new AttachmentError(`I could not download **${name}** from Slack (${why}). Please try again in a moment.`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  const type = (response.headers.get('content-type') ?? '').toLowerCase();
  const htmlExpected = (file.mimetype ?? '').startsWith('text/html') || file.filetype === 'html';
  const signInPage = response.ok && type.startsWith('text/html') && (!htmlExpected || redirected);
  if (signInPage || response.status === 401) {
    await response.body?.cancel();
    throw new AttachmentError(`I could not download **${name}**: ${MISSING_SCOPE}`);
  }
  if (response.status === 403) {
    await response.body?.cancel();
    throw new AttachmentError(
      `Slack refused the download of **${name}** (HTTP 403). If the app was installed without it, reinstall the app with the files:read scope; if the file comes from another organisation, download it and attach it here again.`,
    );
  }
  if (response.status === 404 || response.status === 410) {
    await response.body?.cancel();
    throw new AttachmentError(`**${name}** is no longer available in Slack (it may have been deleted).`);
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new AttachmentError(`Slack could not deliver **${name}** (HTTP ${response.status}). Please send it again in a moment.`);
  }
  return downloadBody(response.body as WebReadableStream<Uint8Array>, {
    name,
    from: 'Slack',
    idleMs: access.downloadIdleTimeoutMs,
    close: () => {
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
    },
  });
}
