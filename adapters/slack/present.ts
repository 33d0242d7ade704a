import { ErrorCode, type WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import type { DeliveryLedger, Presenter, Progress, Reply } from '../../src/core/index.js';
import { defuseMentions, escapeSlack, portableFileName } from './markdown.js';
import { codeFile, composeMessages, type SlackMessage, smallPrint } from './render/compose.js';
import { type Upload, uploadAll } from './render/uploads.js';
import type { ResolvedSlackOptions, SlackAddress } from './types.js';

/**
 * A turn on Slack, as the person sees it: the thread's AI status line (assistant.threads.setStatus:
 * "Crunch is running code…"), or where Slack refuses that, one ":hourglass_flowing_sand: Working on it…"
 * message edited in place; the answer streamed as the model writes it (chat.startStream/appendStream, from
 * `streamIntervalMs` after its first words: a short answer is posted whole, in one call),
 * finished by chat.stopStream with the rest of the text and the notices; then the charts and files.
 *
 * Progress calls go through `quick`, a client that never retries and rejects rate-limited calls, so that
 * cosmetic updates never delay the answer; the answer and its uploads go through `client`, which honours
 * Retry-After. What is posted is recorded in the turn's ledger, so a turn resumed after a crash reuses its
 * status message, drops its half-streamed one, and never posts a part twice.
 */
export interface PresentContext {
  client: WebClient;
  quick: WebClient;
  options: ResolvedSlackOptions;
  /** Switched off for the whole process once Slack says the method is not available. */
  capabilities: { setStatus: boolean; streaming: boolean };
}

const MAX_APPEND_CHARS = 12_000;
/** The `|---|:--:|` line under a markdown table's header. */
const TABLE_DELIMITER_ROW = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$/m;
/** Slack drops an AI status after two minutes without a message: re-send it before then. */
const STATUS_KEEPALIVE_MS = 100_000;
/** Errors that mean the method is unavailable to this app or workspace, not just to this thread. */
const UNAVAILABLE = new Set(['unknown_method', 'missing_scope', 'not_allowed_token_type', 'method_deprecated', 'feature_not_enabled', 'not_allowed']);

export function slackErrorCode(err: unknown): string | undefined {
  const e = err as { code?: string; data?: { error?: unknown } } | undefined;
  if (e?.code === ErrorCode.RateLimitedError) return 'ratelimited';
  return typeof e?.data?.error === 'string' ? e.data.error : undefined;
}

export function createPresenter(ctx: PresentContext, to: SlackAddress, ledger: DeliveryLedger, log: Logger): Presenter {
  const { client, quick, options } = ctx;
  const { channel, threadTs } = to;
  const closing = new AbortController();
  let chain: Promise<void> = Promise.resolve();
  const later = (task: () => Promise<void>) => {
    chain = chain.then(task).catch((err: unknown) => log.debug({ err }, 'progress update failed'));
  };
  const remove = async (ts: string | undefined) => {
    if (ts !== undefined) await client.chat.delete({ channel, ts }).catch((err: unknown) => log.warn({ err, ts }, 'could not delete a progress message'));
  };

  // ---- status line (throttled: the first at once, then at most one per interval; only the latest is sent) ----
  let statusMode: 'none' | 'assistant' | 'message' = 'none';
  let statusTs = typeof ledger.memo['statusTs'] === 'string' ? ledger.memo['statusTs'] : undefined;
  if (statusTs !== undefined) statusMode = 'message';
  let current = 'working on it…';
  // The first status goes out `firstStatusMs` from now; later ones at most once per `statusIntervalMs`.
  let lastStatusAt = Date.now() + options.firstStatusMs - options.statusIntervalMs;
  let statusTimer: NodeJS.Timeout | undefined;

  function pushStatus(text: string): void {
    if (closing.signal.aborted) return;
    current = text;
    if (statusTimer !== undefined) return;
    const flush = () => {
      statusTimer = undefined;
      lastStatusAt = Date.now();
      const next = current;
      later(() => sendStatus(next));
    };
    const wait = lastStatusAt + options.statusIntervalMs - Date.now();
    if (wait <= 0) flush();
    else statusTimer = setTimeout(flush, wait);
  }

  async function sendStatus(text: string): Promise<void> {
    if (closing.signal.aborted) return;
    if (statusMode !== 'message' && ctx.capabilities.setStatus) {
      try {
        await quick.assistant.threads.setStatus({ channel_id: channel, thread_ts: threadTs, status: `is ${defuseMentions(text)}` });
        statusMode = 'assistant';
        return;
      } catch (err) {
        const code = slackErrorCode(err);
        if (code === 'ratelimited') return;
        if (code !== undefined && UNAVAILABLE.has(code)) ctx.capabilities.setStatus = false;
        log.info({ code }, 'assistant.threads.setStatus unavailable here; showing a status message instead');
      }
    }
    statusMode = 'message';
    const line = `:hourglass_flowing_sand: ${escapeSlack(text.charAt(0).toUpperCase() + text.slice(1))}`;
    if (statusTs === undefined) {
      statusTs = (await quick.chat.postMessage({ channel, thread_ts: threadTs, text: line })).ts;
      if (statusTs !== undefined) await ledger.remember({ statusTs });
    } else {
      await quick.chat.update({ channel, ts: statusTs, text: line });
    }
  }

  // ---- streamed answer text ----
  let streamTs: string | undefined;
  let streamed = '';
  let pending = '';
  let streamBroken = !options.streaming || !to.stream;
  let lastAppendAt = -Infinity;
  let streamTimer: NodeJS.Timeout | undefined;

  function pushText(delta: string): void {
    if (closing.signal.aborted || streamBroken || !ctx.capabilities.streaming || statusMode === 'message') return;
    pending += delta;
    if (streamTimer !== undefined) return;
    // The stream starts one interval after the first text: an answer finished by then is posted whole.
    if (lastAppendAt === -Infinity) lastAppendAt = Date.now();
    const flush = () => {
      streamTimer = undefined;
      lastAppendAt = Date.now();
      later(flushStream);
    };
    const wait = lastAppendAt + options.streamIntervalMs - Date.now();
    if (wait <= 0) flush();
    else streamTimer = setTimeout(flush, wait);
  }

  async function flushStream(): Promise<void> {
    if (streamBroken || pending === '' || closing.signal.aborted) return;
    let text = pending.slice(0, MAX_APPEND_CHARS);
    // A '<' at the end waits for what follows it: defused together, it cannot become a mention across appends.
    if (text.endsWith('<')) text = text.slice(0, -1);
    if (text === '') return;
    pending = pending.slice(text.length);
    try {
      if (streamTs === undefined) {
        const started = await quick.chat.startStream({
          channel,
          thread_ts: threadTs,
          markdown_text: defuseMentions(text),
          recipient_user_id: to.userId,
          recipient_team_id: to.userTeamId,
        });
        streamTs = started.ts;
        if (streamTs !== undefined) await ledger.remember({ streamTs });
      } else {
        await quick.chat.appendStream({ channel, ts: streamTs, markdown_text: defuseMentions(text) });
      }
      streamed += text;
    } catch (err) {
      const code = slackErrorCode(err);
      if (code === 'ratelimited') {
        // Keep the text for the next append, and wait as long as Slack asked before trying again.
        pending = text + pending;
        lastAppendAt = Date.now() + ((err as { retryAfter?: number }).retryAfter ?? 1) * 1000;
        pushText('');
        return;
      }
      streamBroken = true;
      if (code !== undefined && UNAVAILABLE.has(code)) ctx.capabilities.streaming = false;
      log.info({ code }, 'streaming stopped; the answer will be posted whole');
    }
    if (pending !== '') pushText('');
  }

  // A resumed attempt: the earlier attempt's half-streamed message is dropped (this one streams afresh).
  const stale = typeof ledger.memo['streamTs'] === 'string' ? ledger.memo['streamTs'] : undefined;
  if (stale !== undefined) {
    later(async () => {
      await client.chat.stopStream({ channel, ts: stale }).catch(() => undefined);
      await remove(stale);
    });
  }
  pushStatus('working on it…');
  const keepAlive = setInterval(() => pushStatus(current), STATUS_KEEPALIVE_MS).unref();

  /** Stops every timer and waits for the progress calls already made. */
  async function settle(): Promise<void> {
    closing.abort();
    clearTimeout(statusTimer);
    clearTimeout(streamTimer);
    clearInterval(keepAlive);
    await chain;
  }

  async function post(message: SlackMessage, part: string, reuse: string | undefined): Promise<boolean> {
    if (ledger.posted(part)) return false;
    const payload = { channel, text: message.text, blocks: message.blocks };
    try {
      if (reuse !== undefined) {
        try {
          await client.chat.update({ ...payload, ts: reuse });
          await ledger.markPosted(part);
          return true;
        } catch (err) {
          log.warn({ err }, 'could not rewrite the progress message; posting the answer as a new one');
          await remove(reuse);
        }
      }
      await client.chat.postMessage({ ...payload, thread_ts: threadTs, unfurl_links: false, unfurl_media: false });
      await ledger.markPosted(part);
    } catch (err) {
      log.error({ err, code: slackErrorCode(err) }, 'posting the answer failed');
    }
    return reuse !== undefined;
  }

  /**
   * Ends the stream with what the model wrote after its last append, and the notices: the streamed message
   * becomes the answer without being rewritten. False when the stream cannot carry the answer as is: it
   * diverged from the final text, or the answer has a table (streamed markdown shows a table as raw pipes,
   * so the message is rewritten with the table laid out).
   */
  async function finishStream(reply: Reply, messages: SlackMessage[], longAnswer: boolean): Promise<boolean> {
    // The final text is the streamed one, trimmed (the engine cleans it the same way as it streams).
    const sent = streamed.trimEnd();
    if (streamTs === undefined || streamBroken || longAnswer || messages.length !== 1 || reply.kind !== 'answer' || !reply.text.startsWith(sent)) return false;
    if (TABLE_DELIMITER_ROW.test(reply.text)) return false;
    const rest = reply.text.slice(sent.length);
    const small = smallPrint(reply);
    try {
      await client.chat.stopStream({
        channel,
        ts: streamTs,
        ...(rest !== '' ? { markdown_text: defuseMentions(rest) } : {}),
        ...(small.length > 0 ? { blocks: small as never } : {}),
      });
      await ledger.markPosted('text:0');
      return true;
    } catch (err) {
      log.warn({ err }, 'chat.stopStream failed; posting the answer instead');
      return false;
    }
  }

  return {
    progress(p: Progress) {
      if (p.type === 'status') pushStatus(p.text.trim() === '' ? 'working on it…' : p.text.charAt(0).toLowerCase() + p.text.slice(1));
      else pushText(p.delta);
    },

    async deliver(reply: Reply) {
      await settle();
      const { messages, longAnswer } = composeMessages(reply);
      let postedNew = false;
      if (await finishStream(reply, messages, longAnswer)) {
        await remove(statusTs);
      } else {
        if (streamTs !== undefined) await client.chat.stopStream({ channel, ts: streamTs }).catch((err: unknown) => log.warn({ err }, 'chat.stopStream failed'));
        // The first message takes the place of the streamed or status message, so the thread reads cleanly.
        let reusable = streamTs ?? statusTs;
        const leftover = streamTs !== undefined ? statusTs : undefined;
        for (const [i, message] of messages.entries()) {
          const reused = await post(message, `text:${i}`, reusable);
          postedNew ||= !reused;
          reusable = undefined;
        }
        await remove(reusable);
        await remove(leftover);
      }
      // Slack clears the status line when the app posts in the thread; only an answer that posted nothing new leaves it.
      if (statusMode === 'assistant' && !postedNew && streamTs === undefined) {
        await quick.assistant.threads.setStatus({ channel_id: channel, thread_ts: threadTs, status: '' }).catch((err: unknown) => log.debug({ err }, 'clearing the status failed'));
      }
      await postOutputs(reply, longAnswer);
    },

    async suspend() {
      await settle();
    },
  };

  async function postOutputs(reply: Reply, longAnswer: boolean): Promise<void> {
    const uploads: Upload[] = [
      ...reply.images.map((image, i) => ({ part: `image:${i}`, label: image.title || image.name, filename: portableFileName(image.name), title: defuseMentions(image.title || image.name), content: image })),
      ...reply.files.map((file, i) => ({ part: `file:${i}`, label: file.name, filename: portableFileName(file.name), title: defuseMentions(file.name), content: file })),
    ];
    if (longAnswer) uploads.push({ part: 'answer.md', label: 'answer.md', filename: 'answer.md', title: 'The full answer', content: reply.text });
    if (options.showCode && reply.code.length > 0) {
      uploads.push({ part: 'code.py', label: 'code.py', filename: 'code.py', title: 'The code behind this answer', snippetType: 'python', content: codeFile(reply.code) });
    }
    const failed = await uploadAll(uploads, { client, channel, threadTs, signal: AbortSignal.timeout(options.requestTimeoutMs * 5), ledger, log });
    if (failed.length === 0 || ledger.posted('upload-warning')) return;
    const names = failed.map((n) => `*${escapeSlack(n)}*`).join(', ');
    const text = `:warning: I could not upload ${names} to this thread (Slack refused the upload). The rest of the answer is complete; ask again if you need ${failed.length === 1 ? 'it' : 'them'}.`;
    await client.chat
      .postMessage({ channel, thread_ts: threadTs, text, blocks: [{ type: 'context', elements: [{ type: 'mrkdwn', text }] }] })
      .then(() => ledger.markPosted('upload-warning'))
      .catch((err: unknown) => log.error({ err }, 'could not report the failed uploads'));
  }
}
