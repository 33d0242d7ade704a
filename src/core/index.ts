// The core's only public door: adapters, engines, the server and the CLI import from here.
export type { Attachment, ConversationKey, FileRef, Turn, TwinRole } from './turn.js';
export { conversationId } from './turn.js';
export type { CodeCell, Reply, ReplyKind, ReplyOutput, ReplyUsage } from './reply.js';
export { readOutput, textReply } from './reply.js';
export type { Engine, EngineFile, EngineOutput, EngineRunInput, EngineRunResult, EngineSession, EngineUsage, Forgotten, Json, SessionFile } from './engine.js';
export type { DeliveryLedger, Platform, Presenter } from './platform.js';
export type { Progress, ProgressSink } from './progress.js';
export { InFlight } from './in-flight.js';
export { raceAbort } from './abort.js';
export { retryAfterMs } from './retry-after.js';
export type { CrunchErrorCode } from './errors.js';
export { AttachmentError, CrunchError, errorCode, toUserMessage } from './errors.js';
export type { ChatAdapter, RouteHandler } from './adapter.js';
export { keys } from './keys.js';
export type { AcceptOptions, AcceptOutcome, Inbox, InboxEntry, Lease } from './inbox.js';
export type { Storage, StorageOptions, Store } from './store/index.js';
export type { Counters, Timeline, TimelineRecord } from './store/records.js';
export { openStorage } from './store/index.js';
export type { Core, CoreDeps, Handled } from './journey/index.js';
export { createCore, DEDUPE_TTL_MS, JOINED_TTL_MS } from './journey/index.js';
export { Intake } from './journey/intake.js';
export { metrics, registry } from './metrics.js';
export type { AccessRules, AuditEntry, AuditSink, Budgets, Governance, PriceTable, UsageGrouping, UsageRecord, UsageRow } from './governance/index.js';
export {
  anyBudget,
  DEFAULT_PRICES,
  DEFAULT_RETENTION_MS,
  DIRECT_MESSAGES,
  formatReceipt,
  formatUsd,
  openGovernance,
  priceOf,
  usageReport,
  withPrices,
} from './governance/index.js';
export type { FileLimits } from './files.js';
export { SUPPORTED_EXTENSIONS, formatDuration, greetingText, helpText } from './files.js';
export { downloadBody } from './download.js';
export { greetOnce } from './greeting.js';
