/**
 * Every key Crunch keeps in its store, adapters' keys included, built in one place so that one name means
 * one thing everywhere. Redis keys get the `crunch:` prefix from the store (see store/redis.ts).
 */
export const keys = {
  /** The engine session of a conversation (EngineSession JSON). */
  session: (conversation: string) => `session:${conversation}`,
  /** Set while a conversation's thread counts as joined: replies there need no mention. */
  joined: (conversation: string) => `joined:${conversation}`,
  /** The files a Slack `message` twin brought for a turn recorded from its `app_mention`. */
  twin: (messageKey: string) => `twin:${messageKey}`,
  /** What a turn's delivery has done so far (DeliveryLedger), across attempts. */
  delivery: (messageKey: string) => `delivery:${messageKey}`,
  /** Spend counters (micro-dollars) of the budgets: a person's and a channel's per UTC day, everyone's per month. */
  spendUser: (day: string, platform: string, workspace: string, user: string) => `spend:user:${day}:${platform}:${workspace}:${user}`,
  spendChannel: (day: string, platform: string, workspace: string, channel: string) => `spend:channel:${day}:${platform}:${workspace}:${channel}`,
  spendMonth: (month: string) => `spend:month:${month}`,
  /**
   * Claimed when a person was greeted (`who`: "teams:<personal conversation id>", "slack:<team>:<user>"), so that
   * the greeting is sent once per install or person, across restarts and replicas.
   */
  greeted: (who: string) => `greeted:${who}`,
  /** A Teams file consent offer, and its settled claim. */
  teamsOffer: (offerId: string) => `teams:offer:${offerId}`,
  teamsOfferSettled: (offerId: string) => `teams:offer:${offerId}:settled`,
  /** A file served behind a signed Teams link, and its bytes, in chunks. */
  teamsFile: (fileId: string) => `teams:file:${fileId}`,
  teamsFileChunk: (fileId: string, n: number) => `teams:file:${fileId}:${n}`,
};

/** Keys of the Redis inbox (store/redis-inbox.ts): structures, not JSON values. */
export const redisKeys = {
  /** SET NX with a TTL: a message key's claim (dedupe). */
  claim: (messageKey: string) => `crunch:claim:${messageKey}`,
  /** A recorded turn (InboxEntry JSON), until it is done. */
  entry: (messageKey: string) => `crunch:entry:${messageKey}`,
  /** LIST of a conversation's pending message keys, oldest first. */
  inbox: (conversation: string) => `crunch:inbox:${conversation}`,
  /** Set while the conversation has a ready notice outstanding (queued or owned by a worker). */
  active: (conversation: string) => `crunch:active:${conversation}`,
  joined: (conversation: string) => `crunch:joined:${conversation}`,
  /** STREAM of "conversation X has work", read by the workers' consumer group. */
  ready: 'crunch:ready',
  group: 'workers',
};
