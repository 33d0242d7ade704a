import { Readable } from 'node:stream';
import type { WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import { type DeliveryLedger, readOutput, type ReplyOutput } from '../../../src/core/index.js';

/**
 * Charts, files and snippets into a thread with Slack's external upload flow, done by hand rather than
 * with files.uploadV2 so that one failed file cannot take the others down, every file shares a single
 * files.completeUploadExternal, and a file of known size streams from the engine to Slack without being
 * held in memory.
 */
export interface Upload {
  /** The ledger part: once completed, a resumed delivery does not upload it again. */
  part: string;
  label: string;
  filename: string;
  title: string;
  snippetType?: string;
  /** Text content (answer.md, code.py), or an engine output. */
  content: string | ReplyOutput;
}

export interface UploadTarget {
  client: WebClient;
  channel: string;
  threadTs: string;
  signal: AbortSignal;
  ledger: DeliveryLedger;
  log: Logger;
}

/** Uploads what the ledger says is not posted yet; returns the labels of the uploads that failed. */
export async function uploadAll(uploads: Upload[], target: UploadTarget): Promise<string[]> {
  const { client, log } = target;
  const failed: string[] = [];
  const done: { upload: Upload; id: string }[] = [];
  for (const upload of uploads.filter((u) => !target.ledger.posted(u.part))) {
    try {
      const { body, length } = await bodyOf(upload.content, target.signal);
      const url = await client.files.getUploadURLExternal({
        filename: upload.filename,
        length,
        ...(upload.snippetType !== undefined ? { snippet_type: upload.snippetType } : {}),
      });
      const sent = await fetch(url.upload_url!, { method: 'POST', body, duplex: 'half', signal: target.signal } as RequestInit);
      await sent.body?.cancel();
      if (!sent.ok) throw new Error(`upload answered ${sent.status}`);
      done.push({ upload, id: url.file_id! });
    } catch (err) {
      log.warn({ err, file: upload.label }, 'upload failed');
      failed.push(upload.label);
    }
  }
  if (done.length === 0) return failed;
  try {
    await client.files.completeUploadExternal({
      files: done.map((d) => ({ id: d.id, title: d.upload.title })) as [{ id: string; title: string }],
      channel_id: target.channel,
      thread_ts: target.threadTs,
    });
    for (const d of done) await target.ledger.markPosted(d.upload.part);
  } catch (err) {
    log.warn({ err }, 'completing the uploads failed');
    failed.push(...done.map((d) => d.upload.label));
  }
  return failed;
}

/** The upload body: streamed when its size is known up front (Slack asks for it first), read whole otherwise. */
async function bodyOf(content: string | ReplyOutput, signal: AbortSignal): Promise<{ body: RequestInit['body']; length: number }> {
  if (typeof content === 'string') {
    const bytes = Buffer.from(content, 'utf8');
    return { body: bytes, length: bytes.length };
  }
  if (content.sizeBytes !== undefined && content.sizeBytes > 0) {
    const stream = await content.open(signal);
    return { body: Readable.toWeb(stream) as unknown as RequestInit['body'], length: content.sizeBytes };
  }
  const bytes = await readOutput(content, MAX_UNSIZED_BYTES, signal);
  return { body: bytes, length: bytes.length };
}

/** An output whose size the engine did not say is read into memory to learn it; at most this much. */
const MAX_UNSIZED_BYTES = 64 * 1024 * 1024;
