import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * What operators watch, in Prometheus' format at `GET /metrics` (prom-client): the process (CPU, memory,
 * event-loop lag), and every turn's journey. One registry per process; labels stay few and bounded.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'crunch_' });

const seconds = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export const metrics = {
  /** Deliveries handed to the core, by what became of them (accepted, duplicate, ignored, unavailable). */
  deliveries: new Counter({ name: 'crunch_deliveries_total', help: 'Deliveries handed to the core, by platform and what became of them', labelNames: ['platform', 'status'] as const, registers: [registry] }),
  /** Turns that ran to their end, by outcome: answered, help, reset, or the error code. */
  turns: new Counter({ name: 'crunch_turns_total', help: 'Turns run, by platform and outcome', labelNames: ['platform', 'outcome'] as const, registers: [registry] }),
  turnSeconds: new Histogram({ name: 'crunch_turn_duration_seconds', help: 'From a worker starting a turn to its reply being delivered', labelNames: ['platform'] as const, buckets: seconds, registers: [registry] }),
  queueSeconds: new Histogram({ name: 'crunch_queue_wait_seconds', help: 'From a turn being recorded to a worker starting it', labelNames: ['platform'] as const, buckets: seconds, registers: [registry] }),
  engineSeconds: new Histogram({ name: 'crunch_engine_duration_seconds', help: 'Time spent in the engine per turn', labelNames: ['engine'] as const, buckets: seconds, registers: [registry] }),
  requestSeconds: new Histogram({
    name: 'crunch_request_duration_seconds',
    help: 'From an HTTP request arriving to its answer (Slack and Teams acknowledgements included)',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 3],
    registers: [registry],
  }),
  /** Files people attached, by extension (or "other") and outcome (used, refused). */
  files: new Counter({ name: 'crunch_files_total', help: 'Attached files, by type and outcome', labelNames: ['type', 'outcome'] as const, registers: [registry] }),
  retries: new Counter({ name: 'crunch_engine_retries_total', help: 'Model API calls retried after a transient failure (rate limits, 5xx, dropped connections)', registers: [registry] }),
  errors: new Counter({ name: 'crunch_errors_total', help: 'Turns that ended in an error, by kind', labelNames: ['kind'] as const, registers: [registry] }),
  tokens: new Counter({ name: 'crunch_tokens_total', help: 'Model tokens the provider reported, by engine and kind (input, cached, output)', labelNames: ['engine', 'kind'] as const, registers: [registry] }),
  cost: new Counter({ name: 'crunch_cost_usd_total', help: 'Approximate US dollars spent, from the price table (turns whose model has a price)', labelNames: ['engine'] as const, registers: [registry] }),
  refusals: new Counter({ name: 'crunch_refusals_total', help: 'Messages refused, by reason (workspace, channel, user, budget)', labelNames: ['reason'] as const, registers: [registry] }),
};
