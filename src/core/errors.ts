/**
 * Every failure Crunch knows how to explain carries a stable code. `toUserMessage` is the one place that
 * turns an error into the friendly text a person sees in the chat; logs keep the code and the cause.
 */
export type CrunchErrorCode =
  | 'attachment_unavailable' // the platform refused the download (missing scope, expired link)
  | 'attachment_rejected' // unsupported type, too large, too many, corrupt
  | 'engine_auth' // bad API key or deployment
  | 'engine_quota' // insufficient_quota / billing
  | 'engine_rejected' // 400: the request itself was refused
  | 'engine_content_policy'
  | 'engine_unavailable' // transient failures that outlived the retries
  | 'deadline' // the turn ran past its time limit and was cancelled
  | 'output_unavailable' // a chart or file the code made is gone (expired sandbox) or too large
  | 'store_unavailable' // the store (SQLite, Redis) cannot be reached
  | 'config'
  | 'internal';

export class CrunchError extends Error {
  readonly code: CrunchErrorCode;
  /** Safe to show in a chat: no secrets, no stack. */
  readonly userMessage: string;

  constructor(code: CrunchErrorCode, userMessage: string, options?: { cause?: unknown }) {
    super(userMessage, options);
    this.name = 'CrunchError';
    this.code = code;
    this.userMessage = userMessage;
  }
}

/** An attachment could not be downloaded from the platform; the message says what to do about it. */
export class AttachmentError extends CrunchError {
  constructor(userMessage: string, options?: { cause?: unknown }) {
    super('attachment_unavailable', userMessage, options);
    this.name = 'AttachmentError';
  }
}

export function toUserMessage(err: unknown): string {
  if (err instanceof CrunchError) return err.userMessage;
  return 'Something went wrong on my side while working on this. Nothing was lost: please try again in a moment.';
}

export function errorCode(err: unknown): CrunchErrorCode {
  return err instanceof CrunchError ? err.code : 'internal';
}
