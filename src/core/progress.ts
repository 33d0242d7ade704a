/** Progress reported while a turn runs, for adapters to show (status line, typing, streamed text). */
export type Progress =
  /** A short status like "reading sales.xlsx…" or "running code…". */
  | { type: 'status'; text: string }
  /** A piece of the answer text as the model writes it. */
  | { type: 'text'; delta: string };

export type ProgressSink = (progress: Progress) => void;

/** Passes progress on, dropping a status identical to the one just reported (each costs the adapter an edit). */
export function dropRepeatedStatus(sink: ProgressSink): ProgressSink {
  let last: string | undefined;
  return (progress) => {
    if (progress.type === 'status') {
      if (progress.text === last) return;
      last = progress.text;
    }
    sink(progress);
  };
}
