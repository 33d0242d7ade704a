import { z } from 'zod';
import { commaList, governanceConfig, type GovernanceConfig, governanceEnv } from './governance.js';
import { localConfig, type LocalConfig, localEngineEnv } from './local.js';

export type { GovernanceConfig } from './governance.js';
export type { LocalConfig } from './local.js';

/**
 * The whole configuration, read once from the environment at start-up. Every missing or malformed
 * variable is named in one `ConfigError`, so a person fixes them all in one go.
 */

const DEFAULT_INSTRUCTIONS = [
  'You are Crunch, a data analyst and mathematician working inside a chat (Slack or Microsoft Teams).',
  'You have a Python code interpreter. The files the user shared are in /mnt/data; open them by name.',
  'Always compute with code rather than by guessing: load the data, inspect its shape and columns first,',
  'then answer. For math, solve symbolically with sympy where possible and check the result numerically.',
  'When a chart helps, draw it with matplotlib, give it a title and labelled axes, and save it as a PNG',
  'in /mnt/data (plt.savefig(..., dpi=150, bbox_inches="tight")); do not just call plt.show().',
  'Save any table or file the user should download (csv, xlsx, …) in /mnt/data as well.',
  'Answer in concise markdown: the result first, then a short explanation; use small tables where they help.',
  'Never print secrets or environment variables. If a file cannot be read, say which one and why.',
].join(' ');

const positiveInt = z.coerce.number().int().positive();
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const url = z.string().url();
/** true/false/1/0/yes/no; unset or empty means `fallback`. */
const flag = (fallback: boolean) =>
  optionalString
    .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']).optional())
    .transform((v) => (v === undefined ? fallback : v === 'true' || v === '1' || v === 'yes'));

const storeUrl = z
  .string()
  .default('sqlite://./data/crunch.sqlite')
  .refine((v) => /^(sqlite|redis|rediss|memory):\/\//.test(v), {
    message: 'must start with sqlite://, redis://, rediss:// or memory://',
  });

const schema = z.object({
  PORT: positiveInt.max(65535).default(3978),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  STORE_URL: storeUrl,

  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(url.optional()),
  AZURE_OPENAI_ENDPOINT: optionalString.pipe(url.optional()),
  AZURE_OPENAI_API_KEY: optionalString,
  OPENAI_API_VERSION: optionalString,
  CRUNCH_MODEL: z.string().trim().min(1).default('gpt-4.1'),
  CRUNCH_INSTRUCTIONS: optionalString,

  CRUNCH_MAX_FILE_BYTES: positiveInt.max(512 * 1024 * 1024).default(100 * 1024 * 1024),
  CRUNCH_MAX_FILES_PER_TURN: positiveInt.max(100).default(10),
  CRUNCH_TURN_TIMEOUT_MS: positiveInt.default(10 * 60 * 1000),
  CRUNCH_MAX_ATTEMPTS: positiveInt.max(10).default(4),
  CRUNCH_RETRY_BASE_DELAY_MS: z.coerce.number().int().min(0).default(1000),
  CRUNCH_CONCURRENCY: positiveInt.max(10_000).default(64),
  CRUNCH_DRAIN_MS: z.coerce.number().int().min(0).default(25_000),
  CRUNCH_TAKEOVER_MS: z.coerce.number().int().min(1000).default(20_000),

  ...localEngineEnv,
  ...governanceEnv,

  SLACK_BOT_TOKEN: optionalString,
  SLACK_SIGNING_SECRET: optionalString,
  SLACK_APP_TOKEN: optionalString,
  SLACK_API_URL: optionalString.pipe(url.optional()),
  SLACK_ALLOWED_BOT_IDS: commaList,

  MicrosoftAppId: optionalString,
  MicrosoftAppPassword: optionalString,
  MicrosoftAppType: z.enum(['MultiTenant', 'SingleTenant', 'UserAssignedMSI']).optional(),
  MicrosoftAppTenantId: optionalString,
  TEAMS_ALLOWED_TENANTS: commaList,
  TEAMS_GRAPH_FILES: flag(false),
  TEAMS_STREAMING: flag(true),
  TEAMS_FILE_CONSENT: flag(true),
  TEAMS_AUTH: z.enum(['on', 'off']).default('on'),
  TEAMS_FILE_URL_SECRET: optionalString,
  PUBLIC_URL: optionalString.pipe(url.optional()),
});

type Env = z.infer<typeof schema>;

export interface OpenAIConfig {
  /** "openai" talks to api.openai.com (or OPENAI_BASE_URL); "azure" to the resource's /openai/v1 endpoint. */
  provider: 'openai' | 'azure';
  apiKey: string;
  baseURL: string | undefined;
  apiVersion: string | undefined;
  model: string;
  instructions: string;
}

export interface LimitsConfig {
  maxFileBytes: number;
  maxFilesPerTurn: number;
  turnTimeoutMs: number;
  /** Attempts per engine call, first one included; the OpenAI SDK's own retries are off (see README). */
  maxAttempts: number;
  retryBaseDelayMs: number;
  /** Conversations this process works on at once (CRUNCH_CONCURRENCY); more wait in the inbox. */
  concurrency: number;
  /** On SIGTERM/SIGINT, how long turns in flight may finish before they are handed back (CRUNCH_DRAIN_MS). */
  drainMs: number;
  /** Redis: how long a replica may go silent before another takes over its conversations (CRUNCH_TAKEOVER_MS). */
  takeoverMs: number;
}

export interface SlackConfig {
  botToken: string;
  signingSecret: string | undefined;
  appToken: string | undefined;
  apiUrl: string | undefined;
  /** SLACK_ALLOWED_BOT_IDS: other bots (B…) answered like people; every other bot is ignored, and so is Crunch itself. */
  allowedBotIds: string[];
}

export interface TeamsConfig {
  /**
   * Whether /api/messages is served: with MicrosoftAppId (every request's token verified), or with
   * TEAMS_AUTH=off and no app id (unauthenticated, loopback only: the Agents Playground).
   */
  enabled: boolean;
  appId: string | undefined;
  appPassword: string | undefined;
  appType: 'MultiTenant' | 'SingleTenant' | 'UserAssignedMSI';
  tenantId: string | undefined;
  allowedTenants: string[];
  /** TEAMS_GRAPH_FILES: fetch channel and group-chat files through Microsoft Graph (admin-granted permissions). */
  graphFiles: boolean;
  /** TEAMS_STREAMING: stream answers in personal chats. */
  streaming: boolean;
  /** TEAMS_FILE_CONSENT: offer generated files with the file consent card (OneDrive) in personal chats. */
  fileConsent: boolean;
  /** TEAMS_FILE_URL_SECRET: key for signed chart/file links; derived from MicrosoftAppPassword when unset. */
  fileUrlSecret: string | undefined;
}

export interface Config {
  port: number;
  logLevel: Env['LOG_LEVEL'];
  /** LOG_FORMAT: pretty lines on a terminal and JSON otherwise (auto), or always one of them. */
  logFormat: Env['LOG_FORMAT'];
  storeUrl: string;
  /** The bot's public base URL, for links it serves itself (e.g. signed chart URLs). */
  publicUrl: string;
  /** Which code interpreter answers: the hosted one (Responses API) or the local sandbox. */
  engine: 'responses' | 'local';
  openai: OpenAIConfig | undefined;
  local: LocalConfig;
  limits: LimitsConfig;
  slack: SlackConfig | undefined;
  teams: TeamsConfig;
  governance: GovernanceConfig;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  /** Require an OpenAI or Azure OpenAI key (the CLI and the bot do; `crunch help` does not). */
  requireEngine?: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadConfigOptions = {}): Config {
  const parsed = schema.safeParse(env);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  const e = parsed.data;

  const openai = openAIConfig(e, problems, options.requireEngine ?? true);

  let slack: SlackConfig | undefined;
  if (e.SLACK_BOT_TOKEN !== undefined) {
    if (!e.SLACK_BOT_TOKEN.startsWith('xoxb-')) problems.push('SLACK_BOT_TOKEN: must be a bot token starting with xoxb-');
    if (e.SLACK_APP_TOKEN !== undefined && !e.SLACK_APP_TOKEN.startsWith('xapp-'))
      problems.push('SLACK_APP_TOKEN: must be an app-level token starting with xapp- (Socket Mode)');
    if (e.SLACK_APP_TOKEN === undefined && e.SLACK_SIGNING_SECRET === undefined)
      problems.push('SLACK_SIGNING_SECRET: required for the HTTP Events API (or set SLACK_APP_TOKEN for Socket Mode)');
    const allowedBotIds = e.SLACK_ALLOWED_BOT_IDS;
    const notBotIds = allowedBotIds.filter((id) => !/^B[A-Z0-9]+$/.test(id));
    if (notBotIds.length > 0)
      problems.push(
        `SLACK_ALLOWED_BOT_IDS: ${notBotIds.join(', ')} ${notBotIds.length === 1 ? 'is not a bot id' : 'are not bot ids'} (B…, the bot_id of the bot's messages; see docs/slack.md)`,
      );
    slack = {
      botToken: e.SLACK_BOT_TOKEN,
      signingSecret: e.SLACK_SIGNING_SECRET,
      appToken: e.SLACK_APP_TOKEN,
      apiUrl: e.SLACK_API_URL,
      allowedBotIds,
    };
  } else if (e.SLACK_APP_TOKEN !== undefined || e.SLACK_SIGNING_SECRET !== undefined || e.SLACK_ALLOWED_BOT_IDS.length > 0) {
    problems.push('SLACK_BOT_TOKEN: required when SLACK_APP_TOKEN, SLACK_SIGNING_SECRET or SLACK_ALLOWED_BOT_IDS is set');
  }

  // Single-tenant by default: Azure no longer creates multi-tenant bots, and docs/teams.md registers a single-tenant one.
  const appType = e.MicrosoftAppType ?? 'SingleTenant';
  if (e.MicrosoftAppId !== undefined && appType !== 'UserAssignedMSI' && e.MicrosoftAppPassword === undefined)
    problems.push('MicrosoftAppPassword: required with MicrosoftAppId (unless MicrosoftAppType=UserAssignedMSI)');
  if (appType !== 'MultiTenant' && e.MicrosoftAppTenantId === undefined && e.MicrosoftAppId !== undefined)
    problems.push(
      e.MicrosoftAppType === undefined
        ? "MicrosoftAppTenantId: required for a single-tenant bot, which MicrosoftAppType defaults to (see docs/teams.md): set it to the App Tenant ID on the Azure Bot's Configuration page, or set MicrosoftAppType=MultiTenant for an existing multi-tenant bot"
        : `MicrosoftAppTenantId: required when MicrosoftAppType=${appType} (the App Tenant ID on the Azure Bot's Configuration page)`,
    );
  if (e.TEAMS_GRAPH_FILES && (e.MicrosoftAppId === undefined || e.MicrosoftAppPassword === undefined))
    problems.push('TEAMS_GRAPH_FILES: needs MicrosoftAppId and MicrosoftAppPassword (Graph tokens use the client secret)');

  if (e.TEAMS_AUTH === 'off' && e.MicrosoftAppId !== undefined)
    problems.push('TEAMS_AUTH: "off" is only for local testing without MicrosoftAppId; remove one of the two');

  if (problems.length > 0) throw new ConfigError(problems);

  const allowedTenants = e.TEAMS_ALLOWED_TENANTS;
  return {
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    storeUrl: e.STORE_URL,
    publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    engine: e.CRUNCH_ENGINE,
    openai,
    local: localConfig(e),
    limits: {
      maxFileBytes: e.CRUNCH_MAX_FILE_BYTES,
      maxFilesPerTurn: e.CRUNCH_MAX_FILES_PER_TURN,
      turnTimeoutMs: e.CRUNCH_TURN_TIMEOUT_MS,
      maxAttempts: e.CRUNCH_MAX_ATTEMPTS,
      retryBaseDelayMs: e.CRUNCH_RETRY_BASE_DELAY_MS,
      concurrency: e.CRUNCH_CONCURRENCY,
      drainMs: e.CRUNCH_DRAIN_MS,
      takeoverMs: e.CRUNCH_TAKEOVER_MS,
    },
    slack,
    teams: {
      appId: e.MicrosoftAppId,
      appPassword: e.MicrosoftAppPassword,
      appType,
      tenantId: e.MicrosoftAppTenantId,
      allowedTenants,
      graphFiles: e.TEAMS_GRAPH_FILES,
      streaming: e.TEAMS_STREAMING,
      fileConsent: e.TEAMS_FILE_CONSENT,
      enabled: e.MicrosoftAppId !== undefined || e.TEAMS_AUTH === 'off',
      fileUrlSecret: e.TEAMS_FILE_URL_SECRET,
    },
    governance: governanceConfig(e, allowedTenants),
  };
}

function openAIConfig(e: Env, problems: string[], required: boolean): OpenAIConfig | undefined {
  const instructions = e.CRUNCH_INSTRUCTIONS ?? DEFAULT_INSTRUCTIONS;
  if (e.AZURE_OPENAI_ENDPOINT !== undefined) {
    const apiKey = e.AZURE_OPENAI_API_KEY ?? e.OPENAI_API_KEY;
    if (apiKey === undefined) {
      problems.push('AZURE_OPENAI_API_KEY: required with AZURE_OPENAI_ENDPOINT');
      return undefined;
    }
    return {
      provider: 'azure',
      apiKey,
      baseURL: `${e.AZURE_OPENAI_ENDPOINT.replace(/\/+$/, '').replace(/\/openai(\/v1)?$/, '')}/openai/v1`,
      apiVersion: e.OPENAI_API_VERSION,
      model: e.CRUNCH_MODEL,
      instructions,
    };
  }
  if (e.OPENAI_API_KEY === undefined) {
    if (required) problems.push('OPENAI_API_KEY: required (or AZURE_OPENAI_ENDPOINT with AZURE_OPENAI_API_KEY)');
    return undefined;
  }
  return {
    provider: 'openai',
    apiKey: e.OPENAI_API_KEY,
    baseURL: e.OPENAI_BASE_URL,
    apiVersion: undefined,
    model: e.CRUNCH_MODEL,
    instructions,
  };
}
