import { randomUUID } from 'node:crypto';
import type { Attachment, ConversationKey, Core, Platform, Progress, Reply, Turn } from '../../src/core/index.js';

/**
 * A platform for driving the core directly in tests: a turn's files are the Attachments the test gives
 * (by source id), progress is recorded per message, and `ask` resolves with the reply the core delivers.
 */
export interface TestPlatform extends Platform {
  /** Progress each message reported, in order. */
  progress: Map<string, Progress[]>;
  /** Replies delivered, in the order they were delivered (a reply whose text an earlier attempt posted is not). */
  delivered: { messageKey: string; reply: Reply }[];
  /** Attempts that were suspended (handed back at shutdown). */
  suspended: string[];
  /** Sends a message and waits for its reply; with `wait: false`, only hands it over. */
  ask(core: Core, message: Message): Promise<Reply>;
  /** A Turn for `message`, as an adapter would build it. */
  turn(message: Message): Turn;
}

export interface Message {
  thread: string;
  text: string;
  attachments?: Attachment[];
  messageKey?: string;
  /** Default W, C, U1. */
  workspace?: string;
  channel?: string;
  user?: string;
  direct?: boolean;
}

export function conversationOf(thread: string, platform = 'test', where: { workspace?: string; channel?: string } = {}): ConversationKey {
  return { platform, workspace: where.workspace ?? 'W', channel: where.channel ?? 'C', thread };
}

export function createTestPlatform(name = 'test'): TestPlatform {
  const attachments = new Map<string, Attachment>();
  const waiting = new Map<string, (reply: Reply) => void>();
  const platform: TestPlatform = {
    name,
    progress: new Map(),
    delivered: [],
    suspended: [],
    async prepare(turn) {
      return { attachments: turn.files.map((f) => attachments.get(f.sourceId)!), notices: [] };
    },
    present(turn, ledger) {
      const seen: Progress[] = [];
      platform.progress.set(turn.messageKey, seen);
      return {
        progress: (p) => seen.push(p),
        async deliver(reply) {
          if (!ledger.posted('text')) {
            platform.delivered.push({ messageKey: turn.messageKey, reply });
            await ledger.markPosted('text');
          }
          waiting.get(turn.messageKey)?.(reply);
        },
        async suspend() {
          platform.suspended.push(turn.messageKey);
        },
      };
    },
    turn(message) {
      for (const a of message.attachments ?? []) attachments.set(a.sourceId, a);
      return {
        conversation: conversationOf(message.thread, name, message),
        messageKey: message.messageKey ?? `m-${randomUUID()}`,
        user: { id: message.user ?? 'U1' },
        ...(message.direct !== undefined ? { direct: message.direct } : {}),
        text: message.text,
        files: (message.attachments ?? []).map((a) => ({
          sourceId: a.sourceId,
          name: a.name,
          ...(a.sizeBytes !== undefined ? { sizeBytes: a.sizeBytes } : {}),
          ...(a.mimeType !== undefined ? { mimeType: a.mimeType } : {}),
        })),
        platformData: {},
      };
    },
    async ask(core, message) {
      const turn = platform.turn(message);
      const reply = new Promise<Reply>((resolve) => waiting.set(turn.messageKey, resolve));
      const handled = await core.handle(turn);
      if (handled.status !== 'accepted') throw new Error(`not accepted: ${handled.status}`);
      return reply;
    },
  };
  return platform;
}
