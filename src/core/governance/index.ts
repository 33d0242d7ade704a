import type { AccessRules } from './access.js';
import type { AuditSink } from './audit.js';
import type { Budgets } from './budgets.js';
import { DEFAULT_PRICES, type PriceTable } from './prices.js';

/**
 * Who may use Crunch, what it may spend, how long data lives, and what is recorded: the admin's side of
 * every turn, applied by the core's journey (see README "For admins").
 */
export interface Governance {
  access: AccessRules;
  budgets: Budgets;
  prices: PriceTable;
  /** CRUNCH_SHOW_COST: every answer ends with its receipt line. */
  showCost: boolean;
  /** CRUNCH_RETENTION: a conversation idle this long is deleted everywhere. */
  retentionMs: number;
  audit: AuditSink | undefined;
  /** CRUNCH_AUDIT_TEXT: the audit log carries the question text too. */
  auditText: boolean;
}

export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** Everyone allowed, no budgets, list prices, no receipts, 30 days' retention, no audit log. */
export function openGovernance(overrides: Partial<Governance> = {}): Governance {
  return {
    access: { workspaces: {}, channels: [], users: [], adminContact: undefined },
    budgets: { userDailyUsd: undefined, channelDailyUsd: undefined, monthlyUsd: undefined },
    prices: DEFAULT_PRICES,
    showCost: false,
    retentionMs: DEFAULT_RETENTION_MS,
    audit: undefined,
    auditText: false,
    ...overrides,
  };
}

export type { AccessRules, Refusal, RefusalReason } from './access.js';
export { checkAccess, DIRECT_MESSAGES } from './access.js';
export type { AuditEntry, AuditSink } from './audit.js';
export type { Budgets } from './budgets.js';
export { anyBudget, chargeBudgets, checkBudgets } from './budgets.js';
export type { Cost, ModelPrice, PriceTable } from './prices.js';
export { costOf, DEFAULT_PRICES, formatReceipt, formatUsd, priceOf, withPrices } from './prices.js';
export type { UsageGrouping, UsageRecord, UsageRow } from './usage.js';
export { recordUsage, USAGE_KEEP_MS, USAGE_TIMELINE, usageReport } from './usage.js';
