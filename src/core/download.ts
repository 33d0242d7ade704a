import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AttachmentError } from './errors.js';
import { formatDuration } from './files.js';

export interface DownloadBodyOptions {
  /** The file's name, as the user sees it in the message. */
  name: string;
  /** Who sends the file, as the user knows it ("Slack", "Teams", "SharePoint"). */
  from: string;
  /** How long a started download may go without data, while more is awaited, before it fails. */
  idleMs: number;
  /** Closes the connection (and anything tied to it); called once the stream ends, fails or is destroyed. */
  close: () => void;
}

/**
 * A download's body as a Node stream that fails with an AttachmentError, rather than hangs or ends short, when the
 * sender stops: each read waits at most `idleMs` for data (only while the consumer asks for more, so a slow consumer
 * is not blamed on the sender), and a connection that drops midway fails it too. Destroying the stream closes the
 * connection. Shared by every adapter that downloads the files people attach.
 */
export function downloadBody(body: WebReadableStream<Uint8Array>, options: DownloadBodyOptions): Readable {
  const { name, from, idleMs, close } = options;
  const reader = body.getReader();
  let idle: NodeJS.Timeout | undefined;
  const stream = new Readable({
    read() {
      idle = setTimeout(
        () =>
          stream.destroy(
            new AttachmentError(`**${name}** skipped: ${from} stopped sending it midway (nothing for ${formatDuration(idleMs)}). Please send it again.`),
          ),
        idleMs,
      );
      reader.read().then(
        ({ done, value }) => {
          clearTimeout(idle);
          if (stream.destroyed) return;
          stream.push(done ? null : Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        },
        (err: unknown) => {
          clearTimeout(idle);
          stream.destroy(new AttachmentError(`**${name}** skipped: the connection to ${from} dropped during the download. Please send it again.`, { cause: err }));
        },
      );
    },
    destroy(err, callback) {
      clearTimeout(idle);
      reader.cancel(err ?? undefined).catch(() => undefined);
      close();
      callback(err);
    },
  });
  return stream;
}
