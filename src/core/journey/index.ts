import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Engine } from '../engine.js';
import { CrunchError } from '../errors.js';
import type { FileLimits } from '../files.js';
import { checkAccess, type Governance, openGovernance } from '../governance/index.js';
import type { AcceptOptions, AcceptOutcome, Inbox, Lease } from '../inbox.js';
import { keys } from '../keys.js';
import type { Platform } from '../platform.js';
import type { Store } from '../store/index.js';
import type { Turn } from '../turn.js';
import { HandBack } from './answer.js';
import type { Intake } from './intake.js';
import { metrics } from '../metrics.js';
import { expireConversation, type RetentionDeps, startRetention, type Sweeper } from './retention.js';
import { runTurn } from './run.js';

/**
 * How long a delivered message stays claimed. Slack retries an unacknowledged event three times over
 * about five minutes and Teams resends within seconds; an hour outlasts both with a wide margin, while
 * keeping the store small.
 */
export const DEDUPE_TTL_MS = 60 * 60 * 1000;
/** How long a conversation stays joined after its last turn: replies in its thread need no mention for a month. */
export const JOINED_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export interface CoreDeps {
  store: Store;
  inbox: Inbox;
  engine: Engine;
  limits: FileLimits & { turnTimeoutMs: number };
  logger: Logger;
  /** Turns run at once by this process, each in its own conversation (CRUNCH_CONCURRENCY). */
  concurrency: number;
  /** Deliveries being received: a turn starts in a lull between them (see Intake). */
  intake?: Intake;
  now?: () => Date;
  /** Lines the engine adds to `help`. */
  helpLines?: () => string[];
  /** Allow-lists, budgets, prices, receipts, retention and the audit log; default: open, 30 days. */
  governance?: Governance;
  /**
   * Whether this process sweeps for retention (idle conversations, leftovers to delete). The server does;
   * the CLI, whose inbox is its own, does not.
   */
  sweep?: boolean;
}

/** What became of a message handed to the core: one result, the rest happens in the worker. */
export type Handled =
  | { status: 'accepted' }
  /** Already received (a retry, or the other twin of a Slack mention): answered once, elsewhere. */
  | { status: 'duplicate' }
  /** `onlyIfJoined`, and the conversation is not one Crunch is part of. */
  | { status: 'ignored' }
  /** The store could not record it: the platform should deliver it again, or the user be told. */
  | { status: 'unavailable'; error: CrunchError };

/**
 * The journey of every turn, owned by the core: `handle` claims the message and records it durably in its
 * conversation's inbox (the adapter acknowledges the platform only then); a worker that owns the
 * conversation prepares its files, runs the engine and delivers through the platform's presenter, and only
 * then removes the turn from the inbox. Turns of one conversation run one at a time in arrival order; up to
 * `concurrency` conversations run at once.
 */
export interface Core {
  register(platform: Platform): void;
  handle(turn: Turn, options?: AcceptOptions): Promise<Handled>;
  /** Starts the workers (once every platform is registered). */
  start(): void;
  /**
   * Stops taking turns, lets the running ones finish for up to `drainMs`, then hands the rest back
   * unanswered (another replica, or the next start, resumes them).
   */
  stop(drainMs: number): Promise<void>;
  /** Resolves when no turn accepted here is pending or running (tests). */
  idle(): Promise<void>;
}

/** The longest a turn waits for a lull in deliveries before it starts anyway. */
const INTAKE_MAX_WAIT_MS = 1000;
/** After the drain, how long handed-back turns get to wind down before the core stops waiting for them. */
const WIND_DOWN_MS = 5000;

/** Whether `work` settled within `ms`; the timer does not outlive it (it would keep a stopping process alive). */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([work.then(() => true), delay(ms, false, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}

export function createCore(deps: CoreDeps): Core {
  const platforms = new Map<string, Platform>();
  const log = deps.logger;
  const taking = new AbortController();
  // Every idle worker waits on it.
  setMaxListeners(0, taking.signal);
  const handingBack = new AbortController();
  const workers: Promise<void>[] = [];
  let running = 0;
  const governance = deps.governance ?? openGovernance();
  const now = deps.now ?? (() => new Date());
  const answerDeps = {
    store: deps.store,
    engine: deps.engine,
    limits: deps.limits,
    logger: log,
    now,
    governance,
    ...(deps.helpLines ? { helpLines: deps.helpLines } : {}),
  };
  const retentionDeps: RetentionDeps = {
    store: deps.store,
    inbox: deps.inbox,
    engine: deps.engine,
    retentionMs: governance.retentionMs,
    logger: log,
    now,
    audit: governance.audit,
  };
  let sweeper: Sweeper | undefined;

  async function handle(turn: Turn, options: AcceptOptions = {}): Promise<Handled> {
    // The allow-lists are checked here, before anything runs: a refused message is recorded (so that it is
    // answered once, in order) without joining its conversation, and a thread reply there is ignored.
    const refusal = platforms.get(turn.conversation.platform)?.operator === true ? undefined : checkAccess(turn, governance.access);
    if (refusal !== undefined && refusal.reason !== 'budget') {
      if (options.onlyIfJoined) return { status: 'ignored' };
      log.info({ reason: refusal.reason, platform: turn.conversation.platform, workspace: turn.conversation.workspace }, 'message refused: not enabled here');
      metrics.refusals.inc({ reason: refusal.reason });
      turn = { ...turn, refused: { reason: refusal.reason, line: refusal.line } };
      options = { ...options, join: false };
    }
    let outcome: AcceptOutcome;
    try {
      outcome = await deps.inbox.accept(turn, options);
    } catch (err) {
      log.error({ err, message: turn.messageKey }, 'store unavailable: the message could not be recorded');
      metrics.deliveries.inc({ platform: turn.conversation.platform, status: 'unavailable' });
      return {
        status: 'unavailable',
        error: new CrunchError('store_unavailable', 'I cannot reach my storage right now, so I could not take your message.', { cause: err }),
      };
    }
    metrics.deliveries.inc({ platform: turn.conversation.platform, status: outcome });
    if (outcome === 'duplicate') {
      log.info({ message: turn.messageKey }, 'duplicate delivery ignored');
      // A Slack `message` twin says which files the message has, for its `app_mention` recorded first.
      if (turn.twin === 'completes') {
        await deps.store.set(keys.twin(turn.messageKey), turn.files, DEDUPE_TTL_MS).catch((err: unknown) => log.warn({ err }, 'could not record the twin'));
      }
    }
    return { status: outcome };
  }

  async function work(): Promise<void> {
    while (!taking.signal.aborted) {
      let lease: Lease | undefined;
      try {
        lease = await deps.inbox.take(taking.signal);
      } catch (err) {
        log.error({ err }, 'could not take work from the inbox; retrying');
        await delay(1000, undefined, { signal: taking.signal }).catch(() => undefined);
        continue;
      }
      if (lease === undefined) return;
      running += 1;
      try {
        await drain(lease);
      } finally {
        running -= 1;
      }
    }
  }

  /** Runs the conversation's turns until its inbox is empty, or the process stops. */
  async function drain(lease: Lease): Promise<void> {
    const stop = AbortSignal.any([handingBack.signal, lease.lost]);
    const stopAsHandBack = new AbortController();
    stop.addEventListener('abort', () => stopAsHandBack.abort(new HandBack(stop.reason instanceof Error ? stop.reason.message : 'stopped')), { once: true });
    for (;;) {
      try {
        const entry = await lease.next();
        if (entry === undefined) {
          if (await lease.release()) return;
          continue;
        }
        if (entry.turn.system === 'expire') {
          await expireConversation(entry.turn, retentionDeps);
          await persist(() => lease.done(entry.turn.messageKey), 'remove a finished turn from the inbox');
          continue;
        }
        const platform = platforms.get(entry.turn.conversation.platform);
        if (platform === undefined) {
          log.error({ platform: entry.turn.conversation.platform, message: entry.turn.messageKey }, 'a turn for a platform this process does not serve: dropped');
          await lease.done(entry.turn.messageKey);
          continue;
        }
        await deps.intake?.lull(INTAKE_MAX_WAIT_MS);
        const ran = await runTurn(entry, platform, stopAsHandBack.signal, answerDeps);
        if (ran.outcome === 'handed-back') {
          if (!lease.lost.aborted) await lease.handBack();
          return;
        }
        // Delivered: the turn must leave the inbox, or it would be answered again.
        await persist(() => lease.done(entry.turn.messageKey), 'remove a delivered turn from the inbox');
        await ran.forget();
      } catch (err) {
        if (stop.aborted) {
          await lease.handBack().catch(() => undefined);
          return;
        }
        // The store failed under the worker: try again shortly (the lease outlives a short outage), until the
        // drain time of a shutdown is over.
        log.error({ err, conversation: lease.conversation }, 'a worker step failed; retrying');
        await delay(1000, undefined, { signal: handingBack.signal }).catch(() => undefined);
      }
    }
  }

  /** Retries a store write that must happen (until it does, or the process stops). */
  async function persist(write: () => Promise<void>, what: string): Promise<void> {
    for (let wait = 250; ; wait = Math.min(wait * 2, 5000)) {
      try {
        return await write();
      } catch (err) {
        if (handingBack.signal.aborted) throw err;
        log.error({ err }, `could not ${what}; retrying`);
        await delay(wait, undefined, { signal: handingBack.signal }).catch(() => undefined);
      }
    }
  }

  return {
    register(platform) {
      platforms.set(platform.name, platform);
    },
    handle,
    start() {
      for (let i = 0; i < deps.concurrency; i++) workers.push(work());
      if (deps.sweep === true) sweeper = startRetention(retentionDeps);
    },
    async stop(drainMs) {
      sweeper?.stop();
      taking.abort();
      const all = Promise.all(workers);
      if (!(await within(all, drainMs))) {
        log.warn({ running }, 'turns still running after the drain time: handing them back');
        handingBack.abort();
        await within(all, WIND_DOWN_MS);
      }
    },
    idle: () => deps.inbox.idle(),
  };
}

