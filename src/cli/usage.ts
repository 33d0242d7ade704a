import Table from 'cli-table3';
import { loadConfig } from '../config/index.js';
import { parseDuration } from '../config/governance.js';
import { DEDUPE_TTL_MS, formatUsd, JOINED_TTL_MS, openStorage, type UsageGrouping, usageReport, type UsageRow } from '../core/index.js';
import type { CommandContext } from './commands.js';
import { UsageError } from './errors.js';
import { printable } from './text.js';

/**
 * `crunch usage`: what Crunch spent, from the usage log in the store (shared by replicas on Redis): turns,
 * tokens, sandbox sessions and approximate cost per person or per channel over a period. A table (cli-table3),
 * or one JSON object with --json.
 */
export async function run(ctx: CommandContext): Promise<number> {
  const since = String(ctx.values['since'] ?? '30d');
  const by = String(ctx.values['by'] ?? 'user');
  const periodMs = parseDuration(since);
  if (periodMs === undefined) throw new UsageError(`--since must be a duration like 7d, 12h or 30m, not "${since}"`, 'usage');
  if (by !== 'user' && by !== 'channel') throw new UsageError(`--by must be user or channel, not "${by}"`, 'usage');
  // The usage log is all it reads: no model key needed.
  const config = loadConfig(process.env, { requireEngine: false });
  const storage = await openStorage(config.storeUrl, { dedupeMs: DEDUPE_TTL_MS, joinedMs: JOINED_TTL_MS, privateInbox: true });
  const until = Date.now();
  let rows: UsageRow[];
  try {
    rows = await usageReport(storage.store, { since: until - periodMs, until, by: by as UsageGrouping });
  } finally {
    await storage.close();
  }
  const total = sum(rows);
  if (ctx.values['json'] === true) {
    ctx.out.write(`${JSON.stringify({ since: new Date(until - periodMs).toISOString(), until: new Date(until).toISOString(), by, rows, total }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    ctx.out.write(`No answers in the last ${since}.\n`);
    return 0;
  }
  const count = (n: number) => n.toLocaleString('en-US');
  const table = new Table({
    head: ['platform', 'workspace', by, 'turns', 'input tokens', 'cached', 'output tokens', 'sandboxes', 'cost'],
    colAligns: ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: { head: [], border: [] },
  });
  const line = (r: Omit<UsageRow, 'key' | 'platform' | 'workspace' | 'id'>) => [
    count(r.turns),
    count(r.inputTokens),
    count(r.cachedTokens),
    count(r.outputTokens),
    count(r.sandboxSessions),
    `${formatUsd(r.costUsd)}${r.unpriced > 0 ? ` (+${r.unpriced} unpriced)` : ''}`,
  ];
  for (const r of rows) table.push([printable(r.platform), printable(r.workspace), printable(r.id), ...line(r)]);
  table.push(['total', '', '', ...line(total)]);
  ctx.out.write(`Usage in the last ${since}, by ${by} (costs approximate, from the price table):\n${table.toString()}\n`);
  return 0;
}

function sum(rows: UsageRow[]): Omit<UsageRow, 'key' | 'platform' | 'workspace' | 'id'> {
  const total = { turns: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, sandboxSessions: 0, costUsd: 0, unpriced: 0 };
  for (const r of rows) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r[k];
  return total;
}
