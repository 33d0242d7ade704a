import type { Json } from '../engine.js';
import type { Store } from '../store/index.js';

/**
 * The usage log: one record per answered turn (who, where, tokens, sandbox sessions, cost), in the store's
 * `usage` timeline under the turn's message key (a resumed turn overwrites its own record). `crunch usage`
 * reads it back per person or per channel. Records older than USAGE_KEEP_MS are trimmed.
 */
export const USAGE_TIMELINE = 'usage';
/** Thirteen months: a year of monthly reports, and the month before. */
export const USAGE_KEEP_MS = 400 * 24 * 60 * 60 * 1000;

export interface UsageRecord {
  platform: string;
  workspace: string;
  channel: string;
  user: string;
  /** Crunch's conversation id (conversationId). */
  conversation: string;
  engine: string;
  model: string;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  sandboxSessions: number;
  /** Approximate US dollars; null when the model had no known price. */
  costUsd: number | null;
}

export async function recordUsage(store: Store, messageKey: string, at: number, record: UsageRecord): Promise<void> {
  await store.timeline(USAGE_TIMELINE).put(messageKey, at, record as unknown as Json);
}

export type UsageGrouping = 'user' | 'channel';

export interface UsageRow {
  /** "slack/T123/U456" (by user) or "slack/T123/C789" (by channel). */
  key: string;
  platform: string;
  workspace: string;
  /** The user or channel id. */
  id: string;
  turns: number;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  sandboxSessions: number;
  costUsd: number;
  /** Turns whose model had no price: their cost is not in `costUsd`. */
  unpriced: number;
}

const PAGE = 1000;

/** Sums the usage log over `[since, until)` per user or per channel, most expensive first. */
export async function usageReport(store: Store, options: { since: number; until: number; by: UsageGrouping }): Promise<UsageRow[]> {
  const timeline = store.timeline(USAGE_TIMELINE);
  const rows = new Map<string, UsageRow>();
  let from = options.since;
  const seen = new Set<string>();
  for (;;) {
    const page = await timeline.range(from, options.until, PAGE);
    for (const { id, value } of page) {
      if (seen.has(id)) continue;
      seen.add(id);
      const r = value as unknown as UsageRecord;
      const who = options.by === 'user' ? r.user : r.channel;
      const key = `${r.platform}/${r.workspace}/${who}`;
      const row = rows.get(key) ?? {
        key,
        platform: r.platform,
        workspace: r.workspace,
        id: who,
        turns: 0,
        inputTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
        sandboxSessions: 0,
        costUsd: 0,
        unpriced: 0,
      };
      row.turns += 1;
      row.inputTokens += r.inputTokens;
      row.cachedTokens += r.cachedTokens;
      row.outputTokens += r.outputTokens;
      row.sandboxSessions += r.sandboxSessions;
      if (r.costUsd === null) row.unpriced += 1;
      else row.costUsd += r.costUsd;
      rows.set(key, row);
    }
    if (page.length < PAGE) break;
    // Records at the page's last instant may continue on the next page: read from that instant again.
    const last = page[page.length - 1]!.at;
    from = last === from ? last + 1 : last;
  }
  return [...rows.values()].sort((a, b) => b.costUsd - a.costUsd || b.turns - a.turns);
}
