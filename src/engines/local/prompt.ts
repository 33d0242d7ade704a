import type { ExecutionLimits } from './interpreter.js';
import { SANDBOX_DATA_DIR, type SandboxSpec } from './sandbox.js';
import type { PythonEnvironment } from './setup.js';
import { formatBytes } from './tool.js';

/** What the model is told about its Python, and what `help` tells people. Both come from the real probe. */

interface Described {
  spec: SandboxSpec;
  environment: PythonEnvironment;
}

interface Settings {
  limits: ExecutionLimits;
  maxFileBytes: number;
  idleMs: number;
}

/** Hints for what is missing, where there is a way around it. */
const WORKAROUNDS: Record<string, string> = {
  'python-pptx': '.pptx files can still be read as a zip of XML with zipfile and lxml',
};

function packages(environment: PythonEnvironment): { installed: string[]; missing: string[] } {
  const entries = Object.entries(environment.packages);
  return {
    installed: entries.flatMap(([name, version]) => (version === null ? [] : [version === '' ? name : `${name} ${version}`])),
    missing: entries.flatMap(([name, version]) => (version === null ? [WORKAROUNDS[name] ? `${name} (${WORKAROUNDS[name]})` : name] : [])),
  };
}

function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} seconds`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} minutes` : `${Math.round(minutes / 60)} hours`;
}

export function systemPrompt(instructions: string, described: Described, workdir: string, settings: Settings): string {
  const { installed, missing } = packages(described.environment);
  const elsewhere = workdir === SANDBOX_DATA_DIR ? '' : ` (${SANDBOX_DATA_DIR} does not exist here: use ${workdir} instead)`;
  return [
    instructions,
    '',
    `How you run code: call the \`python\` tool. It runs Python ${described.environment.python} on the organisation's own server, in one`,
    'persistent session per conversation: variables and imports persist between calls, like a notebook.',
    `The working directory is ${workdir}${elsewhere}; the user's files are there, and files you save there are attached to your answer.`,
    'Matplotlib figures still open after a call are attached as PNG images, so there is no need to save them as well.',
    'There is no internet access and packages cannot be installed.',
    `Installed: ${installed.join(', ')}.${missing.length > 0 ? ` Not installed: ${missing.join('; ')}.` : ''}`,
    `Each call may run for ${duration(settings.limits.wallMs)} and use ${formatBytes(settings.limits.memoryBytes)} of memory; print summaries, not whole tables.`,
  ].join('\n');
}

export function helpLines(described: Described, settings: Settings): string[] {
  const { installed, missing } = packages(described.environment);
  const { limits } = settings;
  const lines = [
    described.spec.mode === 'bwrap'
      ? '**Python:** runs on this server in a sandbox with no network access that sees only this conversation\'s files.'
      : '**Python:** runs on this server, without a sandbox.',
    `**Installed:** ${installed.join(', ')}.${missing.length > 0 ? ` Not installed: ${missing.join('; ')}.` : ''}`,
    `**Per run:** up to ${duration(limits.wallMs)}, ${formatBytes(limits.memoryBytes)} of memory, ${formatBytes(limits.maxFileBytes)} per file written. ` +
      `Variables are kept for ${duration(settings.idleMs)} between questions, files until \`reset\`.`,
  ];
  if (described.spec.mode === 'none') {
    lines.unshift("⚠️ **No sandbox** (CRUNCH_SANDBOX=none): the code I run can reach this server's network and files. An admin should install bubblewrap.");
  }
  return lines;
}
