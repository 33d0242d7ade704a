import type OpenAI from 'openai';
import type { CodeCell, ProgressSink } from '../../core/index.js';
import { cleanText, StreamedTextCleaner } from '../shared/answer.js';
import type { RetryPolicy } from '../shared/errors.js';
import { type RoundUsage, streamRound } from './completion.js';
import { estimateTokens, fitHistory, type Message, type ToolCall } from './history.js';
import type { ExecutionLimits } from './interpreter.js';
import { cellOutput, codeFromArguments, type ExecutionReport, PYTHON_TOOL, toolResult } from './tool.js';

/**
 * The agent loop of one turn: ask the model, run the Python it asks for, hand back what happened, until
 * it answers without a tool call. At most `maxToolRounds` executions per turn: past that the model is
 * asked to answer with what it has (tool_choice "none"), and tool calls it still makes are not run.
 */

export interface AgentOptions {
  client: OpenAI;
  model: string;
  system: string;
  retry: RetryPolicy;
  signal: AbortSignal;
  progress: ProgressSink;
  maxToolRounds: number;
  contextTokens: number;
  limits: ExecutionLimits;
  execute(code: string): Promise<ExecutionReport>;
  /** Saves the conversation so far (after each round of tool calls), so a failed turn keeps its work. */
  checkpoint(messages: Message[]): Promise<void>;
}

export interface AgentResult {
  text: string;
  code: CodeCell[];
  messages: Message[];
  /** Summed over the turn's rounds; undefined when the server reported none. */
  usage: RoundUsage | undefined;
}

const TOOL_TOKENS = estimateTokens(JSON.stringify(PYTHON_TOOL));

export async function runAgent(options: AgentOptions, history: Message[], userText: string): Promise<AgentResult> {
  const { progress, maxToolRounds } = options;
  const fixedTokens = estimateTokens(options.system) + TOOL_TOKENS;
  let messages: Message[] = [...history, { role: 'user', content: userText }];
  const cleaner = new StreamedTextCleaner();
  const emit = (text: string) => {
    if (text !== '') progress({ type: 'text', delta: text });
  };
  const texts: string[] = [];
  const code: CodeCell[] = [];
  let executions = 0;
  let stoppedAtBound = false;
  let finishReason: string | null = null;
  let usage: RoundUsage | undefined;

  for (;;) {
    const toolsAllowed = executions < maxToolRounds;
    messages = fitHistory(messages, options.contextTokens, fixedTokens);
    progress({ type: 'status', text: 'thinking…' });
    let started = false;
    const round = await streamRound(
      options.client,
      {
        model: options.model,
        messages: [{ role: 'system', content: options.system }, ...messages],
        tools: [PYTHON_TOOL],
        tool_choice: toolsAllowed ? 'auto' : 'none',
        stream: true,
      },
      options.retry,
      options.signal,
      (delta) => {
        // Text of an earlier round (before its tool calls) is a paragraph of its own.
        if (!started && texts.length > 0) emit(cleaner.push('\n\n'));
        started = true;
        emit(cleaner.push(delta));
      },
    );
    if (round.usage) usage = addUsage(usage, round.usage);
    if (round.content.trim() !== '') texts.push(round.content);
    const calls: ToolCall[] = round.calls.map((call, i) => ({
      id: call.id || `call_${messages.length}_${i}`,
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
    }));
    // The API takes a null content only beside tool calls.
    messages.push({ role: 'assistant', content: round.content === '' && calls.length > 0 ? null : round.content, ...(calls.length > 0 ? { tool_calls: calls } : {}) });
    if (calls.length === 0) {
      finishReason = round.finishReason;
      break;
    }
    for (const call of calls) {
      let content: string;
      const source = codeFromArguments(call.function.arguments);
      if (executions >= maxToolRounds) {
        stoppedAtBound = true;
        content = `Not run: ${maxToolRounds} Python runs is the most for one question. Answer now with what you have.`;
      } else if (call.function.name !== 'python') {
        content = `There is no tool named "${call.function.name}"; the only tool is python.`;
      } else if (source === undefined) {
        content = 'Not run: the arguments must be a JSON object like {"code": "print(1 + 1)"}.';
      } else {
        executions += 1;
        progress({ type: 'status', text: 'running Python…' });
        const report = await options.execute(source);
        content = toolResult(report, options.limits);
        const output = cellOutput(report, options.limits);
        code.push(output === undefined ? { code: source } : { code: source, output });
      }
      messages.push({ role: 'tool', tool_call_id: call.id, content });
    }
    await options.checkpoint(messages);
    // The model was asked to stop calling tools and did not: what it wrote so far is the answer.
    if (!toolsAllowed) break;
  }

  emit(cleaner.flush());
  let text = cleanText(texts.join('\n\n'));
  if (stoppedAtBound) text += `\n\n_(I stopped after ${maxToolRounds} Python runs, the most I make for one question. Say "continue" to let me go on.)_`;
  else if (finishReason === 'length' || finishReason === 'content_filter') text += `\n\n_(The answer was cut short: ${finishReason}.)_`;
  return { text: text.trim(), code, messages, usage };
}

function addUsage(total: RoundUsage | undefined, round: RoundUsage): RoundUsage {
  if (total === undefined) return round;
  return {
    model: round.model || total.model,
    inputTokens: total.inputTokens + round.inputTokens,
    cachedTokens: total.cachedTokens + round.cachedTokens,
    outputTokens: total.outputTokens + round.outputTokens,
  };
}
