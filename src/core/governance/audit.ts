/**
 * The audit log (CRUNCH_AUDIT_LOG): one JSON line per turn, refusals included, and per conversation
 * deleted. Who, where, which files (names and sizes), what came of it, tokens and cost: never a file's
 * contents, never a credential; the question itself only with CRUNCH_AUDIT_TEXT=true. The core writes
 * entries to a sink the app opens (a file, or stdout).
 */
export interface AuditEntry {
  time: string;
  platform: string;
  workspace: string;
  channel: string;
  user: string;
  conversation: string;
  /** The message's key; absent for a conversation deleted by retention. */
  message?: string;
  files: { name: string; sizeBytes?: number }[];
  /**
   * answered; refused (reason: workspace, channel, user or budget); failed (reason: the error code);
   * command (reason: help, reset, forget); deleted (reason: retention).
   */
  outcome: 'answered' | 'refused' | 'failed' | 'command' | 'deleted';
  reason?: string;
  model?: string;
  tokens?: { input: number; cached: number; output: number };
  sandboxSessions?: number;
  /** Approximate US dollars; null when the model had no known price. */
  costUsd?: number | null;
  /** The question, only with CRUNCH_AUDIT_TEXT=true. */
  text?: string;
}

export type AuditSink = (entry: AuditEntry) => void;
