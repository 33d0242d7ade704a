import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UPLOAD_RANGE_UNIT, UploadError, uploadToSession } from '../../../adapters/teams/files/upload.js';
import { streamOf } from '../../support/outputs.js';
import { type FakeTeams, startFakeTeams } from '../../fakes/teams.js';

/** OneDrive upload sessions (the `uploadUrl` of an accepted file consent), against the strict fake. */

let fake: FakeTeams;
beforeAll(async () => {
  fake = await startFakeTeams();
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

/** `size` bytes that differ from range to range, so a misplaced range shows. */
const bytes = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + (i >> 10)) % 256));

describe('uploadToSession', () => {
  it('uploads a small file in one PUT covering every byte', async () => {
    const data = bytes(1000);
    await uploadToSession(fake.oneDrive.session('small.bin').uploadUrl, streamOf(data));
    expect(fake.oneDrive.puts.map((p) => [p.contentRange, p.contentLength, p.status])).toEqual([['bytes 0-999/1000', '1000', 201]]);
    expect(fake.oneDrive.uploaded('small.bin')?.equals(data)).toBe(true);
  });

  it('splits a large file into ranges that are multiples of 320 KiB, in order', async () => {
    const data = bytes(3 * UPLOAD_RANGE_UNIT + 12_345);
    await uploadToSession(fake.oneDrive.session('large.bin').uploadUrl, streamOf(data), { rangeBytes: UPLOAD_RANGE_UNIT });
    const u = UPLOAD_RANGE_UNIT;
    const total = data.length;
    expect(fake.oneDrive.puts.map((p) => [p.contentRange, p.status])).toEqual([
      [`bytes 0-${u - 1}/${total}`, 202],
      [`bytes ${u}-${2 * u - 1}/${total}`, 202],
      [`bytes ${2 * u}-${3 * u - 1}/${total}`, 202],
      [`bytes ${3 * u}-${total - 1}/${total}`, 201],
    ]);
    expect(fake.oneDrive.puts.every((p) => p.authorization === undefined)).toBe(true);
    expect(fake.oneDrive.uploaded('large.bin')?.equals(data)).toBe(true);
  });

  it('retries a range after a transient 503, and gives up on a 507 with its status', async () => {
    const data = bytes(2 * UPLOAD_RANGE_UNIT + 1);
    fake.oneDrive.failNextPuts(1, 503);
    await uploadToSession(fake.oneDrive.session('flaky.bin').uploadUrl, streamOf(data), { rangeBytes: UPLOAD_RANGE_UNIT, retryBaseMs: 1 });
    expect(fake.oneDrive.puts.map((p) => p.status)).toEqual([503, 202, 202, 201]);
    expect(fake.oneDrive.uploaded('flaky.bin')?.equals(data)).toBe(true);

    fake.oneDrive.failNextPuts(1, 507);
    const failed = uploadToSession(fake.oneDrive.session('full.bin').uploadUrl, streamOf(data), { rangeBytes: UPLOAD_RANGE_UNIT, retryBaseMs: 1 });
    await expect(failed).rejects.toBeInstanceOf(UploadError);
    await expect(failed).rejects.toMatchObject({ status: 507 });
  });

  it('fails on an unknown session and when OneDrive cannot be reached', async () => {
    await expect(uploadToSession(`${fake.url}/onedrive/up/gone`, streamOf(bytes(10)))).rejects.toMatchObject({ status: 404 });
    await expect(uploadToSession('http://127.0.0.1:9/up', streamOf(bytes(10)), { attempts: 2, retryBaseMs: 1 })).rejects.toMatchObject({ status: undefined });
  });

  it('refuses range sizes that are not multiples of 320 KiB, and empty files', async () => {
    const url = fake.oneDrive.session('x.bin').uploadUrl;
    await expect(uploadToSession(url, streamOf(bytes(10)), { rangeBytes: 300 * 1024 })).rejects.toBeInstanceOf(RangeError);
    await expect(uploadToSession(url, streamOf(Buffer.alloc(0)))).rejects.toBeInstanceOf(UploadError);
    expect(fake.oneDrive.puts).toEqual([]);
  });
});
