import { keys } from '../keys.js';
import type { Store } from '../store/index.js';
import type { Turn } from '../turn.js';
import { askWhom, type Refusal } from './access.js';
import { formatUsd, toMicros } from './prices.js';

/**
 * Spending limits in US dollars (CRUNCH_BUDGET_*): per person per day, per channel per day, and for
 * everyone per month, in UTC. Spend is counted in the store's counters (shared by replicas on Redis) once
 * a turn's cost is known; a turn that would start with a limit reached is refused before any model call.
 * Turns running at the same moment may each pass the check, so a limit can be overshot by what they cost.
 */
export interface Budgets {
  userDailyUsd: number | undefined;
  channelDailyUsd: number | undefined;
  monthlyUsd: number | undefined;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Counters outlive their period by a day, then expire on their own. */
const DAILY_TTL_MS = 2 * DAY_MS;
const MONTHLY_TTL_MS = 32 * DAY_MS;

interface Scope {
  key: string;
  limit: number | undefined;
  ttlMs: number;
}

function scopes(turn: Turn, budgets: Budgets, now: Date): { user: Scope; channel: Scope; month: Scope } {
  const day = now.toISOString().slice(0, 10);
  const month = now.toISOString().slice(0, 7);
  const { platform, workspace, channel } = turn.conversation;
  return {
    user: { key: keys.spendUser(day, platform, workspace, turn.user.id), limit: budgets.userDailyUsd, ttlMs: DAILY_TTL_MS },
    channel: { key: keys.spendChannel(day, platform, workspace, channel), limit: budgets.channelDailyUsd, ttlMs: DAILY_TTL_MS },
    month: { key: keys.spendMonth(month), limit: budgets.monthlyUsd, ttlMs: MONTHLY_TTL_MS },
  };
}

/** The refusal when one of the turn's limits is reached already, or undefined. */
export async function checkBudgets(store: Store, turn: Turn, budgets: Budgets, now: Date, adminContact: string | undefined): Promise<Refusal | undefined> {
  const { user, channel, month } = scopes(turn, budgets, now);
  const reached = async (scope: Scope) => scope.limit !== undefined && (await store.counters.read(scope.key)) >= toMicros(scope.limit);
  const ask = askWhom({ adminContact });
  if (await reached(month)) {
    const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const on = next.toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
    return { reason: 'budget', line: `Crunch has used this month's budget (${formatUsd(month.limit!)} for everyone). It resets on ${on} (UTC). ${ask} if it should be raised.` };
  }
  const resets = `It resets at midnight UTC, in ${untilMidnight(now)}.`;
  if (await reached(user)) {
    return { reason: 'budget', line: `You have used today's Crunch budget (${formatUsd(user.limit!)} a person a day). ${resets} ${ask} if you need more.` };
  }
  if (await reached(channel)) {
    return { reason: 'budget', line: `This conversation's channel has used today's Crunch budget (${formatUsd(channel.limit!)} a day). ${resets}` };
  }
  return undefined;
}

/** Adds a turn's cost to the counters of the limits that are set. */
export async function chargeBudgets(store: Store, turn: Turn, budgets: Budgets, usd: number, now: Date): Promise<void> {
  const micros = toMicros(usd);
  if (micros <= 0) return;
  await Promise.all(Object.values(scopes(turn, budgets, now)).map((scope) => (scope.limit === undefined ? undefined : store.counters.add(scope.key, micros, scope.ttlMs))));
}

export function anyBudget(budgets: Budgets): boolean {
  return budgets.userDailyUsd !== undefined || budgets.channelDailyUsd !== undefined || budgets.monthlyUsd !== undefined;
}

function untilMidnight(now: Date): string {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  const minutes = Math.max(1, Math.ceil((midnight - now.getTime()) / 60_000));
  const hours = Math.floor(minutes / 60);
  if (hours === 0) return `${minutes} min`;
  return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
}
