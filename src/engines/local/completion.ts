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

export interface Round {
  content: string;
  calls: RoundCall[];
  finishReason: string | null;
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
      const stream = await client.chat.completions.create(body, { signal });
      let content = '';
      let finishReason: string | null = null;
      const calls = new Map<number, RoundCall>();
      for await (const chunk of stream) {
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
      return { content, calls: [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call), finishReason };
    } catch (err) {
      // Part of the answer is already on the user's screen: a retry would repeat it.
      if (streamed && isTransient(err)) throw new NoRetry(err);
      throw err;
    }
  });
}
