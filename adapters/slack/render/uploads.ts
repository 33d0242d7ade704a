import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
      const status = await post(url.upload_url!, body, length, target.signal);
      if (status < 200 || status >= 300) throw new Error(`upload answered ${status}`);
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
async function bodyOf(content: string | ReplyOutput, signal: AbortSignal): Promise<{ body: Buffer | Readable; length: number }> {
  if (typeof content === 'string') {
    const bytes = Buffer.from(content, 'utf8');
    return { body: bytes, length: bytes.length };
  }
  if (content.sizeBytes !== undefined && content.sizeBytes > 0) return { body: await content.open(signal), length: content.sizeBytes };
  const bytes = await readOutput(content, MAX_UNSIZED_BYTES, signal);
  return { body: bytes, length: bytes.length };
}

/**
 * POSTs the bytes to Slack's upload URL with node:http(s), which reads a stream only as fast as the socket
 * takes it (fetch read a fast stream ahead without bound). Resolves with the status.
 */
async function post(url: string, body: Buffer | Readable, length: number, signal: AbortSignal): Promise<number> {
  const target = new URL(url);
  const { request } = await import(target.protocol === 'https:' ? 'node:https' : 'node:http');
  const req = request(target, { method: 'POST', headers: { 'content-length': String(length) }, signal });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  if (Buffer.isBuffer(body)) req.end(body);
  else await pipeline(body, req);
  const response = await answered;
  response.resume();
  return response.statusCode ?? 0;
}

/** An output whose size the engine did not say is read into memory to learn it; at most this much. */
const MAX_UNSIZED_BYTES = 64 * 1024 * 1024;
