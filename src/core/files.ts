import type { Readable } from 'node:stream';
import { addAbortSignal, Transform, type TransformCallback } from 'node:stream';
import { FileTypeParser } from 'file-type';
import { AttachmentError, CrunchError } from './errors.js';
import type { Attachment } from './turn.js';

/**
 * The file types the hosted code interpreter accepts, by extension, with the MIME type Crunch uploads them
 * as and, for binary formats, what the content must sniff as (file-type's `ext`). Text formats must not
 * sniff as any binary format.
 */
interface FileRule {
  mime: string;
  /** Other MIME types platforms send for this extension. */
  aliases?: string[];
  /** For binary formats: acceptable sniffed types. Undefined means a text format. */
  sniff?: string[];
  label: string;
}

const OOXML = 'application/vnd.openxmlformats-officedocument';
const RULES: Record<string, FileRule> = {
  c: { mime: 'text/x-c', aliases: ['text/x-csrc'], label: 'C source' },
  cpp: { mime: 'text/x-c++', aliases: ['text/x-c++src'], label: 'C++ source' },
  css: { mime: 'text/css', label: 'CSS' },
  csv: { mime: 'text/csv', aliases: ['application/csv', 'application/vnd.ms-excel', 'text/comma-separated-values'], label: 'CSV' },
  docx: { mime: `${OOXML}.wordprocessingml.document`, sniff: ['docx', 'zip'], label: 'Word document' },
  gif: { mime: 'image/gif', sniff: ['gif'], label: 'GIF image' },
  html: { mime: 'text/html', label: 'HTML' },
  java: { mime: 'text/x-java', aliases: ['text/x-java-source'], label: 'Java source' },
  jpeg: { mime: 'image/jpeg', sniff: ['jpg'], label: 'JPEG image' },
  jpg: { mime: 'image/jpeg', sniff: ['jpg'], label: 'JPEG image' },
  js: { mime: 'text/javascript', aliases: ['application/javascript'], label: 'JavaScript' },
  json: { mime: 'application/json', label: 'JSON' },
  md: { mime: 'text/markdown', aliases: ['text/x-markdown'], label: 'Markdown' },
  pdf: { mime: 'application/pdf', sniff: ['pdf'], label: 'PDF' },
  php: { mime: 'text/x-php', aliases: ['application/x-httpd-php'], label: 'PHP source' },
  png: { mime: 'image/png', sniff: ['png'], label: 'PNG image' },
  pptx: { mime: `${OOXML}.presentationml.presentation`, sniff: ['pptx', 'zip'], label: 'PowerPoint presentation' },
  py: { mime: 'text/x-python', aliases: ['text/x-script.python', 'application/x-python-code'], label: 'Python source' },
  rb: { mime: 'text/x-ruby', aliases: ['application/x-ruby'], label: 'Ruby source' },
  tar: { mime: 'application/x-tar', sniff: ['tar'], label: 'tar archive' },
  tex: { mime: 'text/x-tex', aliases: ['application/x-tex'], label: 'TeX' },
  ts: { mime: 'application/typescript', aliases: ['text/typescript', 'video/mp2t'], label: 'TypeScript' },
  txt: { mime: 'text/plain', label: 'text' },
  xlsx: { mime: `${OOXML}.spreadsheetml.sheet`, sniff: ['xlsx', 'zip'], label: 'Excel workbook' },
  xml: { mime: 'application/xml', aliases: ['text/xml'], label: 'XML' },
  zip: { mime: 'application/zip', aliases: ['application/x-zip-compressed'], sniff: ['zip', 'docx', 'xlsx', 'pptx'], label: 'zip archive' },
};

export const SUPPORTED_EXTENSIONS: readonly string[] = Object.keys(RULES).sort();

const GENERIC_MIME = new Set(['', 'application/octet-stream', 'binary/octet-stream', 'application/binary']);
const SNIFF_SAMPLE_BYTES = 4100;

export interface FileLimits {
  maxFileBytes: number;
  maxFilesPerTurn: number;
}

/** An attachment that passed the checks that need no download. */
export interface CandidateFile {
  attachment: Attachment;
  /** The name to upload under (an extension is added when only the MIME type told what it is). */
  name: string;
  ext: string;
  mime: string;
}

export interface Screening {
  candidates: CandidateFile[];
  /** One friendly line per refused file. */
  refusals: string[];
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${+(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 * 1024) return `${+(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} bytes`;
}

export function formatDuration(ms: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (ms < 60_000) return unit(Math.max(1, Math.round(ms / 1000)), 'second');
  return unit(Math.round(ms / 60_000), 'minute');
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

function extensionForMime(mime: string): string | undefined {
  for (const [ext, rule] of Object.entries(RULES)) {
    if (rule.mime === mime || rule.aliases?.includes(mime)) return ext;
  }
  return undefined;
}

const supportedList = () => SUPPORTED_EXTENSIONS.join(', ');

/** Decides, from names, declared types and sizes alone, which attachments go on to be downloaded. */
export function screenAttachments(attachments: Attachment[], limits: FileLimits): Screening {
  const candidates: CandidateFile[] = [];
  const refusals: string[] = [];
  for (const attachment of attachments) {
    const declared = (attachment.mimeType ?? '').split(';')[0]!.trim().toLowerCase();
    let name = attachment.name.trim() || 'file';
    let ext = extensionOf(name);
    if (!(ext in RULES)) {
      const fromMime = GENERIC_MIME.has(declared) ? undefined : extensionForMime(declared);
      if (fromMime !== undefined && ext === '') {
        ext = fromMime;
        name = `${name}.${ext}`;
      } else {
        const what = ext === '' ? 'files without an extension are' : `.${ext} is`;
        refusals.push(`**${attachment.name}** skipped: ${what} not supported. Supported types: ${supportedList()}.`);
        continue;
      }
    }
    if (attachment.sizeBytes !== undefined && attachment.sizeBytes > limits.maxFileBytes) {
      refusals.push(
        `**${attachment.name}** skipped: it is ${formatBytes(attachment.sizeBytes)}, over the ${formatBytes(limits.maxFileBytes)} limit per file.`,
      );
      continue;
    }
    if (attachment.sizeBytes === 0) {
      refusals.push(`**${attachment.name}** skipped: the file is empty.`);
      continue;
    }
    if (candidates.length >= limits.maxFilesPerTurn) {
      refusals.push(`**${attachment.name}** skipped: I take at most ${limits.maxFilesPerTurn} files per message; send it in a follow-up.`);
      continue;
    }
    candidates.push({ attachment, name, ext, mime: RULES[ext]!.mime });
  }
  return { candidates, refusals };
}

/**
 * Opens a candidate's download and checks its first bytes against its extension (content sniffing), then
 * returns the stream, still unread past the sample, with a byte counter that fails the stream once the
 * file passes the size limit. Nothing is buffered beyond the sniffing sample. A download that fails
 * midway fails the returned stream with an `AttachmentError`; destroying the returned stream, or aborting
 * `signal` (the turn's deadline), closes the download.
 */
export async function openChecked(candidate: CandidateFile, limits: FileLimits, signal?: AbortSignal): Promise<Readable> {
  const name = candidate.attachment.name;
  const rule = RULES[candidate.ext]!;
  signal?.throwIfAborted();
  const source = await candidate.attachment.open();
  let sniffed: Readable & { fileType?: { ext: string } };
  try {
    sniffed = await new FileTypeParser(signal ? { signal } : {}).toDetectionStream(source, { sampleSize: SNIFF_SAMPLE_BYTES });
  } catch (err) {
    source.destroy();
    throw signal?.aborted ? err : downloadFailed(name, err);
  }
  const problem = sniffProblem(rule, candidate.ext, sniffed.fileType?.ext);
  if (problem !== undefined) {
    sniffed.destroy();
    throw new CrunchError('attachment_rejected', `**${name}** skipped: ${problem}`);
  }
  const guard = sizeGuard(name, limits.maxFileBytes, rule.sniff === undefined);
  // pipe() alone neither forwards errors nor closes the source: do both, explicitly.
  sniffed.on('error', (err) => guard.destroy(err instanceof CrunchError || signal?.aborted ? err : downloadFailed(name, err)));
  guard.on('close', () => sniffed.destroy());
  if (signal) addAbortSignal(signal, guard);
  return sniffed.pipe(guard);
}

function downloadFailed(name: string, err: unknown): CrunchError {
  if (err instanceof CrunchError) return err;
  return new AttachmentError(`**${name}** skipped: the download failed midway (${(err as Error)?.message ?? 'connection lost'}). Please share it again.`, {
    cause: err,
  });
}

function sniffProblem(rule: FileRule, ext: string, detected: string | undefined): string | undefined {
  if (rule.sniff !== undefined) {
    if (detected === undefined) return `it does not look like a valid ${rule.label} (the file may be damaged or renamed).`;
    if (!rule.sniff.includes(detected)) return `its content is a .${detected} file, not a ${rule.label}.`;
    return undefined;
  }
  if (detected !== undefined && !TEXT_LIKE_SNIFFS.has(detected)) {
    return `its content is a .${detected} file, not ${rule.label} text as the .${ext} name says.`;
  }
  return undefined;
}

/** Formats file-type may report for text files. */
const TEXT_LIKE_SNIFFS = new Set(['xml', 'html', 'svg', 'json', 'csv', 'txt']);

function sizeGuard(name: string, maxBytes: number, text: boolean): Transform {
  let seen = 0;
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBytes) {
        done(new CrunchError('attachment_rejected', `**${name}** skipped: it is over the ${formatBytes(maxBytes)} limit per file.`));
        return;
      }
      if (first && text && chunk.subarray(0, SNIFF_SAMPLE_BYTES).includes(0)) {
        done(new CrunchError('attachment_rejected', `**${name}** skipped: it looks like a binary file, not text as its name says.`));
        return;
      }
      first = false;
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      done(seen === 0 ? new CrunchError('attachment_rejected', `**${name}** skipped: the file is empty.`) : null);
    },
  });
}

export interface HelpLimits extends FileLimits {
  turnTimeoutMs: number;
}

const INTRO = "**I'm Crunch.** Send me a question, with files if you like, and I write and run Python to answer it.";
const EXAMPLE = 'attach a spreadsheet and ask "plot revenue by month and flag outliers"';
/** How to follow up, in the chats: the CLI says it its own way (a chat of its own, not a thread). */
const FOLLOW_UP = 'reply in the thread to follow up: I remember the thread, its files and my earlier results';

/** What `help` answers, on every platform; `followUp` is the line on following up. */
export function helpText(limits: HelpLimits, followUp: string = FOLLOW_UP): string {
  return [
    INTRO,
    '',
    '**Try:**',
    `- ${EXAMPLE}`,
    '- "solve 3x + 11 = 14" or "integrate x^2 e^x"',
    `- ${followUp}`,
    '',
    `**Files:** ${supportedList()}; up to ${formatBytes(limits.maxFileBytes)} each and ${limits.maxFilesPerTurn} per message.`,
    `**Time:** a question may run for up to ${formatDuration(limits.turnTimeoutMs)}.`,
    '**Commands:** `help` shows this; `reset` (or `new`) starts a fresh conversation here.',
  ].join('\n');
}

/** What Crunch says once when someone installs it or first opens it, on every platform: what it does, an example, the file types. */
export function greetingText(): string {
  return [`👋 ${INTRO}`, '', `For example, ${EXAMPLE}.`, '', `**Files I read:** ${supportedList()}.`, 'Say `help` for more, any time.'].join('\n');
}
