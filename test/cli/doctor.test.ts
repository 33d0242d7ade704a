import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SLACK_BOT_SCOPES, teamsAuthority } from '../../src/cli/checks.js';
import type { TeamsConfig } from '../../src/config/index.js';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai.js';
import { type FakeSlack, startFakeSlack } from '../fakes/slack.js';
import { type FakeTeams, startFakeTeams } from '../fakes/teams.js';
import { buildCli, freePort } from '../support/processes.js';
import { emptyHome, type Ran, root, runCli } from './harness.js';

/** `crunch doctor` against the fakes: every service answering, then each refusing in its own way. */
let openai: FakeOpenAI;
let slack: FakeSlack;
let teams: FakeTeams;
let work: string;
let home: string;

beforeAll(async () => {
  await buildCli();
  openai = await startFakeOpenAI({ models: [{ id: 'gpt-4.1' }, { id: 'gpt-3.5-turbo', codeInterpreter: false }] });
  slack = await startFakeSlack();
  teams = await startFakeTeams();
  work = await mkdtemp(join(tmpdir(), 'crunch-doctor-'));
  home = await emptyHome();
}, 120_000);
afterAll(async () => {
  await Promise.all([openai.close(), slack.close(), teams.close()]);
  await rm(work, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});
afterEach(() => {
  expect(openai.violations).toEqual([]);
  openai.reset();
  slack.reset();
});

function good(): Record<string, string> {
  return {
    HOME: home,
    OPENAI_API_KEY: openai.apiKey,
    OPENAI_BASE_URL: `${openai.url}/v1`,
    SLACK_BOT_TOKEN: slack.botToken,
    SLACK_APP_TOKEN: slack.appToken,
    SLACK_API_URL: `${slack.url}/api/`,
    MicrosoftAppId: teams.appId,
    MicrosoftAppPassword: teams.appPassword,
    MicrosoftAppTenantId: '00000000-0000-4000-8000-00000000c0de',
    TEAMS_LOGIN_URL: teams.endpoints.loginUrl,
    STORE_URL: `sqlite://${join(work, 'crunch.sqlite')}`,
  };
}

function doctor(env: Record<string, string>): Promise<Ran> {
  return runCli(['doctor'], { cwd: work, env });
}

const lines = (out: string, mark: '✓' | '✗') => out.split('\n').filter((l) => l.startsWith(mark));

describe('crunch doctor', () => {
  it('checks every configured service and says all is well', async () => {
    const result = await doctor(good());
    expect(result.stderr).toBe('');
    expect(lines(result.stdout, '✗')).toEqual([]);
    expect(lines(result.stdout, '✓')).toEqual([
      '✓ configuration: every variable is valid',
      '✓ OpenAI: the key works; model gpt-4.1 is available',
      '✓ OpenAI: gpt-4.1 takes the code interpreter',
      '✓ Slack: SLACK_BOT_TOKEN works (bot @crunch in Crunch Test) with every scope Crunch needs',
      '✓ Slack: SLACK_APP_TOKEN works (Socket Mode)',
      '✓ Teams: MicrosoftAppId and MicrosoftAppPassword work (SingleTenant)',
      `✓ store: sqlite://${join(work, 'crunch.sqlite')} answers`,
    ]);
    expect(result.stdout).toMatch(/Everything works\.\n$/);
    expect(result.code).toBe(0);
    // The key and model cost nothing; the code interpreter one request of a few tokens.
    expect(openai.requests.map((r) => `${r.method} ${r.endpoint}`)).toEqual(['GET /models/gpt-4.1', 'POST /responses']);
    expect(openai.requests[1]!.body).toMatchObject({ max_output_tokens: 16, store: false, tools: [{ type: 'code_interpreter' }] });
    expect(teams.issuedTokens).toHaveLength(1);
  });

  // A Redis that does not answer takes the store's own start-up wait (10 s) to be called unreachable.
  it('says what to fix for each refusal, and exits non-zero', async () => {
    slack.grantedScopes = slack.grantedScopes.filter((s) => s !== 'files:read');
    const result = await doctor({ ...good(), OPENAI_API_KEY: 'sk-wrong-key', MicrosoftAppPassword: 'wrong', STORE_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(result.code).toBe(1);
    const failed = lines(result.stdout, '✗');
    expect(failed).toEqual([
      '✗ OpenAI: OpenAI refused the API key (401 invalid_api_key)',
      '✗ Slack: SLACK_BOT_TOKEN works (bot @crunch in Crunch Test), but the app lacks the scope files:read',
      "✗ Teams: the bot's token was refused (401 invalid_client)",
      expect.stringMatching(/^✗ store: redis:\/\/127\.0\.0\.1:\d+ cannot be used \(.+\)$/),
    ]);
    // Each ✗ is followed by what to do about it.
    const fixes = result.stdout.split('\n').filter((l) => l.startsWith('    → '));
    expect(fixes).toHaveLength(4);
    expect(fixes[0]).toContain('set OPENAI_API_KEY to a valid key (https://platform.openai.com/api-keys)');
    expect(fixes[1]).toContain('reinstall the app');
    expect(fixes[2]).toContain('MicrosoftAppPassword');
    expect(result.stdout).toMatch(/4 things need fixing\.\n$/);
    // No code interpreter check with a refused key; no secret printed.
    expect(result.stdout).not.toContain('code interpreter');
    expect(result.stdout).not.toContain('sk-wrong-key');
  }, 60_000);

  it('names a model it cannot find, and one without the code interpreter', async () => {
    const missing = await doctor({ ...good(), CRUNCH_MODEL: 'gpt-9' });
    expect(lines(missing.stdout, '✗')).toEqual(['✗ OpenAI: model gpt-9 was not found (404 model_not_found)']);
    expect(missing.stdout).toContain('→ set CRUNCH_MODEL to a model that offers the Responses API with the hosted code interpreter');
    expect(missing.code).toBe(1);

    const older = await doctor({ ...good(), CRUNCH_MODEL: 'gpt-3.5-turbo' });
    expect(lines(older.stdout, '✗')).toEqual(["✗ OpenAI: gpt-3.5-turbo did not take the code interpreter: Hosted tool 'code_interpreter' is not supported with gpt-3.5-turbo."]);
    expect(older.code).toBe(1);
  });

  it('names refused Slack tokens', async () => {
    const result = await doctor({ ...good(), SLACK_BOT_TOKEN: 'xoxb-revoked', SLACK_APP_TOKEN: 'xapp-1-revoked' });
    expect(lines(result.stdout, '✗')).toEqual(['✗ Slack: Slack refused SLACK_BOT_TOKEN (invalid_auth)', '✗ Slack: Slack refused SLACK_APP_TOKEN (invalid_auth)']);
    expect(result.code).toBe(1);
  });

  it('checks Azure OpenAI with its own key header', async () => {
    const { OPENAI_API_KEY: _key, OPENAI_BASE_URL: _url, ...rest } = good();
    const result = await doctor({ ...rest, AZURE_OPENAI_ENDPOINT: openai.url, AZURE_OPENAI_API_KEY: openai.apiKey, CRUNCH_MODEL: 'gpt-4.1' });
    expect(lines(result.stdout, '✓').slice(1, 3)).toEqual(['✓ Azure OpenAI: the key works; model gpt-4.1 is available', '✓ Azure OpenAI: gpt-4.1 takes the code interpreter']);
    expect(openai.requests.every((r) => r.flavor === 'azure' && r.headers['api-key'] === openai.apiKey)).toBe(true);
  });

  it('has its own --help, and is listed in crunch help', async () => {
    expect((await runCli(['doctor', '--help'], { cwd: work, env: { HOME: home } })).stdout).toMatch(/^Usage: crunch doctor\n/);
    expect((await runCli(['help'], { cwd: work, env: { HOME: home } })).stdout).toMatch(/^ {2}doctor +check the configuration against the live services/m);
  });

  it('lists what is missing from the configuration and where it looked', async () => {
    const result = await doctor({ HOME: home });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`Settings from the environment, then ${join(work, '.env')} (not found)`);
    expect(lines(result.stdout, '✗')).toEqual(['✗ configuration: OPENAI_API_KEY: required (or AZURE_OPENAI_ENDPOINT with AZURE_OPENAI_API_KEY)']);
  });
});

describe("doctor's Teams authority", () => {
  it('is the bot tenant when single-tenant, botframework.com when multi-tenant, or TEAMS_LOGIN_URL', () => {
    const bot = { appId: 'app', appPassword: 'p', tenantId: 'contoso-tenant' } as const;
    expect(teamsAuthority({ ...bot, appType: 'SingleTenant' } as TeamsConfig, undefined)).toBe('https://login.microsoftonline.com/contoso-tenant');
    expect(teamsAuthority({ ...bot, appType: 'MultiTenant' } as TeamsConfig, '')).toBe('https://login.microsoftonline.com/botframework.com');
    expect(teamsAuthority({ ...bot, appType: 'MultiTenant' } as TeamsConfig, 'http://127.0.0.1:9/botframework.com/')).toBe('http://127.0.0.1:9/botframework.com');
  });
});

describe("doctor's Slack scopes", () => {
  it('are the ones the manifest asks for', async () => {
    const manifest = parse(await readFile(join(root, 'manifest/slack/manifest.yaml'), 'utf8')) as { oauth_config: { scopes: { bot: string[] } } };
    expect([...SLACK_BOT_SCOPES].sort()).toEqual([...manifest.oauth_config.scopes.bot].sort());
  });
});
