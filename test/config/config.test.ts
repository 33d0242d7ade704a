import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

describe('loadConfig', () => {
  it('gives embedded defaults with only an OpenAI key', () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-test' });
    expect(config).toMatchObject({
      port: 3978,
      storeUrl: 'sqlite://./data/crunch.sqlite',
      openai: { provider: 'openai', apiKey: 'sk-test', baseURL: undefined, model: 'gpt-4.1' },
      limits: { maxFileBytes: 100 * 1024 * 1024, maxFilesPerTurn: 10, turnTimeoutMs: 600_000, maxAttempts: 4 },
      slack: undefined,
      publicUrl: 'http://localhost:3978',
    });
    expect(config.openai?.instructions).toMatch(/PNG/);
  });

  it('names every missing or malformed variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        STORE_URL: 'postgres://db',
        CRUNCH_MAX_FILE_BYTES: String(600 * 1024 * 1024),
        OPENAI_BASE_URL: 'not a url',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^PORT: /m);
    expect(problems).toMatch(/^STORE_URL: must start with sqlite:\/\//m);
    expect(problems).toMatch(/^CRUNCH_MAX_FILE_BYTES: /m);
    expect(problems).toMatch(/^OPENAI_BASE_URL: /m);
  });

  it('requires an engine key and checks Slack and Teams settings together', () => {
    expect(() =>
      loadConfig({ SLACK_BOT_TOKEN: 'xoxp-user-token', MicrosoftAppId: 'app', MicrosoftAppType: 'SingleTenant' }),
    ).toThrowError(
      expect.objectContaining({
        problems: [
          'OPENAI_API_KEY: required (or AZURE_OPENAI_ENDPOINT with AZURE_OPENAI_API_KEY)',
          'SLACK_BOT_TOKEN: must be a bot token starting with xoxb-',
          'SLACK_SIGNING_SECRET: required for the HTTP Events API (or set SLACK_APP_TOKEN for Socket Mode)',
          'MicrosoftAppPassword: required with MicrosoftAppId (unless MicrosoftAppType=UserAssignedMSI)',
          "MicrosoftAppTenantId: required when MicrosoftAppType=SingleTenant (the App Tenant ID on the Azure Bot's Configuration page)",
        ],
      }),
    );
  });

  it('configures Azure OpenAI v1 by endpoint, key, version and deployment name', () => {
    const config = loadConfig({
      AZURE_OPENAI_ENDPOINT: 'https://contoso.openai.azure.com/',
      AZURE_OPENAI_API_KEY: 'azure-key',
      OPENAI_API_VERSION: 'preview',
      CRUNCH_MODEL: 'my-gpt-deployment',
    });
    expect(config.openai).toMatchObject({
      provider: 'azure',
      apiKey: 'azure-key',
      baseURL: 'https://contoso.openai.azure.com/openai/v1',
      apiVersion: 'preview',
      model: 'my-gpt-deployment',
    });
  });

  it('reads Slack Socket Mode and the Teams tenant allow-list', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'sk',
      SLACK_BOT_TOKEN: 'xoxb-1',
      SLACK_APP_TOKEN: 'xapp-1',
      TEAMS_ALLOWED_TENANTS: ' t1, t2 ,,',
    });
    expect(config.slack).toEqual({ botToken: 'xoxb-1', appToken: 'xapp-1', signingSecret: undefined, apiUrl: undefined, allowedBotIds: [] });
    expect(config.teams.allowedTenants).toEqual(['t1', 't2']);
  });

  it('reads the Slack bots to answer, and names ids that are not bot ids', () => {
    const slack = { OPENAI_API_KEY: 'sk', SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' };
    expect(loadConfig({ ...slack, SLACK_ALLOWED_BOT_IDS: ' B0REPORTS1, ,B0ALERTS02 ' }).slack?.allowedBotIds).toEqual(['B0REPORTS1', 'B0ALERTS02']);
    expect(() => loadConfig({ ...slack, SLACK_ALLOWED_BOT_IDS: 'B0REPORTS1,U0ALICE001,A0APP' })).toThrowError(
      expect.objectContaining({
        problems: ["SLACK_ALLOWED_BOT_IDS: U0ALICE001, A0APP are not bot ids (B…, the bot_id of the bot's messages; see docs/slack.md)"],
      }),
    );
  });
});

describe('loadConfig: platform switches', () => {
  it('turns the Teams file consent card off with TEAMS_FILE_CONSENT=false, and on by default', () => {
    expect(loadConfig({ OPENAI_API_KEY: 'sk' }).teams.fileConsent).toBe(true);
    expect(loadConfig({ OPENAI_API_KEY: 'sk', TEAMS_FILE_CONSENT: 'false' }).teams.fileConsent).toBe(false);
  });

  it('reports SLACK_ALLOWED_BOT_IDS without a bot token instead of ignoring it', () => {
    expect(() => loadConfig({ OPENAI_API_KEY: 'sk', SLACK_ALLOWED_BOT_IDS: 'B123' })).toThrowError(
      expect.objectContaining({ problems: ['SLACK_BOT_TOKEN: required when SLACK_APP_TOKEN, SLACK_SIGNING_SECRET or SLACK_ALLOWED_BOT_IDS is set'] }),
    );
  });
});

describe('loadConfig: Teams endpoint', () => {
  it('serves Teams with an app id, or unauthenticated only when TEAMS_AUTH=off says so', () => {
    expect(loadConfig({ OPENAI_API_KEY: 'sk' }).teams.enabled).toBe(false);
    expect(loadConfig({ OPENAI_API_KEY: 'sk', MicrosoftAppId: 'a', MicrosoftAppPassword: 'p', MicrosoftAppTenantId: 't' }).teams.enabled).toBe(true);
    expect(loadConfig({ OPENAI_API_KEY: 'sk', TEAMS_AUTH: 'off' }).teams.enabled).toBe(true);
    expect(() => loadConfig({ OPENAI_API_KEY: 'sk', TEAMS_AUTH: 'off', MicrosoftAppId: 'a', MicrosoftAppPassword: 'p', MicrosoftAppTenantId: 't' })).toThrowError(
      expect.objectContaining({ problems: ['TEAMS_AUTH: "off" is only for local testing without MicrosoftAppId; remove one of the two'] }),
    );
  });
});

describe('loadConfig: the local engine', () => {
  it('keeps the hosted engine by default and gives the local engine sane defaults', () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-test' });
    expect(config.engine).toBe('responses');
    expect(config.local).toEqual({
      sandbox: 'bwrap',
      sessionsDir: './data/sessions',
      python: '/usr/bin/python3',
      idleMs: 15 * 60_000,
      poolSize: 2,
      maxSessions: 8,
      maxToolRounds: 12,
      contextTokens: 32_000,
      tmpBytes: 512 * 1024 * 1024,
      limits: {
        wallMs: 120_000,
        cpuSeconds: 60,
        memoryBytes: 2048 * 1024 * 1024,
        maxProcesses: 32,
        maxFileBytes: 512 * 1024 * 1024,
        maxOutputChars: 2_000_000,
      },
    });
  });

  it('reads CRUNCH_ENGINE=local with any OpenAI-compatible endpoint and names bad values', () => {
    const config = loadConfig({
      CRUNCH_ENGINE: 'local',
      OPENAI_API_KEY: 'local',
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      CRUNCH_MODEL: 'qwen2.5-coder',
      CRUNCH_SANDBOX: 'none',
      CRUNCH_EXEC_MEMORY_MB: '1024',
      CRUNCH_POOL_SIZE: '0',
    });
    expect(config).toMatchObject({ engine: 'local', openai: { baseURL: 'http://127.0.0.1:11434/v1', model: 'qwen2.5-coder' } });
    expect(config.local).toMatchObject({ sandbox: 'none', poolSize: 0, limits: { memoryBytes: 1024 * 1024 * 1024 } });

    expect(() => loadConfig({ OPENAI_API_KEY: 'k', CRUNCH_ENGINE: 'docker', CRUNCH_SANDBOX: 'firejail', CRUNCH_EXEC_MEMORY_MB: '10' })).toThrowError(
      expect.objectContaining({ problems: [expect.stringMatching(/^CRUNCH_ENGINE: /), expect.stringMatching(/^CRUNCH_SANDBOX: /), expect.stringMatching(/^CRUNCH_EXEC_MEMORY_MB: /)] }),
    );
  });
});

describe('loadConfig: Teams app type', () => {
  const bot = { OPENAI_API_KEY: 'sk', MicrosoftAppId: 'a', MicrosoftAppPassword: 'p' };

  it('defaults to a single-tenant bot, as docs/teams.md registers it', () => {
    expect(loadConfig({ ...bot, MicrosoftAppTenantId: 'tenant' }).teams).toMatchObject({ appType: 'SingleTenant', tenantId: 'tenant' });
    expect(loadConfig({ ...bot, MicrosoftAppType: 'MultiTenant' }).teams).toMatchObject({ appType: 'MultiTenant', tenantId: undefined });
  });

  it('names the tenant id a single-tenant bot needs, and the way out for a multi-tenant one', () => {
    expect(() => loadConfig(bot)).toThrowError(
      expect.objectContaining({
        problems: [
          "MicrosoftAppTenantId: required for a single-tenant bot, which MicrosoftAppType defaults to (see docs/teams.md): set it to the App Tenant ID on the Azure Bot's Configuration page, or set MicrosoftAppType=MultiTenant for an existing multi-tenant bot",
        ],
      }),
    );
    expect(() => loadConfig({ ...bot, MicrosoftAppType: 'UserAssignedMSI' })).toThrowError(
      expect.objectContaining({
        problems: ["MicrosoftAppTenantId: required when MicrosoftAppType=UserAssignedMSI (the App Tenant ID on the Azure Bot's Configuration page)"],
      }),
    );
  });

  it('asks nothing of Teams when no app id is set', () => {
    expect(loadConfig({ OPENAI_API_KEY: 'sk' }).teams).toMatchObject({ enabled: false, appType: 'SingleTenant' });
  });
});

describe('governance settings', () => {
  it('default to open: everyone, no budgets, no receipts, 30 days, no audit log', () => {
    expect(loadConfig({ OPENAI_API_KEY: 'sk-test' }).governance).toEqual({
      allowedWorkspaces: { slack: [], teams: [] },
      allowedChannels: [],
      allowedUsers: [],
      adminContact: undefined,
      prices: {},
      budgets: { userDailyUsd: undefined, channelDailyUsd: undefined, monthlyUsd: undefined },
      showCost: false,
      retentionMs: undefined,
      auditLog: undefined,
      auditText: false,
    });
  });

  it('reads lists, budgets, prices, the retention and the audit log', () => {
    const governance = loadConfig({
      OPENAI_API_KEY: 'sk-test',
      CRUNCH_ALLOWED_CHANNELS: ' C1, dm ,',
      CRUNCH_ALLOWED_USERS: 'U1',
      SLACK_ALLOWED_TEAMS: 'T1,T2',
      TEAMS_ALLOWED_TENANTS: 'tenant-a',
      CRUNCH_ADMIN_CONTACT: '#it-help',
      CRUNCH_BUDGET_USER_DAILY_USD: '0.50',
      CRUNCH_BUDGET_CHANNEL_DAILY_USD: '$5',
      CRUNCH_BUDGET_MONTHLY_USD: '100',
      CRUNCH_PRICES: '{"models":{"my-gpt":{"input":1,"cachedInput":0.1,"output":4}},"sandboxes":{"1g":0.05}}',
      CRUNCH_SHOW_COST: 'yes',
      CRUNCH_RETENTION: '12h',
      CRUNCH_AUDIT_LOG: 'stdout',
      CRUNCH_AUDIT_TEXT: 'true',
    }).governance;
    expect(governance).toEqual({
      allowedWorkspaces: { slack: ['T1', 'T2'], teams: ['tenant-a'] },
      allowedChannels: ['C1', 'dm'],
      allowedUsers: ['U1'],
      adminContact: '#it-help',
      prices: { models: { 'my-gpt': { input: 1, cachedInput: 0.1, output: 4 } }, sandboxes: { '1g': 0.05 } },
      budgets: { userDailyUsd: 0.5, channelDailyUsd: 5, monthlyUsd: 100 },
      showCost: true,
      retentionMs: 12 * 3600_000,
      auditLog: 'stdout',
      auditText: true,
    });
    for (const [value, ms] of [['3s', 3000], ['90m', 5_400_000], ['30d', 2_592_000_000], ['2w', 1_209_600_000]] as const) {
      expect(loadConfig({ OPENAI_API_KEY: 'k', CRUNCH_RETENTION: value }).governance.retentionMs).toBe(ms);
    }
  });

  it('names malformed budgets, prices and retentions', () => {
    let error: unknown;
    try {
      loadConfig({
        OPENAI_API_KEY: 'k',
        CRUNCH_BUDGET_USER_DAILY_USD: 'lots',
        CRUNCH_BUDGET_MONTHLY_USD: '-3',
        CRUNCH_PRICES: '{"models":{"x":{"input":"cheap"}}}',
        CRUNCH_RETENTION: '30 days',
      });
    } catch (err) {
      error = err;
    }
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^CRUNCH_BUDGET_USER_DAILY_USD: must be a positive amount of US dollars/m);
    expect(problems).toMatch(/^CRUNCH_BUDGET_MONTHLY_USD: must be a positive amount/m);
    expect(problems).toMatch(/^CRUNCH_PRICES: US dollars per million tokens per model .*models\.x\.input/m);
    expect(problems).toMatch(/^CRUNCH_RETENTION: must be a duration like 30d, 12h, 90m or 3s/m);
    expect(() => loadConfig({ OPENAI_API_KEY: 'k', CRUNCH_PRICES: '{nope' })).toThrow(/CRUNCH_PRICES: must be JSON/);
  });
});
