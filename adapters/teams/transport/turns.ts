import { type Activity, type CloudAdapter, type ConversationReference, TurnContext } from 'botbuilder';
import type { Logger } from 'pino';
import type { RequestSigner } from '../auth/auth.js';
import { authorizationFrom } from '../files/attachments.js';
import type { TurnIO } from '../render/progress.js';
import { postActivity, withThrottleRetry } from './send.js';

/**
 * Proactive turns on a conversation (continueConversationAsync with its saved reference): how Crunch posts
 * after it has answered Teams' request. A turn of the core keeps one open from its first use (preparing its
 * files needs the connector's credentials for pasted images; presenting it needs the context) until it is
 * closed, so that its progress and answer go through one connector context, replying to the user's message.
 */
export interface OpenTurn {
  io: TurnIO;
  context: TurnContext;
  /** The connector's credentials (undefined with authentication off), for pasted images behind the bot token. */
  signer: RequestSigner | undefined;
}

export class ProactiveTurns {
  private readonly open = new Map<string, { turn: Promise<OpenTurn>; close: () => void }>();

  constructor(
    private readonly adapter: CloudAdapter,
    private readonly appId: string,
    private readonly logger: Logger,
  ) {}

  /** The open turn for `key` (a message key), opened on first use. Rejects when the connector cannot be reached. */
  get(key: string, reference: ConversationReference): Promise<OpenTurn> {
    const existing = this.open.get(key);
    if (existing !== undefined) return existing.turn;
    let close!: () => void;
    const closed = new Promise<void>((resolve) => (close = resolve));
    let opened!: (turn: OpenTurn) => void;
    const turn = new Promise<OpenTurn>((resolve, reject) => {
      opened = resolve;
      this.run(reference, async (io, signer, context) => {
        opened({ io, signer, context });
        await closed;
      }).catch((err: unknown) => {
        this.open.delete(key);
        reject(err as Error);
      });
    });
    this.open.set(key, { turn, close });
    return turn;
  }

  /** Ends the open turn for `key`, if any. */
  close(key: string): void {
    this.open.get(key)?.close();
    this.open.delete(key);
  }

  /** Runs `work` inside a proactive turn on `reference`, replying to the user's message. */
  async run(reference: ConversationReference, work: (io: TurnIO, signer: RequestSigner | undefined, context: TurnContext) => Promise<void>): Promise<void> {
    await this.adapter.continueConversationAsync(this.appId, reference, async (context) => {
      // The continuation activity has a random id; replying to the user's message keeps channel threads.
      if (reference.activityId !== undefined) context.activity.id = reference.activityId;
      const connector = context.turnState.get<{ credentials?: RequestSigner } | undefined>(this.adapter.ConnectorClientKey);
      await work(this.io(context, reference, connector?.credentials), connector?.credentials, context);
    });
  }

  private io(context: TurnContext, reference: ConversationReference, signer: RequestSigner | undefined): TurnIO {
    const logger = this.logger;
    return {
      send: async (activity) => (await withThrottleRetry(() => context.sendActivity(activity), logger))?.id,
      update: async (activity) => void (await withThrottleRetry(() => context.updateActivity(activity), logger)),
      remove: async (id) => void (await withThrottleRetry(() => context.deleteActivity(id), logger)),
      sendRaw: async (activity, options) => {
        const full = TurnContext.applyConversationReference({ ...activity }, reference) as Partial<Activity>;
        delete full.replyToId;
        return postActivity(full, await authorizationFrom(signer), options.attempts, logger);
      },
    };
  }
}
