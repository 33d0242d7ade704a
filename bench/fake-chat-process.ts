// Runs the fake chat model in its own process for the local engine's benchmark, so that its work (spec
// validation of every chunk) is not counted against the engine's. Each turn: one Python call, then an answer.
import { startFakeChat } from '../test/fakes/chat-completions.js';

const CODE = [
  'import pandas as pd',
  'import matplotlib.pyplot as plt',
  "df = pd.read_excel('sales.xlsx')",
  "ax = df.groupby('month')['revenue'].sum().plot(title='Revenue by month')",
  "df.groupby('region')['revenue'].sum()",
].join('\n');

const fake = await startFakeChat();
fake.fallback = (request) => (request.toolResults.length > 0 ? { text: 'Revenue by month is attached; the South leads.' } : { python: CODE });
process.send?.({ url: fake.url, apiKey: fake.apiKey });
process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
