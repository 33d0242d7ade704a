import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type Attachment, createCore, CrunchError, type Engine, Intake, openStorage, type Storage } from '../../src/core/index.js';
import { createFakeEngine, type FakeEngine } from '../fakes/engine.js';
import { memoryLogger } from '../support/logger.js';
import { createTestPlatform } from '../support/platform.js';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea73581e40000000049454e44ae426082', 'hex');

function attachment(name: string, data: Buffer | string, extra: Partial<Attachment> = {}): Attachment {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { sourceId: `src:${name}`, name, sizeBytes: bytes.length, open: async () => Readable.from([bytes]), ...extra };
}

/** The fake engine, answering "answer to <text>"; `holds` make runs wait, `failWith` makes them fail. */
function recordingEngine() {
  const holds = new Map<string, Promise<void>>();
  const control = { failWith: undefined as unknown };
  const engine = createFakeEngine((input) => ({
    statuses: ['running code…', 'running code…'],
    deltas: ['answer'],
    text: `answer to ${input.text}`,
    gate: holds.get(input.text),
    hang: input.text === 'wait for the deadline',
    fail: control.failWith,
  }));
  return { engine, holds, control };
}

interface Setup {
  engine: FakeEngine;
  storage: Storage;
  lines: () => Record<string, unknown>[];
}

async function setup(limits: Partial<{ maxFileBytes: number; maxFilesPerTurn: number; turnTimeoutMs: number }> = {}, engine?: Engine, storage?: Storage) {
  const recording = recordingEngine();
  const store = storage ?? (await openStorage('memory://', { dedupeMs: 60_000, joinedMs: 60_000 }));
  const { logger, lines } = memoryLogger();
  const core = createCore({
    store: store.store,
    inbox: store.inbox,
    engine: engine ?? recording.engine,
    logger,
    limits: { maxFileBytes: 1024 * 1024, maxFilesPerTurn: 3, turnTimeoutMs: 60_000, ...limits },
    concurrency: 4,
  });
  const platform = createTestPlatform();
  core.register(platform);
  core.start();
  return { ...recording, storage: store, core, platform, lines } satisfies Setup & Record<string, unknown>;
}

describe('the journey of a turn', () => {
  it('answers a turn and reports its progress, a repeated status once', async () => {
    const { core, platform } = await setup();
    const reply = await platform.ask(core, { thread: 't1', text: 'solve 3x + 11 = 14', messageKey: 'k1' });
    expect(reply).toMatchObject({ kind: 'answer', text: 'answer to solve 3x + 11 = 14' });
    expect(platform.progress.get('k1')).toEqual([
      { type: 'status', text: 'running code…' },
      { type: 'text', delta: 'answer' },
    ]);
  });

  it('answers a retried delivery once, and says it is a duplicate', async () => {
    const { core, platform, engine } = await setup();
    const turn = platform.turn({ thread: 't1', text: 'hello' });
    const results = await Promise.all([core.handle(turn), core.handle({ ...turn })]);
    expect(results.map((r) => r.status).sort()).toEqual(['accepted', 'duplicate']);
    await core.idle();
    expect(engine.calls).toHaveLength(1);
    expect(platform.delivered).toHaveLength(1);
  });

  it('keeps the session for follow-ups in the same conversation only', async () => {
    const { core, platform, engine } = await setup();
    await platform.ask(core, { thread: 't1', text: 'first' });
    await platform.ask(core, { thread: 't1', text: 'second' });
    await platform.ask(core, { thread: 't2', text: 'other' });
    expect(engine.calls.map((c) => c.session !== undefined)).toEqual([false, true, false]);
  });

  it('runs turns of one conversation in arrival order, delivering each before the next starts, and others in parallel', async () => {
    const { core, platform, engine, holds } = await setup();
    let release!: () => void;
    holds.set('a1', new Promise<void>((r) => (release = r)));
    const a1 = platform.ask(core, { thread: 'A', text: 'a1' });
    const a2 = platform.ask(core, { thread: 'A', text: 'a2' });
    await platform.ask(core, { thread: 'B', text: 'b1' }); // B finishes while A's first turn is still held
    expect(engine.events).toEqual(['start:a1', 'start:b1', 'end:b1']);
    release();
    await Promise.all([a1, a2]);
    expect(engine.events).toEqual(['start:a1', 'start:b1', 'end:b1', 'end:a1', 'start:a2', 'end:a2']);
    expect(platform.delivered.map((d) => d.reply.text)).toEqual(['answer to b1', 'answer to a1', 'answer to a2']);
  });

  it('answers help and reset without the engine, and reset forgets the session', async () => {
    const { core, platform, engine, storage } = await setup();
    const help = await platform.ask(core, { thread: 't1', text: 'help' });
    expect(help).toMatchObject({ kind: 'help' });
    expect(help.text).toContain('xlsx');
    await platform.ask(core, { thread: 't1', text: 'first' });
    expect(await storage.store.get('session:test:W:C:t1')).toBeDefined();
    expect(await platform.ask(core, { thread: 't1', text: 'reset' })).toMatchObject({ kind: 'reset' });
    expect(await storage.store.get('session:test:W:C:t1')).toBeUndefined();
    expect(engine.forgotten).toHaveLength(1);
    await platform.ask(core, { thread: 't1', text: 'again' });
    expect(engine.calls.map((c) => c.session !== undefined)).toEqual([false, false]);
  });

  it('asks for a question when the mention is empty', async () => {
    const { core, platform, engine } = await setup();
    expect((await platform.ask(core, { thread: 't1', text: '   ' })).text).toMatch(/What shall I work on/);
    expect(engine.calls).toHaveLength(0);
  });

  it('skips unsupported, oversized and surplus files with a line each, and still runs the rest', async () => {
    const { core, platform, engine } = await setup({ maxFileBytes: 100, maxFilesPerTurn: 2 });
    const reply = await platform.ask(core, {
      thread: 't1',
      text: 'analyse',
      attachments: [
        attachment('report.csv', 'a,b\n1,2\n'),
        attachment('movie.mp4', 'not really a movie'),
        attachment('huge.csv', 'x'.repeat(500)),
        attachment('notes.txt', 'hello'),
        attachment('third.json', '{}'),
      ],
    });
    expect(engine.calls[0]?.files.map((f) => f.name)).toEqual(['report.csv', 'notes.txt']);
    expect(reply.notices).toEqual([
      expect.stringMatching(/^\*\*movie\.mp4\*\* skipped: \.mp4 is not supported\. Supported types: c, cpp, css, csv, docx/),
      expect.stringMatching(/^\*\*huge\.csv\*\* skipped: it is 500 bytes, over the 100 bytes limit per file\./),
      expect.stringMatching(/^\*\*third\.json\*\* skipped: I take at most 2 files per message/),
    ]);
  });

  it('sniffs content: a damaged workbook or a renamed image is skipped with a reason', async () => {
    const { core, platform, engine } = await setup();
    const reply = await platform.ask(core, {
      thread: 't1',
      text: 'analyse',
      attachments: [attachment('sales.xlsx', 'plain text, not a workbook'), attachment('data.csv', PNG), attachment('chart.png', PNG, { mimeType: 'application/octet-stream' })],
    });
    expect(engine.calls[0]?.files).toEqual([{ name: 'chart.png', mimeType: 'image/png', bytes: PNG }]);
    expect(reply.notices).toEqual([
      '**sales.xlsx** skipped: it does not look like a valid Excel workbook (the file may be damaged or renamed).',
      '**data.csv** skipped: its content is a .png file, not CSV text as the .csv name says.',
    ]);
  });

  it('names a file by its MIME type when it has no extension, and enforces the size while streaming', async () => {
    const { core, platform, engine } = await setup({ maxFileBytes: 1000 });
    const reply = await platform.ask(core, {
      thread: 't1',
      text: 'look',
      attachments: [attachment('image', PNG, { mimeType: 'image/png' }), attachment('liar.csv', 'y'.repeat(5000), { sizeBytes: 10 })],
    });
    expect(engine.calls[0]?.files.map((f) => f.name)).toEqual(['image.png']);
    expect(reply.notices).toEqual(['**liar.csv** skipped: it is over the 1000 bytes limit per file.']);
  });

  it('cancels a turn that passes its deadline and says so', async () => {
    const { core, platform } = await setup({ turnTimeoutMs: 50 });
    const reply = await platform.ask(core, { thread: 't1', text: 'wait for the deadline' });
    expect(reply).toMatchObject({ kind: 'error', error: { code: 'deadline' } });
    expect(reply.text).toMatch(/took longer than 1 second, so I stopped it/);
  });

  it('turns an engine failure into a friendly reply and keeps serving', async () => {
    const { core, platform, control, lines } = await setup();
    control.failWith = new CrunchError('engine_quota', 'The AI service account has run out of quota.');
    expect(await platform.ask(core, { thread: 't1', text: 'anything' })).toMatchObject({ kind: 'error', text: 'The AI service account has run out of quota.', error: { code: 'engine_quota' } });
    control.failWith = new Error('boom');
    expect((await platform.ask(core, { thread: 't1', text: 'again' })).text).toMatch(/Something went wrong on my side/);
    expect(lines().some((l) => l.msg === 'turn failed' && l.code === 'internal')).toBe(true);
    control.failWith = undefined;
    expect((await platform.ask(core, { thread: 't1', text: 'third' })).kind).toBe('answer');
  });

  it('keeps the skipped-file lines when the engine then fails', async () => {
    const { core, platform, control } = await setup();
    control.failWith = new CrunchError('engine_unavailable', 'busy');
    const reply = await platform.ask(core, { thread: 't1', text: 'go', attachments: [attachment('clip.mov', 'x')] });
    expect(reply).toMatchObject({ kind: 'error', text: 'busy' });
    expect(reply.notices).toEqual([expect.stringMatching(/^\*\*clip\.mov\*\* skipped: \.mov is not supported/)]);
  });
});

describe('the journey when things go wrong around it', () => {
  it('says the store is unavailable, and records nothing, when the inbox cannot take the turn', async () => {
    const { core, platform, storage, lines } = await setup();
    storage.inbox.accept = async () => {
      throw new Error('redis down');
    };
    const handled = await core.handle(platform.turn({ thread: 'A', text: 'hello' }));
    expect(handled).toMatchObject({ status: 'unavailable', error: { code: 'store_unavailable' } });
    expect(lines().some((l) => l.msg === 'store unavailable: the message could not be recorded')).toBe(true);
  });

  it('skips a file whose download drops midway, with a line saying so, and answers with the rest', async () => {
    const { core, platform, engine } = await setup();
    const dropping: Attachment = {
      sourceId: 'drop',
      name: 'big.csv',
      open: async () =>
        new Readable({
          read() {
            this.push(Buffer.from('a,b\n1,2\n'));
            this.destroy(new Error('socket hang up'));
          },
        }),
    };
    const reply = await platform.ask(core, { thread: 't1', text: 'go', attachments: [dropping, attachment('ok.csv', 'x,y\n')] });
    expect(reply.kind).toBe('answer');
    expect(engine.calls[0]?.files.map((f) => f.name)).toEqual(['ok.csv']);
    expect(reply.notices).toEqual(['**big.csv** skipped: the download failed midway (socket hang up). Please share it again.']);
  });

  it('ends a turn whose download stalls at the deadline, closes the download, and keeps the conversation going', async () => {
    const { core, platform } = await setup({ turnTimeoutMs: 100 });
    let destroyed = false;
    let sent = false;
    const stalled: Attachment = {
      sourceId: 'stall',
      name: 'stuck.csv',
      open: async () =>
        new Readable({
          read() {
            if (!sent) this.push(Buffer.from('a,b\n')); // one chunk, then nothing, ever
            sent = true;
          },
          destroy(err, done) {
            destroyed = true;
            done(err);
          },
        }),
    };
    expect(await platform.ask(core, { thread: 't1', text: 'go', attachments: [stalled] })).toMatchObject({ kind: 'error', error: { code: 'deadline' } });
    expect(destroyed).toBe(true);
    expect((await platform.ask(core, { thread: 't1', text: 'next' })).kind).toBe('answer');
  });

  it('skips an empty file even when the platform did not say its size', async () => {
    const { core, platform, engine } = await setup();
    const reply = await platform.ask(core, { thread: 't1', text: 'go', attachments: [attachment('empty.txt', '', { sizeBytes: undefined })] });
    expect(engine.calls[0]?.files).toEqual([]);
    expect(reply.notices).toEqual(['**empty.txt** skipped: the file is empty.']);
  });

  it('still delivers the computed answer when the store fails to save the session, and logs it', async () => {
    const { core, platform, storage, lines } = await setup();
    const set = storage.store.set.bind(storage.store);
    storage.store.set = async (key, value, ttl) => {
      if (key.startsWith('session:')) throw new Error('SQLITE_BUSY');
      return set(key, value, ttl);
    };
    expect(await platform.ask(core, { thread: 't1', text: 'compute' })).toMatchObject({ kind: 'answer', text: 'answer to compute' });
    expect(lines().some((l) => l.msg === 'could not save the session')).toBe(true);
  });
});

describe('the journey under a burst of deliveries', () => {
  it('starts a turn in a lull between deliveries being received, so that acknowledgements go first', async () => {
    const storage = await openStorage('memory://', { dedupeMs: 60_000, joinedMs: 60_000 });
    const engine = createFakeEngine();
    const intake = new Intake();
    const core = createCore({ store: storage.store, inbox: storage.inbox, engine, logger: memoryLogger().logger, limits: { maxFileBytes: 1024, maxFilesPerTurn: 1, turnTimeoutMs: 5000 }, concurrency: 2, intake });
    const platform = createTestPlatform();
    core.register(platform);
    core.start();
    intake.enter(); // a delivery is being received
    const answered = platform.ask(core, { thread: 't', text: 'hi' });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(engine.calls).toEqual([]);
    intake.leave();
    expect((await answered).text).toBe('You said: hi');
    await core.stop(0);
    await storage.close();
  });
});
