// Runs the fake OpenAI in its own process for benchmarks, so its memory is not counted against Crunch's.
import { startFakeOpenAI } from '../test/fakes/openai.js';

const fake = await startFakeOpenAI();
process.send?.({ url: fake.url, apiKey: fake.apiKey });
process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
