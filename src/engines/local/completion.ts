import type OpenAI from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { isTransient, NoRetry, type RetryPolicy, withRetries } from '../shared/errors.js';

/**
 * One streamed Chat Completions request: text deltas are handed on as they come, tool calls are put
 * together from their fragments. Retried as a whole (transient failures, the engine's retry policy) while
 * no text has reached the user yet.
 */

export interface RoundCall {
  id: string;
  name: string;
  arguments: string;
}

export interface RoundUsage {
  model: string;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
}

export interface Round {
  content: string;
  calls: RoundCall[];
  finishReason: string | null;
  /** When the server reports it (the stream's last chunk, asked for with stream_options.include_usage). */
  usage?: RoundUsage;
}

export async function streamRound(
  client: OpenAI,
  body: ChatCompletionCreateParamsStreaming,
  retry: RetryPolicy,
  signal: AbortSignal,
  onText: (delta: string) => void,
): Promise<Round> {
  return withRetries(retry, signal, async () => {
    let streamed = false;
    try {
      const stream = await client.chat.completions.create({ ...body, stream_options: { include_usage: true } }, { signal });
      let content = '';
      let finishReason: string | null = null;
      let usage: RoundUsage | undefined;
      const calls = new Map<number, RoundCall>();
      for await (const chunk of stream) {
        if (chunk.usage) {
          usage = {
            model: chunk.model,
            inputTokens: chunk.usage.prompt_tokens,
            cachedTokens: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
            outputTokens: chunk.usage.completion_tokens,
          };
        }
        const choice = chunk.choices[0];
        if (!choice) continue;
        const { delta } = choice;
        if (delta?.content) {
          content += delta.content;
          streamed = true;
          onText(delta.content);
        }
        for (const fragment of delta?.tool_calls ?? []) {
          const call = calls.get(fragment.index) ?? { id: '', name: '', arguments: '' };
          if (fragment.id) call.id = fragment.id;
          if (fragment.function?.name) call.name = fragment.function.name;
          if (fragment.function?.arguments) call.arguments += fragment.function.arguments;
          calls.set(fragment.index, call);
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      const ordered = [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
      return { content, calls: ordered, finishReason, ...(usage ? { usage } : {}) };
    } catch (err) {
      // Part of the answer is already on the user's screen: a retry would repeat it.
      if (streamed && isTransient(err)) throw new NoRetry(err);
      throw err;
    }
  });
}
