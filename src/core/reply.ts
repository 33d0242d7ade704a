import type { Readable } from 'node:stream';
import { CrunchError } from './errors.js';

/** A chart or file to post with the answer. Nothing is downloaded until `open()` is called. */
export interface ReplyOutput {
  /** A short human title, used as the upload title or alt text. */
  title: string;
  /** A file name; charts end in .png. */
  name: string;
  mimeType: string;
  /** When known in advance (the engine listed it); the stream is checked against the engine's limit regardless. */
  sizeBytes?: number;
  /** Opens the content afresh; fails with a `CrunchError` when the output is no longer available. */
  open(signal?: AbortSignal): Promise<Readable>;
}

export interface CodeCell {
  code: string;
  /** What the code printed, if anything. */
  output?: string;
}

export type ReplyKind = 'answer' | 'help' | 'reset' | 'forget' | 'refused' | 'error';

/** What a turn consumed, as the engine reported it and the core priced it. */
export interface ReplyUsage {
  model: string;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  /** Hosted sandbox sessions the turn opened. */
  sandboxSessions: number;
  /** Approximate US dollars; absent when the model has no known price. */
  costUsd?: number;
}

/** What Crunch says back. `text` is markdown; adapters convert it at the edge. */
export interface Reply {
  kind: ReplyKind;
  text: string;
  /** PNG charts, shown as pictures. */
  images: ReplyOutput[];
  /** Every other output, offered as a download. */
  files: ReplyOutput[];
  code: CodeCell[];
  /** One line per file that was skipped, and why, in markdown. Already part of nothing else. */
  notices: string[];
  /** Set when the turn failed; `text` then holds the friendly explanation. */
  error?: { code: string };
  /** Set when the turn was refused (not allowed here, or over a budget); `text` says why and whom to ask. */
  refused?: 'workspace' | 'channel' | 'user' | 'budget';
  usage?: ReplyUsage;
  /**
   * With CRUNCH_SHOW_COST, the small line an answer ends with ("1,234 tokens · 1 sandbox session · ≈ $0.04"):
   * plain text, shown in the platform's small print (a Slack context block, a Teams card footer, a dim line).
   */
  receipt?: string;
}

export function textReply(kind: ReplyKind, text: string, notices: string[] = []): Reply {
  return { kind, text, images: [], files: [], code: [], notices };
}

/**
 * Reads a whole output into memory, for the places a platform needs the bytes at once (an inline chart).
 * Fails with a `CrunchError` past `limitBytes`, without reading further.
 */
export async function readOutput(output: ReplyOutput, limitBytes: number, signal?: AbortSignal): Promise<Buffer> {
  if (output.sizeBytes !== undefined && output.sizeBytes > limitBytes) throw tooLarge(output.name);
  const stream = await output.open(signal);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) {
      stream.destroy();
      throw tooLarge(output.name);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(name: string): CrunchError {
  return new CrunchError('output_unavailable', `**${name}** is too large to attach here.`);
}
