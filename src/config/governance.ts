import { z } from 'zod';

/** Who may use Crunch, what it may spend, how long data lives, the audit log (README, "For admins"). */

/** Comma-separated ids, trimmed, empties dropped. */
export const commaList = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((id) => id.trim())
      .filter((id) => id !== ''),
  );
const usd = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return undefined;
    const amount = Number(v.trim().replace(/^\$/, ''));
    if (!Number.isFinite(amount) || amount <= 0) ctx.addIssue({ code: 'custom', message: 'must be a positive amount of US dollars, like 5 or 0.50' });
    return amount;
  });
const text = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const UNITS: { [unit: string]: number } = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "90m", "3s", "2w" → milliseconds. */
export function parseDuration(value: string): number | undefined {
  const match = /^(\d+)\s*([smhdw])$/i.exec(value.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNITS[match[2]!.toLowerCase()]!;
  return ms > 0 ? ms : undefined;
}

const duration = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return undefined;
    const ms = parseDuration(v);
    if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be a duration like 30d, 12h, 90m or 3s' });
    return ms;
  });

const price = z.object({ input: z.number().min(0), cachedInput: z.number().min(0), output: z.number().min(0) }).strict();
const prices = z
  .object({ models: z.record(z.string(), price).optional(), sandboxes: z.record(z.string(), z.number().min(0)).optional() })
  .strict();
const pricesJson = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON, like {"models":{"my-model":{"input":2,"cachedInput":0.5,"output":8}},"sandboxes":{"1g":0.03}}' });
      return {};
    }
    const checked = prices.safeParse(parsed);
    if (!checked.success) {
      ctx.addIssue({ code: 'custom', message: `US dollars per million tokens per model ({"input","cachedInput","output"}) and per sandbox session by tier: ${checked.error.issues.map((i) => `${i.path.join('.') || '(top)'} ${i.message}`).join('; ')}` });
      return {};
    }
    return checked.data;
  });
const flag = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim().toLowerCase()))
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']).optional())
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const governanceEnv = {
  CRUNCH_ALLOWED_CHANNELS: commaList,
  CRUNCH_ALLOWED_USERS: commaList,
  SLACK_ALLOWED_TEAMS: commaList,
  CRUNCH_ADMIN_CONTACT: text,
  CRUNCH_PRICES: pricesJson,
  CRUNCH_BUDGET_USER_DAILY_USD: usd,
  CRUNCH_BUDGET_CHANNEL_DAILY_USD: usd,
  CRUNCH_BUDGET_MONTHLY_USD: usd,
  CRUNCH_SHOW_COST: flag,
  CRUNCH_RETENTION: duration,
  CRUNCH_AUDIT_LOG: text,
  CRUNCH_AUDIT_TEXT: flag,
};

type GovernanceEnv = z.infer<z.ZodObject<typeof governanceEnv>>;

export interface GovernanceConfig {
  /** Allowed workspaces by platform: SLACK_ALLOWED_TEAMS, TEAMS_ALLOWED_TENANTS. */
  allowedWorkspaces: { slack: string[]; teams: string[] };
  allowedChannels: string[];
  allowedUsers: string[];
  adminContact: string | undefined;
  /** CRUNCH_PRICES: models and sandbox tiers priced on top of the built-in table. */
  prices: { models?: { [model: string]: { input: number; cachedInput: number; output: number } }; sandboxes?: { [tier: string]: number } };
  budgets: { userDailyUsd: number | undefined; channelDailyUsd: number | undefined; monthlyUsd: number | undefined };
  showCost: boolean;
  /** CRUNCH_RETENTION; undefined keeps the default (30 days). */
  retentionMs: number | undefined;
  /** A file path, or "stdout". */
  auditLog: string | undefined;
  auditText: boolean;
}

export function governanceConfig(e: GovernanceEnv, teamsTenants: string[]): GovernanceConfig {
  return {
    allowedWorkspaces: { slack: e.SLACK_ALLOWED_TEAMS, teams: teamsTenants },
    allowedChannels: e.CRUNCH_ALLOWED_CHANNELS,
    allowedUsers: e.CRUNCH_ALLOWED_USERS,
    adminContact: e.CRUNCH_ADMIN_CONTACT,
    prices: e.CRUNCH_PRICES,
    budgets: { userDailyUsd: e.CRUNCH_BUDGET_USER_DAILY_USD, channelDailyUsd: e.CRUNCH_BUDGET_CHANNEL_DAILY_USD, monthlyUsd: e.CRUNCH_BUDGET_MONTHLY_USD },
    showCost: e.CRUNCH_SHOW_COST,
    retentionMs: e.CRUNCH_RETENTION,
    auditLog: e.CRUNCH_AUDIT_LOG,
    auditText: e.CRUNCH_AUDIT_TEXT,
  };
}
