/** Progress reported while a turn runs, for adapters to show (status line, typing, streamed text). */
export type Progress =
  /** A short status like "reading sales.xlsx…" or "running code…". */
  | { type: 'status'; text: string }
  /** A piece of the answer text as the model writes it. */
  | { type: 'text'; delta: string };

export type ProgressSink = (progress: Progress) => void;

export const ignoreProgress: ProgressSink = () => {};
