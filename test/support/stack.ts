import { expect } from 'vitest';
import { type Crunch, createCrunch } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai.js';
import { memoryLogger } from './logger.js';
import { createTestPlatform, type TestPlatform } from './platform.js';

/**
 * The real core with the real `responses` engine, talking over HTTP to the fake OpenAI through the real
 * SDK, its workers running. Adapter end-to-end tests register their platform on it; engine tests talk to
 * the core through `platform` (a TestPlatform).
 */
export interface Stack {
  openai: FakeOpenAI;
  crunch: Crunch;
  platform: TestPlatform;
  logs: () => Record<string, unknown>[];
  /** Fails the test if any request or response broke OpenAI's spec. */
  expectSpecClean(): void;
  close(): Promise<void>;
}

type StackEnv = Record<string, string>;

/** `env` overrides the defaults; as a function it can use the fake's URL and key (e.g. for Azure). */
export async function startStack(env: StackEnv | ((openai: FakeOpenAI) => StackEnv) = {}): Promise<Stack> {
  const openai = await startFakeOpenAI();
  const config = loadConfig({
    OPENAI_API_KEY: openai.apiKey,
    OPENAI_BASE_URL: `${openai.url}/v1`,
    STORE_URL: 'memory://',
    CRUNCH_RETRY_BASE_DELAY_MS: '5',
    ...(typeof env === 'function' ? env(openai) : env),
  });
  const { logger, lines } = memoryLogger();
  const crunch = await createCrunch(config, logger);
  const platform = createTestPlatform();
  crunch.core.register(platform);
  crunch.core.start();
  return {
    openai,
    crunch,
    platform,
    logs: lines,
    expectSpecClean: () => expect(openai.violations).toEqual([]),
    async close() {
      await crunch.close(0);
      await openai.close();
    },
  };
}
