import type { ChatCompletionFunctionTool } from 'openai/resources/chat/completions';
import type { ExecutionLimits, Outcome } from './interpreter.js';

/** The `python` tool the model calls, and how an execution is told back to it (and shown as "the code"). */

export const PYTHON_TOOL: ChatCompletionFunctionTool = {
  type: 'function',
  function: {
    name: 'python',
    description:
      "Runs Python 3 code in this conversation's persistent session, like a notebook cell, and returns what it printed, " +
      'the value of its last expression, any error with its traceback, and the files and figures it made. Variables and ' +
      'imports persist between calls. The working directory holds the files the user shared; save files for the user there. ' +
      'Matplotlib figures left open are attached to your answer as PNG images. There is no internet access.',
    parameters: {
      type: 'object',
      properties: { code: { type: 'string', description: 'The Python code to run.' } },
      required: ['code'],
      additionalProperties: false,
    },
  },
};

/** What one call of the tool came to, with what the engine found around it. */
export interface ExecutionReport {
  outcome: Outcome;
  /** The interpreter was a new one (the previous one was stopped), so earlier variables were gone. */
  restarted: boolean;
  /** Files the execution created or changed in the conversation folder. */
  files: { path: string; bytes: number }[];
  /** Names the captured figures were given (they are attached to the answer). */
  figures: string[];
}

/** The code from the tool call's arguments: JSON `{"code": "..."}`, as the schema asks. */
export function codeFromArguments(args: string): string | undefined {
  try {
    const parsed = JSON.parse(args) as unknown;
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { code?: unknown }).code === 'string') return (parsed as { code: string }).code;
    if (typeof parsed === 'string') return parsed;
  } catch {
    // not JSON: refused below, with a message the model can act on
  }
  return undefined;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${+(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 * 1024) return `${+(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} bytes`;
}

const RESTARTED = 'The Python session was restarted: variables and imports are gone; the files in the working directory are kept.';

/** Why an execution ended early, in words for the model, or undefined when it ran to its end. */
function stopReason(outcome: Outcome, limits: ExecutionLimits): string | undefined {
  if (outcome.kind === 'stopped') {
    if (outcome.reason === 'timeout') return `Stopped: ${outcome.detail}. ${RESTARTED}`;
    return `Stopped: ${outcome.detail}; it may have run out of memory (the limit is ${formatBytes(limits.memoryBytes)}). ${RESTARTED}`;
  }
  if (outcome.status === 'cpu_limit')
    return `Stopped: the code used up its ${limits.cpuSeconds} seconds of CPU time. Variables are kept; try a faster approach or a sample of the data.`;
  if (outcome.status === 'output_limit')
    return `Stopped: the code printed more than ${limits.maxOutputChars} characters. Variables are kept; print less (e.g. df.head()).`;
  return undefined;
}

/** The tool message the model reads. */
export function toolResult(report: ExecutionReport, limits: ExecutionLimits): string {
  const { outcome } = report;
  const parts: string[] = [];
  if (report.restarted) parts.push(`Note: ${RESTARTED.replace('was restarted', 'had been restarted before this code ran')}`);
  if (outcome.kind === 'result') {
    if (outcome.output !== '') parts.push(`Output:\n${outcome.output.trimEnd()}`);
    if (outcome.fdOutput !== '') parts.push(`Output of subprocesses and C code:\n${outcome.fdOutput.trimEnd()}`);
    if (outcome.value !== null) parts.push(`Result:\n${outcome.value}`);
    if (outcome.error) {
      const memory = outcome.error.type === 'MemoryError' ? ` (the sandbox allows ${formatBytes(limits.memoryBytes)} of memory)` : '';
      parts.push(`Error${memory}:\n${outcome.error.traceback.trimEnd()}`);
    }
    for (const note of outcome.notes) parts.push(`Note: ${note}.`);
  }
  const stopped = stopReason(outcome, limits);
  if (stopped) parts.push(stopped);
  if (report.files.length > 0) {
    parts.push(`Files created or changed: ${report.files.map((f) => `${f.path} (${formatBytes(f.bytes)})`).join(', ')}.`);
  }
  if (report.figures.length > 0) parts.push(`Figures captured and attached to your answer: ${report.figures.join(', ')}.`);
  return parts.length > 0 ? parts.join('\n\n') : 'Done (no output).';
}

/** What "show the code" prints under a cell. */
export function cellOutput(report: ExecutionReport, limits: ExecutionLimits): string | undefined {
  const { outcome } = report;
  const parts: string[] = [];
  if (outcome.kind === 'result') {
    parts.push(outcome.output.trimEnd(), outcome.fdOutput.trimEnd(), outcome.value ?? '');
    if (outcome.error) parts.push(`${outcome.error.type}: ${outcome.error.message}`);
  }
  parts.push(stopReason(outcome, limits) ?? '');
  const text = parts.filter((p) => p !== '').join('\n');
  return text === '' ? undefined : text;
}
