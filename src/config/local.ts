import { z } from 'zod';

/** CRUNCH_ENGINE, and the settings of the local engine (README, "The local engine"); each is documented in .env.example. */

const positiveInt = z.coerce.number().int().positive();

export const localEngineEnv = {
  CRUNCH_ENGINE: z.enum(['responses', 'local']).default('responses'),
  CRUNCH_SANDBOX: z.enum(['bwrap', 'none']).default('bwrap'),
  CRUNCH_SESSIONS_DIR: z.string().trim().min(1).default('./data/sessions'),
  CRUNCH_PYTHON: z.string().trim().min(1).default('/usr/bin/python3'),
  CRUNCH_SESSION_IDLE_MS: positiveInt.default(15 * 60 * 1000),
  CRUNCH_POOL_SIZE: z.coerce.number().int().min(0).max(32).default(2),
  CRUNCH_MAX_SESSIONS: positiveInt.max(1000).default(8),
  CRUNCH_MAX_TOOL_ROUNDS: positiveInt.max(100).default(12),
  CRUNCH_CONTEXT_TOKENS: positiveInt.min(2000).default(32_000),
  CRUNCH_EXEC_TIMEOUT_MS: positiveInt.min(1000).default(120_000),
  CRUNCH_EXEC_CPU_SECONDS: positiveInt.default(60),
  CRUNCH_EXEC_MEMORY_MB: positiveInt.min(256).default(2048),
  CRUNCH_EXEC_MAX_PROCESSES: positiveInt.min(8).max(4096).default(32),
  CRUNCH_EXEC_MAX_FILE_MB: positiveInt.default(512),
  CRUNCH_EXEC_MAX_OUTPUT_CHARS: positiveInt.min(10_000).default(2_000_000),
  CRUNCH_EXEC_TMP_MB: positiveInt.min(16).default(512),
};

type LocalEnv = z.infer<z.ZodObject<typeof localEngineEnv>>;

/** CRUNCH_ENGINE=local: the model drives Python in a sandbox on this machine (see README, "The local engine"). */
export interface LocalConfig {
  /** bwrap: bubblewrap sandbox (required unless `none` says otherwise). */
  sandbox: 'bwrap' | 'none';
  /** Where each conversation's folder (its /mnt/data) and its answers' files live. */
  sessionsDir: string;
  python: string;
  /** A conversation's interpreter idle this long is stopped (its files stay). */
  idleMs: number;
  /** Interpreters kept started ahead of need, for new conversations. */
  poolSize: number;
  /** Interpreters running at once; more conversations wait. */
  maxSessions: number;
  maxToolRounds: number;
  /** The conversation's messages are trimmed to about this many tokens. */
  contextTokens: number;
  /** Size of each sandbox's private /tmp. */
  tmpBytes: number;
  limits: {
    wallMs: number;
    cpuSeconds: number;
    memoryBytes: number;
    maxProcesses: number;
    maxFileBytes: number;
    maxOutputChars: number;
  };
}

const MB = 1024 * 1024;

export function localConfig(e: LocalEnv): LocalConfig {
  return {
    sandbox: e.CRUNCH_SANDBOX,
    sessionsDir: e.CRUNCH_SESSIONS_DIR,
    python: e.CRUNCH_PYTHON,
    idleMs: e.CRUNCH_SESSION_IDLE_MS,
    poolSize: e.CRUNCH_POOL_SIZE,
    maxSessions: e.CRUNCH_MAX_SESSIONS,
    maxToolRounds: e.CRUNCH_MAX_TOOL_ROUNDS,
    contextTokens: e.CRUNCH_CONTEXT_TOKENS,
    tmpBytes: e.CRUNCH_EXEC_TMP_MB * MB,
    limits: {
      wallMs: e.CRUNCH_EXEC_TIMEOUT_MS,
      cpuSeconds: e.CRUNCH_EXEC_CPU_SECONDS,
      memoryBytes: e.CRUNCH_EXEC_MEMORY_MB * MB,
      maxProcesses: e.CRUNCH_EXEC_MAX_PROCESSES,
      maxFileBytes: e.CRUNCH_EXEC_MAX_FILE_MB * MB,
      maxOutputChars: e.CRUNCH_EXEC_MAX_OUTPUT_CHARS,
    },
  };
}

