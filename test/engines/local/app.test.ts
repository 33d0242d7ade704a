import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Crunch, createCrunch } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/index.js';
import type { Reply } from '../../../src/core/index.js';
import { type FakeChat, startFakeChat } from '../../fakes/chat-completions.js';
import { memoryLogger } from '../../support/logger.js';
import { createTestPlatform, type TestPlatform } from '../../support/platform.js';

/** CRUNCH_ENGINE=local through the app and the core, as Slack, Teams and the CLI reach it. */

let crunch: Crunch | undefined;
let platform: TestPlatform;
let chat: FakeChat | undefined;
let dir: string | undefined;
afterEach(async () => {
  await crunch?.close(0);
  await chat?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  crunch = chat = dir = undefined;
});

async function start(env: Record<string, string> = {}) {
  chat = await startFakeChat();
  dir = await mkdtemp(join(tmpdir(), 'crunch-app-local-'));
  await chmod(dir, 0o711);
  const { logger, lines } = memoryLogger();
  const config = loadConfig({
    CRUNCH_ENGINE: 'local',
    OPENAI_API_KEY: chat.apiKey,
    OPENAI_BASE_URL: `${chat.url}/v1`,
    STORE_URL: 'memory://',
    CRUNCH_SESSIONS_DIR: join(dir, 'sessions'),
    CRUNCH_POOL_SIZE: '0',
    ...env,
  });
  crunch = await createCrunch(config, logger);
  platform = createTestPlatform();
  crunch.core.register(platform);
  crunch.core.start();
  return { crunch, chat, lines };
}

async function say(text: string): Promise<Reply> {
  return platform.ask(crunch!.core, { thread: 'T', text });
}

describe('CRUNCH_ENGINE=local in the app', () => {
  it('help lists where Python runs, its limits and the packages found in the sandbox', async () => {
    await start();
    const help = await say('help');
    expect(help.kind).toBe('help');
    expect(help.text).toMatch(/^\*\*I'm Crunch\.\*\*/);
    expect(help.text).toContain("**Python:** runs on this server in a sandbox with no network access that sees only this conversation's files.");
    expect(help.text).toMatch(/\*\*Installed:\*\* numpy \d[^,]*, pandas \d[^,]*, matplotlib \d/);
    expect(help.text).toContain('Not installed: python-pptx (.pptx files can still be read as a zip of XML with zipfile and lxml).');
    expect(help.text).toContain(
      '**Per run:** up to 2 minutes, 2 GB of memory, 512 MB per file written. Variables are kept for 15 minutes between questions, files until `reset`.',
    );
    expect(help.text).not.toContain('No sandbox');
  });

  it('answers through the core, and reset forgets the session', async () => {
    const { chat } = await start();
    chat.script.push({ python: 'x = 6 * 7\nx' }, (request) => ({ text: `It is ${request.toolResults[0]!.split('\n')[1]}.` }));
    const reply = await say('what is 6 * 7?');
    expect(reply).toMatchObject({ kind: 'answer', text: 'It is 42.', code: [{ code: 'x = 6 * 7\nx', output: '42' }] });
    expect((await say('reset')).kind).toBe('reset');
    chat.script.push({ python: "print('x' in globals())" }, (request) => ({ text: request.toolResults[0]! }));
    expect((await say('is x still there?')).text).toBe('Output:\nFalse');
  });

  it('with CRUNCH_SANDBOX=none runs Python in the conversation folder, warning at start-up and in help', async () => {
    const { chat, lines } = await start({ CRUNCH_SANDBOX: 'none' });
    expect(lines().some((l) => l['level'] === 40 && /CRUNCH_SANDBOX=none: Python runs WITHOUT a sandbox/.test(String(l['msg'])))).toBe(true);
    expect((await say('help')).text).toContain('⚠️ **No sandbox** (CRUNCH_SANDBOX=none)');
    chat.script.push({ python: 'import os\nprint(os.getcwd())' }, (request) => ({ text: request.toolResults[0]! }));
    const reply = await say('where are you?');
    expect(reply.text).toMatch(new RegExp(`^Output:\\n${join(dir!, 'sessions')}/[0-9a-f-]{36}/data$`));
    expect(String(chat.requests.at(-1)!.messages[0]!['content'])).toContain('/mnt/data does not exist here');
  });
});
