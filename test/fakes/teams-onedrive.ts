import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './http.js';

/**
 * The OneDrive side of Teams' file consent flow, mounted on the fake Teams server: upload sessions whose
 * `uploadUrl` Teams would put in a `fileConsent/invoke`. It is as strict as Microsoft Graph documents the
 * protocol (driveitem-createuploadsession, "Upload bytes to the upload session"):
 *  - PUT only, with no Authorization header (the URL is pre-authenticated; a bearer token gets 401);
 *  - `Content-Range: bytes <start>-<end>/<total>`, ranges in order, the total the same every time,
 *    `Content-Length` equal to the range and the body; ranges under 60 MiB and, all but the last, a
 *    multiple of 320 KiB;
 *  - `202 Accepted` + `nextExpectedRanges` until the last byte, then `201 Created` with the driveItem.
 * Failures can be injected, and uploads held (to prove the invoke is answered before the upload).
 */

export const RANGE_UNIT = 320 * 1024;
const MAX_RANGE_BYTES = 60 * 1024 * 1024;

export interface RecordedUploadPut {
  sessionId: string;
  contentRange: string | undefined;
  contentLength: string | undefined;
  authorization: string | undefined;
  bytes: number;
  status: number;
}

/** What Teams sends as `value.uploadInfo` (botframework-schema FileUploadInfo, plus etag as in the docs). */
export interface UploadInfo {
  contentUrl: string;
  name: string;
  uploadUrl: string;
  uniqueId: string;
  fileType: string;
  etag: string;
}

interface Session {
  info: UploadInfo;
  total: number | undefined;
  received: Buffer[];
  receivedBytes: number;
  complete: boolean;
}

export interface FakeOneDrive {
  /** Every PUT to an upload URL, in arrival order (refused ones included). */
  puts: RecordedUploadPut[];
  /** Opens an upload session for `name`, as Teams does when the user accepts a consent card. */
  session(name: string): UploadInfo;
  /** The bytes of a completed upload (by file name), or undefined. */
  uploaded(name: string): Buffer | undefined;
  /** The next `count` PUTs fail with `status` (e.g. 507 quota, 503 transient). */
  failNextPuts(count: number, status: number): void;
  /** Holds every PUT until the returned function is called. */
  hold(): () => void;
  /** Handles /onedrive/* requests; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, body: Buffer, path: string): Promise<boolean>;
  reset(): void;
}

export function createFakeOneDrive(baseUrl: () => string): FakeOneDrive {
  const sessions = new Map<string, Session>();
  const pendingFailures: number[] = [];
  let gate: Promise<void> | undefined;

  const drive: FakeOneDrive = {
    puts: [],
    session(name) {
      const id = randomUUID();
      const uniqueId = randomUUID().toUpperCase();
      const info: UploadInfo = {
        contentUrl: `https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents/Applications/Crunch/${encodeURIComponent(name)}`,
        name,
        uploadUrl: `${baseUrl()}/onedrive/up/${id}`,
        uniqueId,
        fileType: name.split('.').pop() ?? '',
        etag: `"{${uniqueId}},1"`,
      };
      sessions.set(id, { info, total: undefined, received: [], receivedBytes: 0, complete: false });
      return info;
    },
    uploaded(name) {
      const session = [...sessions.values()].find((s) => s.complete && s.info.name === name);
      return session ? Buffer.concat(session.received) : undefined;
    },
    failNextPuts(count, status) {
      for (let i = 0; i < count; i++) pendingFailures.push(status);
    },
    hold() {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    async handle(req, res, body, path) {
      const match = /^\/onedrive\/up\/([^/]+)$/.exec(path);
      if (!match) return false;
      if (gate) await gate;
      const sessionId = match[1]!;
      const put: RecordedUploadPut = {
        sessionId,
        contentRange: req.headers['content-range'],
        contentLength: req.headers['content-length'],
        authorization: req.headers.authorization,
        bytes: body.length,
        status: 0,
      };
      drive.puts.push(put);
      const answer = (status: number, json: unknown) => {
        put.status = status;
        sendJson(res, status, json);
        return true;
      };
      const session = sessions.get(sessionId);
      if (req.method !== 'PUT') return answer(405, { error: { code: 'invalidRequest', message: 'PUT byte ranges only' } });
      if (!session || session.complete) return answer(404, { error: { code: 'itemNotFound', message: 'upload session not found' } });
      if (put.authorization !== undefined) return answer(401, { error: { code: 'unauthenticated', message: 'do not send Authorization to an upload URL' } });
      const failure = pendingFailures.shift();
      if (failure !== undefined) return answer(failure, { error: { code: failure === 507 ? 'quotaLimitReached' : 'serviceNotAvailable', message: 'injected failure' } });
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(put.contentRange ?? '');
      if (!range) return answer(400, { error: { code: 'invalidRange', message: `bad Content-Range: ${put.contentRange}` } });
      const [start, end, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
      const problem =
        start !== session.receivedBytes ? `expected bytes from ${session.receivedBytes}, got ${start}`
        : session.total !== undefined && total !== session.total ? `total changed from ${session.total} to ${total}`
        : end - start + 1 !== body.length || Number(put.contentLength) !== body.length ? `range ${start}-${end}, Content-Length ${put.contentLength}, body ${body.length}`
        : end >= total ? `range ends past the total ${total}`
        : body.length > MAX_RANGE_BYTES ? 'range over 60 MiB'
        : end + 1 < total && body.length % RANGE_UNIT !== 0 ? `range of ${body.length} bytes is not a multiple of 320 KiB`
        : undefined;
      if (problem !== undefined) return answer(start !== session.receivedBytes ? 416 : 400, { error: { code: 'invalidRange', message: problem } });
      session.total = total;
      session.received.push(Buffer.from(body));
      session.receivedBytes += body.length;
      if (session.receivedBytes < total) {
        return answer(202, { expirationDateTime: new Date(Date.now() + 3_600_000).toISOString(), nextExpectedRanges: [`${session.receivedBytes}-`] });
      }
      session.complete = true;
      return answer(201, { id: session.info.uniqueId, name: session.info.name, size: total, file: {} });
    },
    reset() {
      drive.puts.length = 0;
      pendingFailures.length = 0;
      sessions.clear();
      gate = undefined;
    },
  };
  return drive;
}
