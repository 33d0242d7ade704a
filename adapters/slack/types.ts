import type { ChatAdapter } from '../../src/core/index.js';

/**
 * Retry policy for Slack Web API calls (p-retry options, as `WebClient`'s `retryConfig` takes them). A 429 is
 * honoured first: the client waits the `Retry-After` seconds Slack sent, then this policy adds its own backoff.
 */
export interface SlackRetryConfig {
  retries: number;
  factor?: number;
  minTimeout?: number;
  maxTimeout?: number;
  randomize?: boolean;
}

/**
 * What the Slack adapter needs. The first five fields are `SlackConfig` from `src/config` (so a loaded config
 * can be passed as is); the rest are optional knobs, with production defaults below, that tests shorten.
 */
export interface SlackAdapterConfig {
  /** Bot User OAuth Token (xoxb-…). */
  botToken: string;
  /** Signing secret; required for the HTTP Events API, unused in Socket Mode. */
  signingSecret: string | undefined;
  /** App-level token (xapp-…); when set, the adapter connects over Socket Mode instead of serving HTTP. */
  appToken: string | undefined;
  /** Web API base URL, e.g. https://slack-gov.com/api/ for GovSlack, or a fake in tests. Socket Mode opens its connection through it too. */
  apiUrl: string | undefined;
  /**
   * Other bots (bot ids, B…) whose messages Crunch answers like a person's: mentions, DMs and follow-ups in its
   * threads. Every other bot is ignored, and so is Crunch itself, even if its own id is listed.
   */
  allowedBotIds?: readonly string[];

  /** The HTTP path Slack posts events to. */
  eventsPath?: string;
  /** Retries for the calls that carry the answer (messages, uploads). */
  retryConfig?: SlackRetryConfig;
  /** Per-request timeout of Web API calls. */
  requestTimeoutMs?: number;
  /** How long a file download may take to start (Slack's response headers). */
  downloadTimeoutMs?: number;
  /** How long a file download may go without receiving any data, once started, before it is given up. */
  downloadIdleTimeoutMs?: number;
  /** Least time between two progress updates of one thread (Slack allows about one message per second per channel). */
  statusIntervalMs?: number;
  /**
   * How long the first status waits, so that a turn whose engine says at once what it is doing ("reading
   * sales.xlsx…") shows that, instead of a generic status replaced a moment later (one call instead of two).
   */
  firstStatusMs?: number;
  /**
   * Least time between two streamed appends of answer text. The stream itself starts this long after the
   * first text: an answer written in less time is posted whole (one call instead of starting and stopping a stream).
   */
  streamIntervalMs?: number;
  /** Stream the answer as the model writes it (chat.startStream/appendStream/stopStream). */
  streaming?: boolean;
  /** Uploads the code that produced the answer as a `code.py` snippet in the thread. */
  showCode?: boolean;
  /** Clock for request-signature verification (ms since the epoch). */
  now?: () => number;
  /**
   * Socket Mode: how long to wait for Slack's pong before dropping the connection, which is also the delay before
   * reconnecting after Slack asks for a refresh (the SDK's `clientPingTimeout`; it pings every third of it).
   */
  socketPingTimeoutMs?: number;
}

export interface ResolvedSlackOptions {
  eventsPath: string;
  retryConfig: SlackRetryConfig;
  requestTimeoutMs: number;
  downloadTimeoutMs: number;
  downloadIdleTimeoutMs: number;
  statusIntervalMs: number;
  firstStatusMs: number;
  streamIntervalMs: number;
  streaming: boolean;
  showCode: boolean;
  now: () => number;
  socketPingTimeoutMs: number;
}

export const SLACK_DEFAULTS: ResolvedSlackOptions = {
  eventsPath: '/slack/events',
  // Six attempts over about a minute of backoff, on top of whatever Retry-After Slack asks for: long enough to
  // ride out a burst of rate limiting, short enough that a person is not left waiting for half an hour (the
  // WebClient default, tenRetriesInAboutThirtyMinutes).
  retryConfig: { retries: 5, factor: 2, minTimeout: 1000, maxTimeout: 30_000, randomize: true },
  requestTimeoutMs: 60_000,
  downloadTimeoutMs: 60_000,
  // A minute without a byte while Crunch is waiting for more: the connection is dead, whatever TCP thinks.
  downloadIdleTimeoutMs: 60_000,
  statusIntervalMs: 1500,
  firstStatusMs: 300,
  streamIntervalMs: 1000,
  streaming: true,
  showCode: true,
  now: () => Date.now(),
  // The SDK's own default: a missing pong for 5 s means a dead connection; a refresh reconnects after 5 s.
  socketPingTimeoutMs: 5000,
};

export function resolveOptions(config: SlackAdapterConfig): ResolvedSlackOptions {
  return {
    eventsPath: config.eventsPath ?? SLACK_DEFAULTS.eventsPath,
    retryConfig: config.retryConfig ?? SLACK_DEFAULTS.retryConfig,
    requestTimeoutMs: config.requestTimeoutMs ?? SLACK_DEFAULTS.requestTimeoutMs,
    downloadTimeoutMs: config.downloadTimeoutMs ?? SLACK_DEFAULTS.downloadTimeoutMs,
    downloadIdleTimeoutMs: config.downloadIdleTimeoutMs ?? SLACK_DEFAULTS.downloadIdleTimeoutMs,
    statusIntervalMs: config.statusIntervalMs ?? SLACK_DEFAULTS.statusIntervalMs,
    firstStatusMs: config.firstStatusMs ?? SLACK_DEFAULTS.firstStatusMs,
    streamIntervalMs: config.streamIntervalMs ?? SLACK_DEFAULTS.streamIntervalMs,
    streaming: config.streaming ?? SLACK_DEFAULTS.streaming,
    showCode: config.showCode ?? SLACK_DEFAULTS.showCode,
    now: config.now ?? SLACK_DEFAULTS.now,
    socketPingTimeoutMs: config.socketPingTimeoutMs ?? SLACK_DEFAULTS.socketPingTimeoutMs,
  };
}

/** The Slack adapter: a `ChatAdapter` plus what operators and tests may look at. */
export interface SlackAdapter extends ChatAdapter {
  /** "socket" when an app token is configured, otherwise "http" (events at `eventsPath`). */
  readonly mode: 'socket' | 'http';
  /** Resolves when every delivered event has been handed to the core (or refused). */
  idle(): Promise<void>;
}

/** Where a turn's answer goes: the Turn's `platformData` on Slack. */
export interface SlackAddress {
  channel: string;
  threadTs: string;
  /** For streaming in channels: the person the answer is for, and their team (Slack Connect aware). */
  userId: string;
  userTeamId: string;
  /** False posts the answer whole (for another bot: nobody watches it typed, and a stream's recipient is a person). */
  stream: boolean;
}

// ---- The narrow shapes of Slack's payloads that receive.ts reads (Slack sends many more fields). ----

/** A file as it appears in `event.files[]` (or from files.info). */
export interface SlackFile {
  id: string;
  name?: string;
  title?: string;
  mimetype?: string;
  filetype?: string;
  size?: number;
  /** hosted | snippet | post | external | tombstone | file_access | hidden_by_limit … */
  mode?: string;
  /** "visible", or "check_file_info" when only files.info may reveal it (Slack Connect). */
  file_access?: string;
  is_external?: boolean;
  external_type?: string;
  url_private?: string;
  url_private_download?: string;
}

/** An `app_mention` or `message` event. */
export interface SlackMessageEvent {
  type: 'app_mention' | 'message' | string;
  subtype?: string;
  channel: string;
  /** im | mpim | channel | group (message events only). */
  channel_type?: string;
  /** The author; for an app's bot, its bot user (U…). Absent on `bot_message`s from integrations and webhooks. */
  user?: string;
  /** The team of the user (differs from the workspace in Slack Connect channels). */
  user_team?: string;
  team?: string;
  /** Set when a bot wrote the message (B…), alongside `user` for an app's bot user. */
  bot_id?: string;
  app_id?: string;
  text?: string;
  ts: string;
  thread_ts?: string;
  parent_user_id?: string;
  hidden?: boolean;
  files?: SlackFile[];
}

/** Someone opened Crunch's App Home (docs.slack.dev, app_home_opened): the Messages tab is their DM with it. */
export interface SlackAppHomeOpenedEvent {
  type: 'app_home_opened';
  user: string;
  /** The DM between the person and Crunch. */
  channel: string;
  tab?: 'home' | 'messages';
  team?: string;
}

/** The `event_callback` envelope around an event. */
export interface SlackEnvelope {
  type: string;
  team_id?: string;
  api_app_id?: string;
  event_id?: string;
  authorizations?: { team_id?: string | null; user_id?: string; is_bot?: boolean }[];
}

/** Who the bot is, from auth.test (Bolt's context). */
export interface BotIdentity {
  userId: string | undefined;
  botId: string | undefined;
}
