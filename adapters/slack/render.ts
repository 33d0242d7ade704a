import { ErrorCode, type WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import { type CodeCell, type Progress, type ProgressSink, readOutput, type Reply, type ReplyOutput } from '../../src/core/index.js';
import { markdownToSlack, splitSlackText } from './markdown.js';
import type { ResolvedSlackOptions } from './types.js';

/**
 * Reply → Slack, and the progress shown while the engine works.
 *
 * Progress: the thread's AI status line (assistant.threads.setStatus: "Crunch is running code…"), updated with
 * the engine's statuses at most once per `statusIntervalMs`. Where Slack refuses that method, one
 * ":hourglass_flowing_sand: Working on it…" message is posted instead, edited in place, and finally replaced by
 * the answer. Answer text is streamed as the model writes it (chat.startStream/appendStream/stopStream) and,
 * once the reply is final, the streamed message is rewritten with the converted text: streamed deltas may
 * differ from the final text (engine retries, sandbox links the engine removes).
 *
 * All progress calls go through `quick`, a client that never retries and rejects rate-limited calls, so cosmetic
 * updates can never delay the answer; the answer and its uploads go through `client`, which honours Retry-After.
 */

/** A section block's text limit; each answer message holds one section. */
export const MAX_MESSAGE_CHARS = 3000;
/** Longer answers are posted as their first part plus the whole text attached as answer.md. */
export const MAX_TEXT_MESSAGES = 4;
const MAX_APPEND_CHARS = 12_000;
const CONTEXT_ELEMENTS = 10;
/** Slack drops an AI status after two minutes without a message: re-send it before then. */
const STATUS_KEEPALIVE_MS = 100_000;
/** Errors that mean the method is unavailable to this app or workspace, not just to this thread. */
const UNAVAILABLE = new Set(['unknown_method', 'missing_scope', 'not_allowed_token_type', 'method_deprecated', 'feature_not_enabled', 'not_allowed']);

export interface RenderContext {
  client: WebClient;
  quick: WebClient;
  options: ResolvedSlackOptions;
  /** Switched off for the whole process once Slack says the method is not available. */
  capabilities: { setStatus: boolean; streaming: boolean };
}

export interface ThreadTarget {
  channel: string;
  threadTs: string;
  /** For streaming in channels: the person the answer is for, and their team (Slack Connect aware). */
  userId: string;
  userTeamId: string;
  /** False posts the answer whole (for another bot: nobody watches it typed, and a stream's recipient is a person). */
  streaming?: boolean;
}

export interface TurnPresenter {
  /** Shows that Crunch is working, right away. */
  begin(): void;
  progress: ProgressSink;
  /** Posts the reply in the thread, replacing the progress indicators. Never throws. */
  deliver(reply: Reply): Promise<void>;
  /** The turn was a duplicate after all: removes what `begin` showed. */
  abandon(): Promise<void>;
}

export function slackErrorCode(err: unknown): string | undefined {
  const e = err as { code?: string; data?: { error?: unknown } } | undefined;
  if (e?.code === ErrorCode.RateLimitedError) return 'ratelimited';
  return typeof e?.data?.error === 'string' ? e.data.error : undefined;
}

export function createTurnPresenter(ctx: RenderContext, target: ThreadTarget, log: Logger): TurnPresenter {
  const { client, quick, options } = ctx;
  const { channel, threadTs } = target;
  let closed = false;

  // ---- status line (throttled; only the latest pending status is sent) ----
  let statusMode: 'none' | 'assistant' | 'message' = 'none';
  let statusMessageTs: string | undefined;
  let currentStatus = 'working on it…';
  let pendingStatus: string | undefined;
  let lastStatusAt = -Infinity;
  let statusTimer: NodeJS.Timeout | undefined;
  let statusChain: Promise<void> = Promise.resolve();
  let keepAlive: NodeJS.Timeout | undefined;

  function pushStatus(text: string): void {
    if (closed) return;
    pendingStatus = text;
    currentStatus = text;
    if (statusTimer !== undefined) return;
    const flush = () => {
      statusTimer = undefined;
      const next = pendingStatus;
      pendingStatus = undefined;
      if (closed || next === undefined) return;
      lastStatusAt = Date.now();
      statusChain = statusChain.then(() => sendStatus(next)).catch((err: unknown) => log.debug({ err }, 'status update failed'));
    };
    const wait = lastStatusAt + options.statusIntervalMs - Date.now();
    // The first status goes out at once (progress within a second); later ones at most once per interval.
    if (wait <= 0) flush();
    else statusTimer = setTimeout(flush, wait);
  }

  async function sendStatus(text: string): Promise<void> {
    if (closed) return;
    if (statusMode !== 'message' && ctx.capabilities.setStatus) {
      try {
        await quick.assistant.threads.setStatus({ channel_id: channel, thread_ts: threadTs, status: `is ${text}` });
        statusMode = 'assistant';
        return;
      } catch (err) {
        const code = slackErrorCode(err);
        if (code === 'ratelimited') return;
        if (code !== undefined && UNAVAILABLE.has(code)) ctx.capabilities.setStatus = false;
        log.info({ code }, 'assistant.threads.setStatus unavailable here; showing a status message instead');
        statusMode = 'message';
      }
    }
    statusMode = 'message';
    const line = `:hourglass_flowing_sand: ${text.charAt(0).toUpperCase()}${text.slice(1)}`;
    if (statusMessageTs === undefined) {
      const posted = await quick.chat.postMessage({ channel, thread_ts: threadTs, text: line });
      statusMessageTs = posted.ts;
    } else {
      await quick.chat.update({ channel, ts: statusMessageTs, text: line });
    }
  }

  // ---- streamed answer text ----
  let streamTs: string | undefined;
  let streamBuffer = '';
  let streamBroken = !options.streaming || target.streaming === false;
  let lastAppendAt = -Infinity;
  let streamTimer: NodeJS.Timeout | undefined;
  let streamChain: Promise<void> = Promise.resolve();

  function pushText(delta: string): void {
    if (closed || streamBroken || !ctx.capabilities.streaming || statusMode === 'message') return;
    streamBuffer += delta;
    if (streamTimer !== undefined) return;
    const flush = () => {
      streamTimer = undefined;
      if (closed) return;
      lastAppendAt = Date.now();
      streamChain = streamChain.then(flushStream);
    };
    const wait = lastAppendAt + options.streamIntervalMs - Date.now();
    if (wait <= 0) flush();
    else streamTimer = setTimeout(flush, wait);
  }

  async function flushStream(): Promise<void> {
    if (streamBroken || streamBuffer === '') return;
    const text = streamBuffer.slice(0, MAX_APPEND_CHARS);
    streamBuffer = streamBuffer.slice(text.length);
    try {
      if (streamTs === undefined) {
        const started = await quick.chat.startStream({
          channel,
          thread_ts: threadTs,
          markdown_text: text,
          recipient_user_id: target.userId,
          recipient_team_id: target.userTeamId,
        });
        streamTs = started.ts;
      } else {
        await quick.chat.appendStream({ channel, ts: streamTs, markdown_text: text });
      }
    } catch (err) {
      const code = slackErrorCode(err);
      if (code === 'ratelimited') {
        // Keep the text for the next append, and wait as long as Slack asked before trying again.
        streamBuffer = text + streamBuffer;
        lastAppendAt = Date.now() + ((err as { retryAfter?: number }).retryAfter ?? 1) * 1000;
        if (!closed) pushText('');
        return;
      }
      streamBroken = true;
      if (code !== undefined && UNAVAILABLE.has(code)) ctx.capabilities.streaming = false;
      log.info({ code }, 'streaming stopped; the answer will be posted whole');
    }
    if (streamBuffer !== '' && !closed) pushText('');
  }

  async function settle(): Promise<void> {
    closed = true;
    clearTimeout(statusTimer);
    clearTimeout(streamTimer);
    clearInterval(keepAlive);
    await statusChain;
    await streamChain;
    if (streamTs !== undefined) {
      await client.chat.stopStream({ channel, ts: streamTs }).catch((err: unknown) => log.warn({ err }, 'chat.stopStream failed'));
    }
  }

  async function clearStatus(): Promise<void> {
    if (statusMode !== 'assistant') return;
    await quick.assistant.threads
      .setStatus({ channel_id: channel, thread_ts: threadTs, status: '' })
      .catch((err: unknown) => log.debug({ err }, 'clearing the status failed'));
  }

  async function remove(ts: string | undefined): Promise<void> {
    if (ts === undefined) return;
    await client.chat.delete({ channel, ts }).catch((err: unknown) => log.warn({ err, ts }, 'could not delete a progress message'));
  }

  return {
    begin() {
      pushStatus('working on it…');
      keepAlive = setInterval(() => pushStatus(currentStatus), STATUS_KEEPALIVE_MS);
      keepAlive.unref();
    },

    progress(p: Progress) {
      if (p.type === 'status') pushStatus(p.text.trim() === '' ? 'working on it…' : p.text.charAt(0).toLowerCase() + p.text.slice(1));
      else pushText(p.delta);
    },

    async deliver(reply: Reply) {
      await settle();
      const { messages, longAnswer } = composeMessages(reply);
      // The first message takes the place of the streamed or status message, so the thread reads cleanly.
      let reusable = streamTs ?? statusMessageTs;
      const leftover = streamTs !== undefined ? statusMessageTs : undefined;
      for (const message of messages) {
        const payload = { channel, text: message.text, blocks: message.blocks };
        try {
          if (reusable !== undefined) {
            const ts = reusable;
            reusable = undefined;
            try {
              await client.chat.update({ ...payload, ts });
              continue;
            } catch (err) {
              log.warn({ err }, 'could not rewrite the progress message; posting the answer as a new one');
              await remove(ts);
            }
          }
          await client.chat.postMessage({ ...payload, thread_ts: threadTs, unfurl_links: false, unfurl_media: false });
        } catch (err) {
          log.error({ err, code: slackErrorCode(err) }, 'posting the answer failed');
        }
      }
      await remove(reusable);
      await remove(leftover);
      await clearStatus();
      await uploadAll(reply, longAnswer);
    },

    async abandon() {
      await settle();
      await remove(streamTs);
      await remove(statusMessageTs);
      await clearStatus();
    },
  };

  async function uploadAll(reply: Reply, longAnswer: boolean): Promise<void> {
    const fromOutput = (output: ReplyOutput, title: string) => ({
      label: title,
      args: async () => ({ file: await readOutput(output, Number.MAX_SAFE_INTEGER), filename: output.name, title }),
    });
    const uploads: { label: string; args: () => Promise<Record<string, unknown>> }[] = [
      ...reply.images.map((image) => fromOutput(image, image.title || image.name)),
      ...reply.files.map((file) => fromOutput(file, file.name)),
    ];
    if (longAnswer) uploads.push({ label: 'answer.md', args: async () => ({ content: reply.text, filename: 'answer.md', title: 'The full answer' }) });
    if (options.showCode && reply.code.length > 0) {
      uploads.push({
        label: 'code.py',
        args: async () => ({ content: codeFile(reply.code), filename: 'code.py', title: 'The code behind this answer', snippet_type: 'python' }),
      });
    }
    const failed: string[] = [];
    for (const upload of uploads) {
      try {
        // One upload per file, so that one failure cannot take the others down with it.
        const args = await upload.args();
        await client.files.uploadV2({ channel_id: channel, thread_ts: threadTs, ...args } as Parameters<WebClient['files']['uploadV2']>[0]);
      } catch (err) {
        log.warn({ err, file: upload.label, code: slackErrorCode(err) }, 'upload failed');
        failed.push(upload.label);
      }
    }
    if (failed.length === 0) return;
    const names = failed.map((n) => `*${n}*`).join(', ');
    const text = `:warning: I could not upload ${names} to this thread (Slack refused the upload). The rest of the answer is complete; ask again if you need ${failed.length === 1 ? 'it' : 'them'}.`;
    await client.chat
      .postMessage({ channel, thread_ts: threadTs, text, blocks: [{ type: 'context', elements: [{ type: 'mrkdwn', text }] }] })
      .catch((err: unknown) => log.error({ err }, 'could not report the failed uploads'));
  }
}

interface SlackMessage {
  text: string;
  blocks: Record<string, unknown>[];
}

/** The reply's text as section messages, its notices as a context block on the last one. Pure. */
export function composeMessages(reply: Reply): { messages: SlackMessage[]; longAnswer: boolean } {
  const markdown = reply.kind === 'error' && reply.text.trim() !== '' ? `:warning: ${reply.text}` : reply.text;
  let chunks = splitSlackText(markdownToSlack(markdown), MAX_MESSAGE_CHARS);
  const longAnswer = chunks.length > MAX_TEXT_MESSAGES;
  if (longAnswer) chunks = [chunks[0]!, '_The answer is long, so the whole of it is attached below as answer.md._'];
  const messages: SlackMessage[] = chunks.map((chunk) => ({
    text: chunk,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: chunk }, expand: true }],
  }));
  if (reply.notices.length > 0) {
    const lines = reply.notices.map((n) => markdownToSlack(n).slice(0, MAX_MESSAGE_CHARS));
    const elements = lines.slice(0, CONTEXT_ELEMENTS - 1);
    if (lines.length >= CONTEXT_ELEMENTS) elements.push(lines.slice(CONTEXT_ELEMENTS - 1).join('\n').slice(0, MAX_MESSAGE_CHARS));
    const context = { type: 'context', elements: elements.map((text) => ({ type: 'mrkdwn', text })) };
    const last = messages[messages.length - 1];
    if (last !== undefined) last.blocks.push(context);
    else messages.push({ text: lines.join('\n').slice(0, MAX_MESSAGE_CHARS), blocks: [context] });
  }
  return { messages, longAnswer };
}

/** All code cells as one Python file, each cell's output kept as comments under it. */
export function codeFile(cells: CodeCell[]): string {
  return (
    cells
      .map((cell, i) => {
        const header = cells.length > 1 ? `# ---- step ${i + 1} of ${cells.length} ----\n` : '';
        const printed = cell.output?.trim() ?? '';
        const output = printed === '' ? '' : `\n\n# Output:\n${printed.slice(0, 4000).split('\n').map((l) => `# ${l}`).join('\n')}`;
        return `${header}${cell.code.trimEnd()}${output}`;
      })
      .join('\n\n\n') + '\n'
  );
}
