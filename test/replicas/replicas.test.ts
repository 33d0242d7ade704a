import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeOpenAI, type ScriptRequest, startFakeOpenAI } from '../fakes/openai.js';
import { contextTexts, deliverEvent, type FakeSlack, messageText, startFakeSlack } from '../fakes/slack.js';
import { buildCli, type RedisServer, type Replica, startRedis, startReplica, waitFor } from '../support/processes.js';

/**
 * Several `crunch serve` processes, as operators run them: the built CLI in child processes, sharing a real
 * redis-server (or one SQLite file), Slack and OpenAI faked over HTTP in this process. Replicas are killed
 * for real (SIGKILL), stopped (SIGTERM), and Redis itself is stopped and started again.
 */
const TAKEOVER_MS = 2000;
const haveRedis = spawnSync('redis-server', ['--version']).status === 0;
let redis: RedisServer | undefined;
let slack: FakeSlack;
let openai: FakeOpenAI;
let dir: string;
const replicas: Replica[] = [];

beforeAll(async () => {
  await buildCli();
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'crunch-replicas-'));
}, 120_000);
afterAll(async () => {
  await redis?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  slack = await startFakeSlack();
  openai = await startFakeOpenAI();
});
afterEach(async () => {
  for (const replica of replicas.splice(0)) {
    replica.kill('SIGKILL');
    await replica.exited;
  }
  await slack.close();
  await openai.close();
});

let seq = 0;
const run = Math.floor(Date.now() / 1000);

function env(store: string): Record<string, string> {
  return {
    STORE_URL: store,
    OPENAI_API_KEY: openai.apiKey,
    OPENAI_BASE_URL: `${openai.url}/v1`,
    SLACK_BOT_TOKEN: slack.botToken,
    SLACK_SIGNING_SECRET: slack.signingSecret,
    SLACK_API_URL: slack.apiUrl,
    CRUNCH_TAKEOVER_MS: String(TAKEOVER_MS),
    CRUNCH_RETRY_BASE_DELAY_MS: '10',
  };
}

async function replica(store: string, extra: Record<string, string> = {}): Promise<Replica> {
  const started = await startReplica({ ...env(store), ...extra });
  replicas.push(started);
  return started;
}

/** A DM to the bot: `text` in the thread under `root` (or a new top-level message when root is undefined). */
function dm(text: string, root?: string): { payload: Record<string, unknown>; ts: string; thread: string } {
  seq += 1;
  const ts = `${run}.${String(seq).padStart(6, '0')}`;
  const event = { type: 'message', channel: 'D0ALICE001', channel_type: 'im', user: 'U0ALICE001', team: slack.teamId, text, ts, ...(root ? { thread_ts: root } : {}) };
  const payload = { token: 'x', team_id: slack.teamId, api_app_id: 'A0CRUNCHAPP', type: 'event_callback', event_id: `Ev${seq}${run}`, event_time: run, event };
  return { payload, ts, thread: root ?? ts };
}

const send = (to: Replica, payload: unknown, retryNum?: number) =>
  deliverEvent(`${to.url}/slack/events`, payload, { signingSecret: slack.signingSecret, ...(retryNum !== undefined ? { retryNum } : {}) });
/** The finished messages of a thread (an answer being streamed is not finished). */
const answers = (thread: string) =>
  slack
    .thread('D0ALICE001', thread)
    .filter((m) => !m.streaming)
    .map((m) => messageText(m).trim());

/** Scripts the model: each request answers "answer to <text>" after `delayMs(text)`, recording when it ran. */
function model(delayMs: (text: string, attempt: number) => number) {
  const runs: { text: string; conversation: string; start: number; end: number }[] = [];
  const attempts = new Map<string, number>();
  openai.script.push(...Array.from({ length: 50 }, () => (request: ScriptRequest) => {
    const text = request.inputText.split('\n')[0]!;
    const attempt = (attempts.get(text) ?? 0) + 1;
    attempts.set(text, attempt);
    const delay = delayMs(text, attempt);
    const start = Date.now();
    runs.push({ text, conversation: String(request.body['conversation']), start, end: start + delay });
    return { text: `answer to ${text}`, delayMs: delay };
  }));
  return runs;
}

describe.runIf(haveRedis || process.env.CI)('replicas sharing Redis', { timeout: 60_000 }, () => {
  const store = () => redis!.url;

  it('answers a delivery sent to both replicas once', async () => {
    const [a, b] = [await replica(store()), await replica(store())];
    model(() => 100);
    const message = dm('what is 2 + 2?');
    const acks = await Promise.all([send(a, message.payload), send(b, message.payload)]);
    expect(acks.map((r) => r.status)).toEqual([200, 200]);
    await waitFor(() => answers(message.thread).length > 0, 10_000, 'the answer');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(answers(message.thread)).toEqual(['answer to what is 2 + 2?']);
  });

  it('runs one thread\'s messages in arrival order, never two at once, though they alternate between replicas', async () => {
    const [a, b] = [await replica(store()), await replica(store())];
    const runs = model(() => 300);
    const root = dm('message 0');
    const messages = [root, ...[1, 2, 3, 4].map((i) => dm(`message ${i}`, root.ts))];
    for (const [i, message] of messages.entries()) expect((await send(i % 2 === 0 ? a : b, message.payload)).status).toBe(200);
    await waitFor(() => answers(root.thread).length === 5, 20_000, 'five answers');
    expect(runs.map((r) => r.text)).toEqual(['message 0', 'message 1', 'message 2', 'message 3', 'message 4']);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    expect(answers(root.thread)).toEqual(messages.map((_m, i) => `answer to message ${i}`));
  });

  it('answers, once, the turn of a replica killed in the middle of it, from the other replica', async () => {
    const a = await replica(store());
    const runs = model((_text, attempt) => (attempt === 1 ? 60_000 : 100));
    const message = dm('a long analysis');
    expect((await send(a, message.payload)).status).toBe(200);
    await waitFor(() => runs.length === 1, 10_000, 'the model call');
    a.kill('SIGKILL');
    await a.exited;
    const b = await replica(store());
    const killedAt = Date.now();
    await waitFor(() => answers(message.thread).length > 0, 30_000, 'the answer from the other replica');
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_MS + 10_000);
    expect(answers(message.thread)).toEqual(['answer to a long analysis']);
    expect(b.logs().some((l) => l['msg'] === 'resuming a turn an earlier attempt did not finish')).toBe(true);
  });

  it('drains on SIGTERM: a turn in flight is answered before the process exits', async () => {
    const a = await replica(store());
    const runs = model(() => 1500);
    const message = dm('finish me');
    await send(a, message.payload);
    await waitFor(() => runs.length === 1, 10_000, 'the model call');
    a.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(answers(message.thread)).toEqual(['answer to finish me']);
  });

  it('hands a turn that outlasts the drain back at SIGTERM, and another replica answers it at once', async () => {
    const [a, b] = [await replica(store(), { CRUNCH_DRAIN_MS: '300' }), await replica(store())];
    const runs = model((_text, attempt) => (attempt === 1 ? 60_000 : 100));
    const message = dm('too long to drain');
    await send(a, message.payload);
    await waitFor(() => runs.length === 1, 10_000, 'the model call');
    a.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const stoppedAt = Date.now();
    await waitFor(() => answers(message.thread).length > 0, 10_000, 'the answer from the other replica');
    // Handed back, not abandoned: no waiting for the takeover time.
    expect(Date.now() - stoppedAt).toBeLessThan(TAKEOVER_MS);
    expect(answers(message.thread)).toEqual(['answer to too long to drain']);
    expect(b.logs().some((l) => l['msg'] === 'resuming a turn an earlier attempt did not finish')).toBe(true);
  });

  it('holds a budget across replicas: spent on one, refused on the other with no model call; both write the audit log', async () => {
    const audit = join(dir, `audit-${run}-${seq}.jsonl`);
    const governed = { CRUNCH_BUDGET_USER_DAILY_USD: '0.001', CRUNCH_AUDIT_LOG: audit, CRUNCH_SHOW_COST: 'true' };
    const [a, b] = [await replica(store(), governed), await replica(store(), governed)];
    model(() => 50);
    const first = dm('first question');
    expect((await send(a, first.payload)).status).toBe(200);
    await waitFor(() => answers(first.thread).length > 0, 10_000, 'the first answer');
    expect(answers(first.thread)).toEqual(['answer to first question']);
    const answered = slack.thread('D0ALICE001', first.thread).filter((m) => !m.streaming);
    expect(answered.flatMap((m) => contextTexts(m))).toEqual([expect.stringMatching(/^[\d,]+ tokens · 1 sandbox session · ≈ \$0\.03$/)]);
    const second = dm('second question');
    expect((await send(b, second.payload)).status).toBe(200);
    await waitFor(() => answers(second.thread).length > 0, 10_000, 'the refusal');
    expect(answers(second.thread)).toEqual([expect.stringMatching(/^You have used today's Crunch budget \(\$0\.001 a person a day\)\. It resets at midnight UTC/)]);
    expect(openai.requests.filter((r) => r.method === 'POST' && r.path === '/v1/responses')).toHaveLength(1);

    await waitFor(async () => (await readFile(audit, 'utf8').catch(() => '')).trim().split('\n').length === 2, 5000, 'two audit lines');
    const written = await readFile(audit, 'utf8');
    const lines = written.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((l) => [l['outcome'], l['reason'] ?? null, l['user']])).toEqual([
      ['answered', null, 'U0ALICE001'],
      ['refused', 'budget', 'U0ALICE001'],
    ]);
    for (const secret of [openai.apiKey, slack.botToken, slack.signingSecret, 'first question']) expect(written).not.toContain(secret);
  });

  it('says so while Redis is down (Slack retries, the person is told, SIGTERM still exits), and carries on once it is back', async () => {
    const a = await replica(store(), { CRUNCH_DRAIN_MS: '2000' });
    model(() => 50);
    await redis!.stop();
    const message = dm('are you there?');
    const started = Date.now();
    const refused = await send(a, message.payload);
    expect(refused.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(10_000);
    await waitFor(() => answers(message.thread).length === 1, 10_000, 'the apology');
    expect(answers(message.thread)[0]).toMatch(/cannot reach my storage right now/);
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${a.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ status: 'not_ready' });
    expect(a.logs().some((l) => l['msg'] === 'store unavailable: the message could not be recorded')).toBe(true);

    await redis!.start();
    await waitFor(async () => (await fetch(`${a.url}/readyz`)).status === 200, 15_000, 'ready again');
    // Slack's retry of the same event, once the store is back.
    await waitFor(async () => (await send(a, message.payload, 1)).status === 200, 15_000, 'the store to take messages again');
    await waitFor(() => answers(message.thread).length === 2, 15_000, 'the answer');
    expect(answers(message.thread)[1]).toBe('answer to are you there?');

    await redis!.stop();
    a.kill('SIGTERM');
    // Within the drain time and a short wind-down, though nothing can be saved.
    const code = await Promise.race([a.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 10_000))]);
    expect(code).toBe(0);
    await redis!.start();
  });
});

describe('one process on a SQLite file', { timeout: 60_000 }, () => {
  it('answers, once, after a restart, the turn it was killed in the middle of', async () => {
    const store = `sqlite://${join(dir, 'kill.sqlite')}`;
    const first = await replica(store);
    const runs = model((_text, attempt) => (attempt === 1 ? 60_000 : 100));
    const message = dm('survive a crash');
    expect((await send(first, message.payload)).status).toBe(200);
    await waitFor(() => runs.length === 1, 10_000, 'the model call');
    first.kill('SIGKILL');
    await first.exited;
    // The same file at once: the dead process's lease is taken over (its pid is gone).
    const second = await replica(store);
    await waitFor(() => answers(message.thread).length > 0, 15_000, 'the answer after the restart');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answers(message.thread)).toEqual(['answer to survive a crash']);
    expect(second.logs().some((l) => l['msg'] === 'resuming a turn an earlier attempt did not finish')).toBe(true);
  });

  it('refuses a second process on the same file, naming it, so that nothing is answered twice', async () => {
    const store = `sqlite://${join(dir, 'shared.sqlite')}`;
    await replica(store);
    await expect(replica(store)).rejects.toThrow(/Another Crunch process \(.+\) is serving from .*shared\.sqlite/);
  });
});
