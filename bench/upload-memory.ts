/**
 * Memory and speed of handing a large attachment to OpenAI: Crunch's streaming upload (one 8 MB part in
 * memory at a time, Uploads API) against the baseline the SDK's `files.create` implies (the whole file
 * in memory). Both talk over HTTP to the fake OpenAI in another process. Prints numbers and ratios.
 *
 *   npm run bench            # 256 MB
 *   BENCH_MB=1024 npm run bench
 */
import { fork } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import OpenAI, { toFile } from 'openai';
import { uploadFile } from '../src/engines/responses/uploads.js';

const sizeMb = Number(process.env.BENCH_MB ?? 256);
const size = sizeMb * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'month,region,revenue\n2026-01,North,10500\n');

function source(): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const n = Math.min(CHUNK.length, size - sent);
      sent += n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

async function measure(name: string, run: () => Promise<string>): Promise<{ name: string; peakMb: number; seconds: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage.rss();
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  return { name, peakMb: (peak - base) / 1024 / 1024, seconds };
}

const child = fork(fileURLToPath(new URL('./fake-openai-process.js', import.meta.url)), { stdio: 'inherit' });
const { url, apiKey } = await new Promise<{ url: string; apiKey: string }>((resolve) => child.once('message', resolve as never));
const client = new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0 });
const signal = new AbortController().signal;

const line = (r: { name: string; peakMb: number; seconds: number }) =>
  console.log(`  ${r.name.padEnd(48)} peak RSS +${r.peakMb.toFixed(0).padStart(5)} MB   ${(sizeMb / r.seconds).toFixed(0).padStart(5)} MB/s`);

try {
  console.log(`upload of a ${sizeMb} MB attachment to OpenAI (fake server in another process)`);
  const streaming = await measure('streaming (Uploads API, 8 MB parts)', () =>
    uploadFile(
      { client, retry: { maxAttempts: 1, baseDelayMs: 0 }, signal },
      { sourceId: 'bench', name: 'big.csv', mimeType: 'text/csv', sizeBytes: size, open: async () => source() },
    ),
  );
  line(streaming);
  const buffered = await measure('baseline: whole file in memory (files.create)', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of source()) chunks.push(chunk as Buffer);
    const file = await client.files.create({ file: await toFile(Buffer.concat(chunks), 'big.csv'), purpose: 'assistants' });
    return file.id;
  });
  line(buffered);
  console.log(`  memory ratio baseline/streaming: ${(buffered.peakMb / Math.max(1, streaming.peakMb)).toFixed(1)}x`);
  console.log(`  speed ratio streaming/baseline:  ${(buffered.seconds / streaming.seconds).toFixed(2)}x`);
} finally {
  child.disconnect();
}
