import type { Config, OpenAIConfig, SlackConfig, TeamsConfig } from '../config/index.js';
import { printableLine } from './text.js';

/**
 * Checks of the configuration against the live services, for `crunch doctor` (all of them) and `crunch serve`
 * (the key and model, at start-up). Each says what it found and, when something needs fixing, how.
 */
export interface Check {
  /** ok; fix: the configuration is wrong (a refused key, a missing scope); unreachable: the service did not answer. */
  outcome: 'ok' | 'fix' | 'unreachable';
  /** "OpenAI", "Slack", "store"… */
  subject: string;
  detail: string;
  /** What to do about it. */
  fix?: string;
}

/** How long a check waits for a service (the store's own start-up wait for Redis is 10 s, and says more). */
const CHECK_TIMEOUT_MS = 15_000;

/** The bot scopes manifest/slack/manifest.yaml asks for (a test keeps the two the same). */
export const SLACK_BOT_SCOPES = ['app_mentions:read', 'chat:write', 'files:read', 'files:write', 'im:history', 'channels:history', 'groups:history'];

const ok = (subject: string, detail: string): Check => ({ outcome: 'ok', subject, detail });
const fix = (subject: string, detail: string, how: string): Check => ({ outcome: 'fix', subject, detail, fix: how });
const unreachable = (subject: string, detail: string, how: string): Check => ({ outcome: 'unreachable', subject, detail, fix: how });

function messageOf(err: unknown): string {
  return printableLine(err instanceof Error ? err.message : String(err));
}

// ---- OpenAI / Azure OpenAI ----

const subjectOf = (api: OpenAIConfig) => (api.provider === 'azure' ? 'Azure OpenAI' : 'OpenAI');
const baseUrlOf = (api: OpenAIConfig) => (api.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '');

/** What to do about a refused key, per provider. */
function keyFix(api: OpenAIConfig): string {
  return api.provider === 'azure'
    ? 'set AZURE_OPENAI_API_KEY to a key of the resource (Azure portal → the resource → Keys and Endpoint) and AZURE_OPENAI_ENDPOINT to its endpoint'
    : 'set OPENAI_API_KEY to a valid key (https://platform.openai.com/api-keys); a key of a project that may use the model';
}

const MODEL_FIX =
  'set CRUNCH_MODEL to a model that offers the Responses API with the hosted code interpreter (e.g. gpt-4.1); on Azure, to the name of a deployment of such a model';

/** An error answer of the API: its status, and the `error` object of its body. */
interface ApiRefusal {
  status: number;
  code: string | undefined;
  message: string;
}

function couldNotReach(api: OpenAIConfig, err: unknown): Check {
  const cause = (err as { cause?: unknown }).cause;
  return unreachable(subjectOf(api), `could not reach ${baseUrlOf(api)} (${messageOf(cause ?? err)})`, 'check the network, and OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT');
}

/** An error answer as a check: a refused key, a missing model, no quota, or a service in trouble. */
function refused(api: OpenAIConfig, { status, code, message }: ApiRefusal): Check {
  const subject = subjectOf(api);
  const codeText = code ? ` ${printableLine(code)}` : '';
  const said = printableLine(message);
  if (status === 401) return fix(subject, `${subject} refused the API key (401${codeText})`, keyFix(api));
  if (status === 403) return fix(subject, `${subject} refused the request (403${codeText}): ${said}`, keyFix(api));
  if (status === 404) return fix(subject, `model ${api.model} was not found (404${codeText})`, MODEL_FIX);
  if (status === 429 && code === 'insufficient_quota')
    return fix(subject, `${subject} says the account is out of quota or credit (429 insufficient_quota)`, 'add credit or raise the limit (https://platform.openai.com/settings/organization/billing), or use another key');
  if (status === 429 || status >= 500) return unreachable(subject, `${subject} answered ${status}${codeText}: ${said}`, 'try again in a minute (https://status.openai.com)');
  return fix(subject, `${subject} rejected the request (${status}${codeText}): ${said}`, MODEL_FIX);
}

/**
 * The key and the model, spending no tokens: GET /models/{model}, with a plain fetch (the server runs this at
 * start-up, and the SDK is not loaded before the first question). A 404 names a missing model only when it says
 * model_not_found, as OpenAI does: on Azure the model is a deployment, which that endpoint does not know, and some
 * OpenAI-compatible servers have no such endpoint; the key works all the same (`crunch doctor` tries the model).
 */
export async function modelCheck(api: OpenAIConfig): Promise<Check> {
  const url = new URL(`${baseUrlOf(api)}/models/${encodeURIComponent(api.model)}`);
  if (api.provider === 'azure' && api.apiVersion) url.searchParams.set('api-version', api.apiVersion);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: api.provider === 'azure' ? { 'api-key': api.apiKey } : { authorization: `Bearer ${api.apiKey}` },
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
    });
  } catch (err) {
    return couldNotReach(api, err);
  }
  const body = (await response.json().catch(() => ({}))) as { error?: { code?: unknown; message?: unknown } };
  if (response.ok) return ok(subjectOf(api), `the key works; model ${api.model} is available`);
  const code = typeof body.error?.code === 'string' ? body.error.code : undefined;
  if (response.status === 404 && (api.provider === 'azure' || code !== 'model_not_found')) return ok(subjectOf(api), 'the key works');
  return refused(api, { status: response.status, code, message: String(body.error?.message ?? response.statusText) });
}

/** That the model (or deployment) takes the code interpreter: one request of a few tokens that runs no code. */
export async function codeInterpreterCheck(api: OpenAIConfig): Promise<Check> {
  const [{ createOpenAIClient }, { APIConnectionError, APIError }] = await Promise.all([import('../engines/shared/client.js'), import('openai')]);
  try {
    await createOpenAIClient(api, CHECK_TIMEOUT_MS).responses.create({
      model: api.model,
      input: 'Reply with the word OK.',
      tools: [{ type: 'code_interpreter', container: { type: 'auto' } }],
      max_output_tokens: 16,
      store: false,
    });
    return ok(subjectOf(api), `${api.model} takes the code interpreter`);
  } catch (err) {
    if (err instanceof APIConnectionError) return couldNotReach(api, err);
    if (!(err instanceof APIError) || err.status === undefined) throw err;
    const message = String((err.error as { message?: unknown } | undefined)?.message ?? err.message);
    if (err.status === 400) return fix(subjectOf(api), `${api.model} did not take the code interpreter: ${printableLine(message)}`, MODEL_FIX);
    return refused(api, { status: err.status, code: typeof err.code === 'string' ? err.code : undefined, message });
  }
}

/** CRUNCH_ENGINE=local: the engine starts as `crunch serve` starts it, which checks its sandbox and Python. */
export async function localEngineCheck(config: Config): Promise<Check> {
  const { createEngine, createLogger } = await import('../app.js');
  const how = config.local.sandbox === 'bwrap' ? 'the bubblewrap sandbox' : 'Python without a sandbox (CRUNCH_SANDBOX=none)';
  try {
    const engine = await createEngine(config, createLogger('silent'));
    await engine.close();
    return ok('local engine', `${how} runs ${config.local.python}`);
  } catch (err) {
    return fix('local engine', messageOf(err), 'see the README, "The local engine", for what it needs (bubblewrap, Python with pandas and matplotlib)');
  }
}

// ---- Slack ----

interface SlackError {
  code?: string;
  data?: { error?: string };
}

function slackFailure(err: unknown, token: string, how: string): Check {
  const e = err as SlackError;
  if (e.code === 'slack_webapi_platform_error') return fix('Slack', `Slack refused ${token} (${printableLine(e.data?.error ?? 'error')})`, how);
  return unreachable('Slack', `could not reach Slack (${messageOf(err)})`, 'check the network, and SLACK_API_URL if it is set');
}

/** The bot token (auth.test) and the scopes the app was granted (x-oauth-scopes) against the manifest's; the app token. */
export async function slackChecks(slack: SlackConfig): Promise<Check[]> {
  const { WebClient } = await import('@slack/web-api');
  const options = {
    ...(slack.apiUrl !== undefined ? { slackApiUrl: slack.apiUrl.endsWith('/') ? slack.apiUrl : `${slack.apiUrl}/` } : {}),
    retryConfig: { retries: 0 },
    timeout: CHECK_TIMEOUT_MS,
  };
  const checks: Check[] = [];
  try {
    const auth = await new WebClient(slack.botToken, options).auth.test();
    const granted = auth.response_metadata?.scopes ?? [];
    const missing = SLACK_BOT_SCOPES.filter((s) => !granted.includes(s));
    const who = `bot @${printableLine(String(auth.user ?? '?'))} in ${printableLine(String(auth.team ?? '?'))}`;
    if (missing.length > 0) {
      checks.push(
        fix(
          'Slack',
          `SLACK_BOT_TOKEN works (${who}), but the app lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
          "add them under the app's OAuth & Permissions → Bot Token Scopes (manifest/slack/manifest.yaml lists them all), then reinstall the app to the workspace",
        ),
      );
    } else {
      const extra = granted.filter((s) => !SLACK_BOT_SCOPES.includes(s));
      checks.push(ok('Slack', `SLACK_BOT_TOKEN works (${who}) with every scope Crunch needs${extra.length > 0 ? `; also granted, unused: ${extra.join(', ')}` : ''}`));
    }
  } catch (err) {
    checks.push(slackFailure(err, 'SLACK_BOT_TOKEN', "copy the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions) into SLACK_BOT_TOKEN"));
  }
  if (slack.appToken !== undefined) {
    try {
      await new WebClient(slack.appToken, options).apps.connections.open();
      checks.push(ok('Slack', 'SLACK_APP_TOKEN works (Socket Mode)'));
    } catch (err) {
      checks.push(slackFailure(err, 'SLACK_APP_TOKEN', 'create an app-level token with connections:write (Basic Information → App-Level Tokens) and put it in SLACK_APP_TOKEN'));
    }
  }
  return checks;
}

// ---- Teams ----

/** What only `crunch doctor` reads from the environment (documented in .env.example). */
export function doctorSettings(env: NodeJS.ProcessEnv): { teamsLoginUrl: string | undefined } {
  return { teamsLoginUrl: env.TEAMS_LOGIN_URL?.trim() || undefined };
}

/**
 * Where the bot gets its own token, tenant included: its tenant for a single-tenant bot, botframework.com for a
 * multi-tenant one; `override` (TEAMS_LOGIN_URL) instead, e.g. a test's fake or a private cloud's authority.
 */
export function teamsAuthority(teams: TeamsConfig, override: string | undefined): string {
  const tenant = teams.appType === 'MultiTenant' ? 'botframework.com' : (teams.tenantId ?? '');
  return (override?.trim() || `https://login.microsoftonline.com/${tenant}`).replace(/\/+$/, '');
}

/** The bot's own token: a client-credentials grant from its authority (`teamsAuthority`). */
export async function teamsCheck(teams: TeamsConfig, authority: string): Promise<Check> {
  if (teams.appId === undefined) return ok('Teams', 'local mode (TEAMS_AUTH=off): no credentials to check');
  if (teams.appType === 'UserAssignedMSI') return ok('Teams', 'a managed identity gets its token only inside Azure: not checked here');
  const tokenUrl = `${authority}/oauth2/v2.0/token`;
  let response: Response;
  try {
    response = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: teams.appId, client_secret: teams.appPassword ?? '', scope: 'https://api.botframework.com/.default' }),
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
    });
  } catch (err) {
    return unreachable('Teams', `could not reach ${tokenUrl} (${messageOf(err)})`, 'check the network');
  }
  const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; error?: unknown; error_description?: unknown };
  if (response.ok && typeof body.access_token === 'string') return ok('Teams', `MicrosoftAppId and MicrosoftAppPassword work (${teams.appType})`);
  const said = printableLine(String(body.error_description ?? '').split('\n')[0] ?? '');
  return fix(
    'Teams',
    `the bot's token was refused (${response.status} ${printableLine(String(body.error ?? ''))}${said ? `: ${said}` : ''})`,
    'check MicrosoftAppId and MicrosoftAppPassword (a client secret of the app registration: its value, not its id; secrets expire), and that MicrosoftAppType and MicrosoftAppTenantId match the bot (a single-tenant bot: SingleTenant and its tenant id)',
  );
}

// ---- Store ----

/** "redis://:secret@host" → "redis://host": a store URL fit to print. */
function withoutPassword(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

export async function storeCheck(config: Config): Promise<Check> {
  const where = withoutPassword(config.storeUrl);
  if (where.startsWith('memory:')) return ok('store', 'memory:// keeps nothing across restarts (for tests)');
  const { DEDUPE_TTL_MS, JOINED_TTL_MS, openStorage } = await import('../core/index.js');
  const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS).unref());
  try {
    const storage = await Promise.race([
      openStorage(config.storeUrl, { dedupeMs: DEDUPE_TTL_MS, joinedMs: JOINED_TTL_MS, privateInbox: true, takeoverMs: config.limits.takeoverMs }),
      timeout,
    ]);
    try {
      await Promise.race([storage.ping(), timeout]);
    } finally {
      await storage.close();
    }
    return ok('store', `${where} answers`);
  } catch (err) {
    return fix(
      'store',
      `${where} cannot be used (${messageOf(err)})`,
      where.startsWith('sqlite:') ? 'STORE_URL must name a file in a folder Crunch can write to' : 'check that Redis is running and reachable, and STORE_URL (host, port, password)',
    );
  }
}
