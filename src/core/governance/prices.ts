import type { EngineUsage } from '../engine.js';

/**
 * What a turn costs, from the usage the provider reports: tokens by the model's list price, plus the hosted
 * sandbox sessions it opened. Prices are approximate by nature (discounts, Batch, regional surcharges and
 * Azure's own price list differ): operators override or add models with CRUNCH_PRICES.
 */

/** US dollars per million tokens. */
export interface ModelPrice {
  input: number;
  /** Input tokens served from the prompt cache. */
  cachedInput: number;
  output: number;
}

export interface PriceTable {
  /** By model family ("gpt-4.1"); a dated snapshot ("gpt-4.1-2025-04-14") takes its family's price. */
  models: { [model: string]: ModelPrice };
  /** US dollars per hosted sandbox session, by memory tier ("1g"). */
  sandboxes: { [tier: string]: number };
}

/** OpenAI's list prices (standard tier, short context), checked against its pricing page in November 2026. */
export const DEFAULT_PRICES: PriceTable = {
  models: {
    'gpt-5.5': { input: 5, cachedInput: 0.5, output: 30 },
    'gpt-5.4': { input: 2.5, cachedInput: 0.25, output: 15 },
    'gpt-5.4-mini': { input: 0.75, cachedInput: 0.075, output: 4.5 },
    'gpt-5.4-nano': { input: 0.2, cachedInput: 0.02, output: 1.25 },
    'gpt-5.2': { input: 1.75, cachedInput: 0.175, output: 14 },
    'gpt-5.1': { input: 1.25, cachedInput: 0.125, output: 10 },
    'gpt-5': { input: 1.25, cachedInput: 0.125, output: 10 },
    'gpt-5-mini': { input: 0.25, cachedInput: 0.025, output: 2 },
    'gpt-5-nano': { input: 0.05, cachedInput: 0.005, output: 0.4 },
    'gpt-4.1': { input: 2, cachedInput: 0.5, output: 8 },
    'gpt-4.1-mini': { input: 0.4, cachedInput: 0.1, output: 1.6 },
    'gpt-4.1-nano': { input: 0.1, cachedInput: 0.025, output: 0.4 },
    'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
    'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6 },
    o3: { input: 2, cachedInput: 0.5, output: 8 },
    'o4-mini': { input: 1.1, cachedInput: 0.275, output: 4.4 },
  },
  // Code interpreter containers, per session (a session lasts until 20 idle minutes pass).
  sandboxes: { '1g': 0.03, '4g': 0.12, '16g': 0.48, '64g': 1.92 },
};

/** The default table with an operator's prices on top (CRUNCH_PRICES). */
export function withPrices(overrides: Partial<PriceTable>): PriceTable {
  return {
    models: { ...DEFAULT_PRICES.models, ...overrides.models },
    sandboxes: { ...DEFAULT_PRICES.sandboxes, ...overrides.sandboxes },
  };
}

/** The model's price: an exact name first, then its family without a date suffix ("-2025-04-14"). */
export function priceOf(model: string, table: PriceTable): ModelPrice | undefined {
  const name = model.trim().toLowerCase();
  return table.models[name] ?? table.models[model.trim()] ?? table.models[name.replace(/-\d{4}-\d{2}-\d{2}$/, '')];
}

export interface Cost {
  /** Approximate US dollars; undefined when the model (or a sandbox tier) has no known price. */
  usd: number | undefined;
  sandboxSessions: number;
}

export function costOf(usage: EngineUsage, table: PriceTable): Cost {
  const price = priceOf(usage.model, table);
  const cached = Math.min(usage.cachedTokens, usage.inputTokens);
  const tokens = price === undefined ? undefined : ((usage.inputTokens - cached) * price.input + cached * price.cachedInput + usage.outputTokens * price.output) / 1e6;
  let sandboxSessions = 0;
  let sandboxes: number | undefined = 0;
  for (const [tier, count] of Object.entries(usage.sandboxes)) {
    sandboxSessions += count;
    const each = table.sandboxes[tier];
    sandboxes = each === undefined || sandboxes === undefined ? undefined : sandboxes + each * count;
  }
  return { usd: tokens === undefined || sandboxes === undefined ? undefined : tokens + sandboxes, sandboxSessions };
}

/** Whole micro-dollars, for counters (integers add exactly, on every backend). */
export function toMicros(usd: number): number {
  return Math.round(usd * 1e6);
}

/** "$0.04", "$0.0031", "$12.50": two decimals, or two significant digits below a cent. */
export function formatUsd(usd: number): string {
  if (usd === 0) return '$0.00';
  if (usd < 0.0001) return '<$0.0001';
  if (usd < 0.01) return `$${usd.toPrecision(2).replace(/0+$/, '')}`;
  return `$${usd.toFixed(2)}`;
}

/** The receipt line of an answer: "12,345 tokens (3,000 cached) · 1 sandbox session · ≈ $0.04". */
export function formatReceipt(usage: { model: string; inputTokens: number; cachedTokens: number; outputTokens: number; sandboxSessions: number; costUsd?: number }): string {
  const count = (n: number) => n.toLocaleString('en-US');
  const tokens = usage.inputTokens + usage.outputTokens;
  const parts = [`${count(tokens)} tokens${usage.cachedTokens > 0 ? ` (${count(usage.cachedTokens)} cached)` : ''}`];
  if (usage.sandboxSessions > 0) parts.push(`${usage.sandboxSessions} sandbox session${usage.sandboxSessions === 1 ? '' : 's'}`);
  parts.push(usage.costUsd === undefined ? `cost unknown (no price for ${usage.model})` : `≈ ${formatUsd(usage.costUsd)}`);
  return parts.join(' · ');
}
