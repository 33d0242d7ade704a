// The baseline of the journey benchmark: a bare Bolt app on the HTTP Events API that does a turn's minimum
// on the same fakes (one model call, one message in the thread), with nothing of Crunch around it.
import { App, LogLevel } from '@slack/bolt';
import OpenAI from 'openai';

const openai = new OpenAI({ apiKey: process.env.OPENAI_API_KEY!, baseURL: process.env.OPENAI_BASE_URL!, maxRetries: 0 });
const app = new App({
  token: process.env.SLACK_BOT_TOKEN!,
  signingSecret: process.env.SLACK_SIGNING_SECRET!,
  clientOptions: { slackApiUrl: process.env.SLACK_API_URL! },
  logLevel: LogLevel.ERROR,
});
app.message(async ({ message, client }) => {
  const m = message as { channel: string; ts: string; text?: string };
  const response = await openai.responses.create({ model: 'gpt-4.1', input: m.text ?? '' });
  await client.chat.postMessage({ channel: m.channel, thread_ts: m.ts, text: response.output_text });
});
await app.start(Number(process.env.PORT));
process.send?.({ up: true });
process.on('disconnect', () => void app.stop().then(() => process.exit(0)));
