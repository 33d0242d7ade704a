// The core's only public door: adapters, engines, the server and the CLI import from here.
export type { Attachment, ConversationKey, Turn } from './turn.js';
export { conversationId } from './turn.js';
export type { CodeCell, Reply, ReplyKind, ReplyOutput } from './reply.js';
export { bufferOutput, readOutput, textReply } from './reply.js';
export type { Engine, EngineFile, EngineOutput, EngineRunInput, EngineRunResult, EngineSession, Json, SessionFile } from './engine.js';
export type { Progress, ProgressSink } from './progress.js';
export { ignoreProgress } from './progress.js';
export { InFlight } from './in-flight.js';
export { KeyedSerialQueue } from './ordering.js';
export { retryAfterMs } from './retry-after.js';
export type { CrunchErrorCode } from './errors.js';
export { AttachmentError, CrunchError, errorCode, toUserMessage } from './errors.js';
export type { ChatAdapter, RouteHandler } from './adapter.js';
export type { Store } from './store.js';
export { createStore } from './store.js';
export type { ConversationService, ConversationServiceDeps, Deliver, FileLimits } from './conversation.js';
export { createConversationService } from './conversation.js';
export { SUPPORTED_EXTENSIONS, helpText } from './files.js';
