/**
 * Memory of posting a large generated file: files of BENCH_OUTPUT_MB sizes the engine made, streamed to Slack
 * (external upload flow) and, for Teams, kept behind a signed link (256 KiB chunks in the SQLite store) and
 * downloaded eight times at once. Against the baseline of the previous releases: the whole file in memory,
 * as a Buffer and as the base64 string the store kept. The fake Slack runs in another process. Two sizes show
 * whether the overhead is fixed or grows with the file.
 *
 *   node --expose-gc dist/bench/output-memory.js          # 60 and 240 MB (npm run bench runs it)
 */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebClient } from '@slack/web-api';
import { pino } from 'pino';
import { createFileHost } from '../adapters/teams/files/signed-urls.js';
import { uploadAll } from '../adapters/slack/render/uploads.js';
import { type DeliveryLedger, openStorage, type ReplyOutput } from '../src/core/index.js';
import { startServer } from '../src/server/index.js';

const sizesMb = (process.env.BENCH_OUTPUT_MB ?? '60,240').split(',').map(Number);
const PIECE = Buffer.alloc(64 * 1024, 'month,region,revenue\n2026-01,North,10500\n');

/** The engine's output: generated as it is read, never whole. */
const outputOf = (size: number): ReplyOutput => ({
  name: 'big.csv',
  title: 'big.csv',
  mimeType: 'text/csv',
  sizeBytes: size,
  open: async () => {
    let sent = 0;
    return new Readable({
      read() {
        if (sent >= size) return void this.push(null);
        const n = Math.min(PIECE.length, size - sent);
        sent += n;
        this.push(n === PIECE.length ? PIECE : PIECE.subarray(0, n));
      },
    });
  },
});

async function peakOf(run: () => Promise<unknown>): Promise<number> {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage.rss();
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  await run();
  clearInterval(sampler);
  return (Math.max(peak, process.memoryUsage.rss()) - base) / 1024 / 1024;
}

const fakes = fork(fileURLToPath(new URL('./fakes-process.js', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const { slack } = await new Promise<{ slack: { apiUrl: string; botToken: string } }>((resolve) => fakes.once('message', resolve as never));
const dir = await mkdtemp(join(tmpdir(), 'crunch-output-bench-'));
const logger = pino({ level: 'silent' });
const rows: [string, number, number][] = [];
try {
  for (const sizeMb of sizesMb) {
    const output = outputOf(sizeMb * 1024 * 1024);
    const row = (name: string, mb: number) => rows.push([name, sizeMb, mb]);
    const client = new WebClient(slack.botToken, { slackApiUrl: slack.apiUrl });
    const ledger: DeliveryLedger = { memo: {}, remember: async () => undefined, posted: () => false, markPosted: async () => undefined };
    const upload = { part: 'f', label: 'big.csv', filename: 'big.csv', title: 'big.csv', content: output };
    row(
      'Slack: stream the output into the upload',
      await peakOf(async () => {
        const failed = await uploadAll([upload], { client, channel: 'D1', threadTs: '1.1', signal: AbortSignal.timeout(300_000), ledger, log: logger });
        if (failed.length > 0) throw new Error('upload failed');
      }),
    );

    const storage = await openStorage(`sqlite://${join(dir, `files-${sizeMb}.sqlite`)}`, { dedupeMs: 1000, joinedMs: 1000 });
    const files = createFileHost({ store: storage.store, publicUrl: 'http://127.0.0.1', secret: 's', ttlMs: 3_600_000, now: Date.now, logger });
    const server = await startServer({ port: 0, host: '127.0.0.1', routes: [files.route], logger });
    let url = '';
    row('Teams: keep it behind a signed link (256 KiB chunks)', await peakOf(async () => (url = (await files.put(output)).url)));
    row(
      'Teams: 8 downloads of the link at once',
      await peakOf(() =>
        Promise.all(
          Array.from({ length: 8 }, async () => {
            const response = await fetch(url.replace('http://127.0.0.1', server.url));
            for await (const _chunk of response.body!) void _chunk;
          }),
        ),
      ),
    );
    await server.close();
    await storage.close();

    row(
      'baseline: the whole file in memory, and as base64',
      await peakOf(async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of await output.open()) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks).toString('base64').length;
      }),
    );
  }
} finally {
  fakes.disconnect();
  await rm(dir, { recursive: true, force: true });
}

console.log('\nPosting a large generated file: peak RSS added (what the garbage collector has not yet returned included)\n');
console.log('| path | file | peak RSS added | per MB of file |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, sizeMb, mb] of rows) console.log(`| ${name} | ${sizeMb} MB | ${mb.toFixed(0)} MB | ${(mb / sizeMb).toFixed(2)} |`);
