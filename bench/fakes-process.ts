// Runs the fake Slack and the fake OpenAI in their own process for the journey benchmark, so that their CPU
// is not counted against the bot's. Answers { cmd: 'stats' } and { cmd: 'reset' } over IPC.
import { startFakeOpenAI } from '../test/fakes/openai.js';
import { startFakeSlack } from '../test/fakes/slack.js';

const latencyMs = Number(process.env.BENCH_API_LATENCY_MS ?? 150);
const modelMs = Number(process.env.BENCH_MODEL_MS ?? 2000);
const slack = await startFakeSlack();
const openai = await startFakeOpenAI({ latencyMs, validate: false, fallback: { text: 'The answer is 42.', delayMs: modelMs } });

function stats() {
  const threads = new Set(slack.messages.filter((m) => !m.streaming && !m.deleted && m.thread_ts !== undefined).map((m) => `${m.channel}:${m.thread_ts}`));
  const count = (list: { method: string }[]) => {
    const counts: Record<string, number> = {};
    for (const c of list) counts[c.method] = (counts[c.method] ?? 0) + 1;
    return counts;
  };
  return {
    answered: threads.size,
    slack: count(slack.calls.filter((c) => c.method !== 'auth.test')),
    openai: count(openai.requests.map((r) => ({ method: `${r.method} ${r.template ?? r.endpoint}` }))),
  };
}

process.on('message', (message: { cmd: string }) => {
  if (message.cmd === 'stats') process.send?.({ stats: stats() });
  if (message.cmd === 'reset') {
    slack.reset();
    openai.reset();
    process.send?.({ reset: true });
  }
});
process.send?.({ slack: { url: slack.url, apiUrl: slack.apiUrl, botToken: slack.botToken, signingSecret: slack.signingSecret, teamId: slack.teamId }, openai: { url: openai.url, apiKey: openai.apiKey } });
process.on('disconnect', () => void Promise.all([slack.close(), openai.close()]).then(() => process.exit(0)));
