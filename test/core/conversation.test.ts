import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  type Attachment,
  type ConversationKey,
  createConversationService,
  createStore,
  CrunchError,
  type Progress,
  type Store,
  type Turn,
} from '../../src/core/index.js';
import { createFakeEngine } from '../fakes/engine.js';
import { memoryLogger } from '../support/logger.js';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea73581e40000000049454e44ae426082', 'hex');

function attachment(name: string, data: Buffer | string, extra: Partial<Attachment> = {}): Attachment {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { sourceId: `src:${name}`, name, sizeBytes: bytes.length, open: async () => Readable.from([bytes]), ...extra };
}

const conv = (thread: string): ConversationKey => ({ platform: 'test', workspace: 'W', channel: 'C', thread });
let seq = 0;
function turn(thread: string, text: string, attachments: Attachment[] = []): Turn {
  seq += 1;
  return { conversation: conv(thread), messageKey: `m${seq}`, user: { id: 'U1' }, text, attachments };
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
  const extra = {
    holds,
    set failWith(value: unknown) {
      control.failWith = value;
    },
    /** Runs that got as far as answering, with whether they had a session. */
    get runs() {
      return engine.calls.map((c) => ({ text: c.text, files: c.files, hadSession: c.session !== undefined }));
    },
  };
  return Object.defineProperties(engine, Object.getOwnPropertyDescriptors(extra)) as typeof engine & typeof extra;
}

async function setup(limits: Partial<{ maxFileBytes: number; maxFilesPerTurn: number; turnTimeoutMs: number }> = {}) {
  const engine = recordingEngine();
  const store = await createStore('memory://');
  const { logger, lines } = memoryLogger();
  const core = createConversationService({
    store,
    engine,
    logger,
    limits: { maxFileBytes: 1024 * 1024, maxFilesPerTurn: 3, turnTimeoutMs: 60_000, ...limits },
  });
  return { engine, store, core, lines };
}

describe('ConversationService', () => {
  it('answers a turn and reports progress', async () => {
    const { core } = await setup();
    const progress: Progress[] = [];
    const reply = await core.handle(turn('t1', 'solve 3x + 11 = 14'), (p) => progress.push(p));
    expect(reply?.kind).toBe('answer');
    expect(reply?.text).toBe('answer to solve 3x + 11 = 14');
    // The engine reported the same status twice in a row: the adapter is told once.
    expect(progress).toEqual([
      { type: 'status', text: 'running code…' },
      { type: 'text', delta: 'answer' },
    ]);
  });

  it('answers a retried delivery once', async () => {
    const { core, engine } = await setup();
    const t = turn('t1', 'hello');
    const [a, b] = await Promise.all([core.handle(t, () => {}), core.handle({ ...t }, () => {})]);
    expect([a, b].filter((r) => r !== undefined)).toHaveLength(1);
    expect(engine.runs).toHaveLength(1);
  });

  it('keeps the session for follow-ups in the same conversation only', async () => {
    const { core, engine } = await setup();
    await core.handle(turn('t1', 'first'), () => {});
    await core.handle(turn('t1', 'second'), () => {});
    await core.handle(turn('t2', 'other'), () => {});
    expect(engine.runs.map((r) => r.hadSession)).toEqual([false, true, false]);
  });

  it('runs turns of one conversation in arrival order and other conversations in parallel', async () => {
    const { core, engine } = await setup();
    let release!: () => void;
    engine.holds.set('a1', new Promise<void>((r) => (release = r)));
    const a1 = core.handle(turn('A', 'a1'), () => {});
    const a2 = core.handle(turn('A', 'a2'), () => {});
    const b1 = core.handle(turn('B', 'b1'), () => {});
    await b1; // B finishes while A's first turn is still held
    expect(engine.events).toEqual(['start:a1', 'start:b1', 'end:b1']);
    release();
    await Promise.all([a1, a2]);
    expect(engine.events).toEqual(['start:a1', 'start:b1', 'end:b1', 'end:a1', 'start:a2', 'end:a2']);
  });

  it('answers help and reset without the engine, and reset forgets the session', async () => {
    const { core, engine, store } = await setup();
    const help = await core.handle(turn('t1', 'help'), () => {});
    expect(help?.kind).toBe('help');
    expect(help?.text).toContain('xlsx');
    await core.handle(turn('t1', 'first'), () => {});
    expect(await store.get('session:test:W:C:t1')).toBeDefined();
    const reset = await core.handle(turn('t1', 'reset'), () => {});
    expect(reset?.kind).toBe('reset');
    expect(await store.get('session:test:W:C:t1')).toBeUndefined();
    await core.handle(turn('t1', 'again'), () => {});
    expect(engine.runs.map((r) => r.hadSession)).toEqual([false, false]);
  });

  it('asks for a question when the mention is empty', async () => {
    const { core, engine } = await setup();
    const reply = await core.handle(turn('t1', '   '), () => {});
    expect(reply?.text).toMatch(/What shall I work on/);
    expect(engine.runs).toHaveLength(0);
  });

  it('skips unsupported, oversized and surplus files with a line each, and still runs the rest', async () => {
    const { core, engine } = await setup({ maxFileBytes: 100, maxFilesPerTurn: 2 });
    const reply = await core.handle(
      turn('t1', 'analyse', [
        attachment('report.csv', 'a,b\n1,2\n'),
        attachment('movie.mp4', 'not really a movie'),
        attachment('huge.csv', 'x'.repeat(500)),
        attachment('notes.txt', 'hello'),
        attachment('third.json', '{}'),
      ]),
      () => {},
    );
    expect(engine.runs[0]?.files.map((f) => f.name)).toEqual(['report.csv', 'notes.txt']);
    expect(reply?.notices).toEqual([
      expect.stringMatching(/^\*\*movie\.mp4\*\* skipped: \.mp4 is not supported\. Supported types: c, cpp, css, csv, docx/),
      expect.stringMatching(/^\*\*huge\.csv\*\* skipped: it is 500 bytes, over the 100 bytes limit per file\./),
      expect.stringMatching(/^\*\*third\.json\*\* skipped: I take at most 2 files per message/),
    ]);
  });

  it('sniffs content: a damaged workbook or a renamed image is skipped with a reason', async () => {
    const { core, engine } = await setup();
    const reply = await core.handle(
      turn('t1', 'analyse', [
        attachment('sales.xlsx', 'this is plain text, not a workbook'),
        attachment('data.csv', PNG),
        attachment('chart.png', PNG, { mimeType: 'application/octet-stream' }),
      ]),
      () => {},
    );
    expect(engine.runs[0]?.files).toEqual([{ name: 'chart.png', mimeType: 'image/png', bytes: PNG }]);
    expect(reply?.notices).toEqual([
      '**sales.xlsx** skipped: it does not look like a valid Excel workbook (the file may be damaged or renamed).',
      '**data.csv** skipped: its content is a .png file, not CSV text as the .csv name says.',
    ]);
  });

  it('names a file by its MIME type when it has no extension, and enforces the size while streaming', async () => {
    const { core, engine } = await setup({ maxFileBytes: 1000 });
    const reply = await core.handle(
      turn('t1', 'look', [
        attachment('image', PNG, { mimeType: 'image/png' }),
        attachment('liar.csv', 'y'.repeat(5000), { sizeBytes: 10 }),
      ]),
      () => {},
    );
    expect(engine.runs[0]?.files.map((f) => f.name)).toEqual(['image.png']);
    expect(reply?.notices).toEqual(['**liar.csv** skipped: it is over the 1000 bytes limit per file.']);
  });

  it('cancels a turn that passes its deadline and says so', async () => {
    const { core } = await setup({ turnTimeoutMs: 50 });
    const reply = await core.handle(turn('t1', 'wait for the deadline'), () => {});
    expect(reply?.kind).toBe('error');
    expect(reply?.error?.code).toBe('deadline');
    expect(reply?.text).toMatch(/took longer than 1 second, so I stopped it/);
  });

  it('turns an engine failure into a friendly reply and keeps serving', async () => {
    const { core, engine, lines } = await setup();
    engine.failWith = new CrunchError('engine_quota', 'The AI service account has run out of quota.');
    const reply = await core.handle(turn('t1', 'anything'), () => {});
    expect(reply).toMatchObject({ kind: 'error', text: 'The AI service account has run out of quota.', error: { code: 'engine_quota' } });
    engine.failWith = new Error('boom');
    const second = await core.handle(turn('t1', 'again'), () => {});
    expect(second?.text).toMatch(/Something went wrong on my side/);
    expect(lines().some((l) => l.msg === 'turn failed' && l.code === 'internal')).toBe(true);
    engine.failWith = undefined;
    expect((await core.handle(turn('t1', 'third'), () => {}))?.kind).toBe('answer');
  });
});

describe('ConversationService failures with files', () => {
  it('keeps the skipped-file lines when the engine then fails', async () => {
    const { core, engine } = await setup();
    engine.failWith = new CrunchError('engine_unavailable', 'busy');
    const reply = await core.handle(turn('t1', 'go', [attachment('clip.mov', 'x')]), () => {});
    expect(reply).toMatchObject({ kind: 'error', text: 'busy' });
    expect(reply?.notices).toEqual([expect.stringMatching(/^\*\*clip\.mov\*\* skipped: \.mov is not supported/)]);
  });
});

describe('ConversationService ordering with delivery', () => {
  it('keeps arrival order even when the first message\'s dedupe claim is slower', async () => {
    const { core, engine, store } = await setup();
    const claim = store.claim.bind(store);
    store.claim = async (key, ttl) => {
      if (key.endsWith(':first')) await new Promise((r) => setTimeout(r, 30));
      return claim(key, ttl);
    };
    const first = core.handle({ ...turn('A', 'a1'), messageKey: 'first' }, () => {});
    const second = core.handle({ ...turn('A', 'a2'), messageKey: 'second' }, () => {});
    await Promise.all([first, second]);
    expect(engine.events).toEqual(['start:a1', 'end:a1', 'start:a2', 'end:a2']);
  });

  it('starts the next turn of a conversation only after the previous reply was delivered', async () => {
    const { core, engine } = await setup();
    const log: string[] = [];
    const deliver = (name: string, ms: number) => async () => {
      log.push(`deliver ${name} start`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`deliver ${name} end`);
    };
    engine.events.length = 0;
    await Promise.all([core.handle(turn('A', 'a1'), () => {}, deliver('a1', 30)), core.handle(turn('A', 'a2'), () => {}, deliver('a2', 0))]);
    expect(log).toEqual(['deliver a1 start', 'deliver a1 end', 'deliver a2 start', 'deliver a2 end']);
    expect(engine.events.indexOf('start:a2')).toBeGreaterThan(engine.events.indexOf('end:a1'));
  });

  it('tells a duplicate at once, even while the conversation is busy, and never delivers it', async () => {
    const { core, engine } = await setup();
    let release!: () => void;
    engine.holds.set('slow', new Promise<void>((r) => (release = r)));
    const delivered: string[] = [];
    const t = turn('A', 'slow');
    const first = core.handle(t, () => {}, async (r) => void delivered.push(r.text));
    expect(await core.handle({ ...t }, () => {}, async (r) => void delivered.push(`dup ${r.text}`))).toBeUndefined();
    release();
    await first;
    expect(delivered).toEqual(['answer to slow']);
  });

  it('replies with an error, not silence, when the store cannot be reached for the dedupe claim', async () => {
    const { core, store } = await setup();
    store.claim = async () => {
      throw new Error('redis down');
    };
    const reply = await core.handle(turn('A', 'hello'), () => {});
    expect(reply?.kind).toBe('error');
  });
});

describe('ConversationService with downloads that go wrong', () => {
  it('skips a file whose download drops midway, with a line saying so, and answers with the rest', async () => {
    const { core, engine } = await setup();
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
    const reply = await core.handle(turn('t1', 'go', [dropping, attachment('ok.csv', 'x,y\n')]), () => {});
    expect(reply?.kind).toBe('answer');
    expect(engine.runs[0]?.files.map((f) => f.name)).toEqual(['ok.csv']);
    expect(reply?.notices).toEqual(['**big.csv** skipped: the download failed midway (socket hang up). Please share it again.']);
  });

  it('ends a turn whose download stalls at the deadline, closes the download, and keeps the conversation going', async () => {
    const { core } = await setup({ turnTimeoutMs: 100 });
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
    const reply = await core.handle(turn('t1', 'go', [stalled]), () => {});
    expect(reply).toMatchObject({ kind: 'error', error: { code: 'deadline' } });
    expect(destroyed).toBe(true);
    expect((await core.handle(turn('t1', 'next'), () => {}))?.kind).toBe('answer');
  });

  it('skips an empty file even when the platform did not say its size', async () => {
    const { core, engine } = await setup();
    const reply = await core.handle(turn('t1', 'go', [attachment('empty.txt', '', { sizeBytes: undefined })]), () => {});
    expect(engine.runs[0]?.files).toEqual([]);
    expect(reply?.notices).toEqual(['**empty.txt** skipped: the file is empty.']);
  });
});

describe('ConversationService when the store fails to save', () => {
  it('still returns the computed answer and logs the failed write', async () => {
    const { core, store, lines } = await setup();
    store.set = async () => {
      throw new Error('SQLITE_BUSY');
    };
    const reply = await core.handle(turn('t1', 'compute'), () => {});
    expect(reply).toMatchObject({ kind: 'answer', text: 'answer to compute' });
    expect(lines().some((l) => l.msg === 'could not save the session')).toBe(true);
  });
});

describe('ConversationService on several replicas sharing one store', () => {
  async function replicasOn(store: Store) {
    let active = 0;
    let most = 0;
    const engine = () =>
      createFakeEngine(async (input) => {
        active += 1;
        most = Math.max(most, active);
        await new Promise((r) => setTimeout(r, 40));
        active -= 1;
        return { text: input.text };
      });
    const { logger } = memoryLogger();
    const limits = { maxFileBytes: 1024, maxFilesPerTurn: 1, turnTimeoutMs: 5000 };
    const a = createConversationService({ store, engine: engine(), logger, limits });
    const b = createConversationService({ store, engine: engine(), logger, limits });
    return { a, b, most: () => most };
  }

  async function runBoth(store: Store) {
    const { a, b, most } = await replicasOn(store);
    const thread = `shared-${Math.random()}`;
    // Message keys unique to this run: a Redis server keeps dedupe claims across test runs.
    const fresh = (text: string) => ({ ...turn(thread, text), messageKey: `${thread}:${text}` });
    const replies = await Promise.all([
      a.handle(fresh('one'), () => {}),
      b.handle(fresh('two'), () => {}),
      a.handle(fresh('three'), () => {}),
      b.handle(fresh('four'), () => {}),
    ]);
    expect(replies.map((r) => r?.kind)).toEqual(['answer', 'answer', 'answer', 'answer']);
    expect(most()).toBe(1);
  }

  it('never runs two turns of one conversation at once (shared memory store)', async () => {
    await runBoth(await createStore('memory://'));
  });

  it.runIf(process.env.CRUNCH_TEST_REDIS_URL)('never runs two turns of one conversation at once (Redis)', async () => {
    const store = await createStore(process.env.CRUNCH_TEST_REDIS_URL!);
    try {
      await runBoth(store);
    } finally {
      await store.close();
    }
  });
});
