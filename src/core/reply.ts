export interface ReplyImage {
  /** A short human title, used as the upload title or alt text. */
  title: string;
  /** A file name ending in .png. */
  name: string;
  png: Buffer;
}

export interface ReplyFile {
  name: string;
  mimeType: string;
  data: Buffer;
}

export interface CodeCell {
  code: string;
  /** What the code printed, if anything. */
  output?: string;
}

export type ReplyKind = 'answer' | 'help' | 'reset' | 'error';

/** What Crunch says back. `text` is markdown; adapters convert it at the edge. */
export interface Reply {
  kind: ReplyKind;
  text: string;
  images: ReplyImage[];
  files: ReplyFile[];
  code: CodeCell[];
  /** One line per file that was skipped, and why, in markdown. Already part of nothing else. */
  notices: string[];
  /** Set when the turn failed; `text` then holds the friendly explanation. */
  error?: { code: string };
}

export function textReply(kind: ReplyKind, text: string, notices: string[] = []): Reply {
  return { kind, text, images: [], files: [], code: [], notices };
}
