import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type App,
  type BufferedIncomingMessage,
  type Logger as BoltLogger,
  HTTPModuleFunctions,
  HTTPResponseAck,
  LogLevel,
  type Receiver,
  type ReceiverEvent,
  SocketModeReceiver,
  verifySlackRequest,
} from '@slack/bolt';
import type { Logger } from 'pino';

// Bolt receivers for the two connection modes, and Bolt's logger on pino. Transport only: no turn logic.

/**
 * Holds a delivery's acknowledgement back until the listeners have handed its turn to the core: Slack is
 * acknowledged once the turn is recorded, and not at all when the listener refuses the delivery (the store
 * could not record it), so that Slack delivers it again. Bolt acks events before it runs the listeners;
 * here that ack only notes that it may be sent.
 */
export class HeldAcks {
  private readonly refused = new WeakSet<object>();

  /** Called by a listener: this delivery must not be acknowledged. */
  refuse(body: object): void {
    this.refused.add(body);
  }

  async process(app: App, event: ReceiverEvent, refuse: () => void | Promise<void>): Promise<void> {
    let response: unknown[] = [];
    await app.processEvent({ ...event, ack: async (...args: unknown[]) => {
        response = args;
      },
    });
    if (this.refused.has(event.body)) return refuse();
    await (event.ack as (...args: unknown[]) => Promise<void>)(...response);
  }
}

/**
 * The HTTP Events API endpoint, mounted on the bot's server: Bolt's own pieces (body buffering, v0 signature
 * verification with its 5-minute window, url_verification, the ack) with an injectable clock, and every
 * delivery tracked so that `idle()` can wait for it. `processBeforeResponse` is false: the 200 goes out first.
 */
export class EventsReceiver implements Receiver {
  private app: App | undefined;
  private track: <T>(work: Promise<T>) => Promise<T> = (work) => work;

  constructor(
    private readonly signingSecret: string,
    private readonly now: () => number,
    private readonly boltLogger: BoltLogger,
    private readonly log: Logger,
    private readonly acks: HeldAcks,
  ) {}

  init(app: App): void {
    this.app = app;
  }
  onProcessing(track: <T>(work: Promise<T>) => Promise<T>): void {
    this.track = track;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let buffered: BufferedIncomingMessage;
    try {
      buffered = await HTTPModuleFunctions.bufferIncomingMessage(req, HTTPModuleFunctions.defaultBodyLimit);
    } catch {
      HTTPModuleFunctions.buildNoBodyResponse(res, 413);
      return;
    }
    try {
      verifySlackRequest({
        signingSecret: this.signingSecret,
        body: buffered.rawBody.toString('utf8'),
        headers: {
          'x-slack-signature': String(req.headers['x-slack-signature']),
          'x-slack-request-timestamp': Number(req.headers['x-slack-request-timestamp']),
        },
        nowMilliseconds: this.now(),
      });
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, 'Slack request rejected: bad or stale signature');
      HTTPModuleFunctions.buildNoBodyResponse(res, 401);
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = HTTPModuleFunctions.parseHTTPRequestBody(buffered) as Record<string, unknown>;
    } catch {
      HTTPModuleFunctions.buildNoBodyResponse(res, 400);
      return;
    }
    if (body['ssl_check'] === '1') return HTTPModuleFunctions.buildSSLCheckResponse(res);
    if (body['type'] === 'url_verification') return HTTPModuleFunctions.buildUrlVerificationResponse(res, body);
    const ack = new HTTPResponseAck({
      logger: this.boltLogger,
      processBeforeResponse: false,
      httpRequest: buffered,
      httpRequestBody: body,
      httpResponse: res,
    });
    const retryNum = HTTPModuleFunctions.extractRetryNumFromHTTPRequest(req);
    const retryReason = HTTPModuleFunctions.extractRetryReasonFromHTTPRequest(req);
    const event: ReceiverEvent = {
      body,
      ack: ack.bind(),
      ...(retryNum !== undefined ? { retryNum } : {}),
      ...(retryReason !== undefined ? { retryReason } : {}),
    };
    // Not acknowledged: Slack delivers it again (three retries over about five minutes).
    const processing = this.acks.process(this.app!, event, () => HTTPModuleFunctions.buildNoBodyResponse(res, 503));
    await this.track(processing).catch((err: unknown) => {
      this.log.error({ err }, 'Slack event dispatch failed');
      if (!res.headersSent) HTTPModuleFunctions.buildNoBodyResponse(res, 500);
    });
  }
}

/**
 * Socket Mode: Bolt's own receiver (apps.connections.open with the app-level token, the WebSocket, acks,
 * reconnection after Slack's `disconnect` messages), with two additions. Every delivery is tracked, so that
 * `idle()` can wait for it; and once the adapter is stopping, deliveries are left unacknowledged, so that Slack
 * sends them again (to another connection, or after the restart), as the HTTP route's 503 does. `stop()` waits for
 * the connection to close, where Bolt's only starts closing it.
 */
export class SocketReceiver extends SocketModeReceiver {
  private track: <T>(work: Promise<T>) => Promise<T> = (work) => work;
  private accepting: () => boolean = () => true;
  private acks = new HeldAcks();

  onProcessing(track: <T>(work: Promise<T>) => Promise<T>, accepting: () => boolean, acks: HeldAcks): void {
    this.track = track;
    this.accepting = accepting;
    this.acks = acks;
  }

  override init(app: App): void {
    // Bolt's receiver calls nothing on the app but processEvent; a proxy puts this receiver's checks in front of it.
    // A refused delivery is left unacknowledged: Slack sends it again.
    const deliver = (event: ReceiverEvent): Promise<void> =>
      this.accepting() ? this.track(this.acks.process(app, event, () => undefined)) : Promise.resolve();
    super.init(new Proxy(app, { get: (target, key, proxy) => (key === 'processEvent' ? deliver : Reflect.get(target, key, proxy)) }));
  }

  override async stop(): Promise<void> {
    await this.client.disconnect();
  }
}

export function apiUrlOption(apiUrl: string | undefined): { slackApiUrl?: string } {
  return apiUrl !== undefined ? { slackApiUrl: apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/` } : {};
}

/** Bolt and the WebClient log through pino; their level follows pino's. */
export function toBoltLogger(log: Logger): BoltLogger {
  let name = 'bolt';
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => log.debug({ component: name }, text(msg)),
    info: (...msg: unknown[]) => log.info({ component: name }, text(msg)),
    warn: (...msg: unknown[]) => log.warn({ component: name }, text(msg)),
    error: (...msg: unknown[]) => log.error({ component: name }, text(msg)),
    setLevel: () => undefined,
    getLevel: () => {
      const level = log.levelVal;
      return level <= 20 ? LogLevel.DEBUG : level <= 30 ? LogLevel.INFO : level <= 40 ? LogLevel.WARN : LogLevel.ERROR;
    },
    setName: (n: string) => {
      name = n;
    },
  };
}
