import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import OpenAI from 'openai';
import type { Response, ResponseOutputText } from 'openai/resources/responses/responses';
import { type CodeCell, CrunchError, type EngineOutput, type Json } from '../../core/index.js';
import { type RetryPolicy, withRetries } from './errors.js';

/**
 * A finished response → the answer's parts. Charts and files the code wrote come back as
 * `container_file_citation` annotations; files the code saved without citing them are found by listing
 * the container once, after the response (the session remembers which files were there before, so no
 * listing is needed ahead of it). Outputs are not downloaded here: each is a reference to its container
 * file, streamed from the container when the platform takes it (`openContainerFile`).
 */

export interface OutputContext {
  client: OpenAI;
  retry: RetryPolicy;
  signal: AbortSignal;
  /** Generated files above this size are not downloaded (a notice says so). */
  maxFileBytes: number;
}

export interface AnswerParts {
  text: string;
  outputs: EngineOutput[];
  code: CodeCell[];
  /** Lines about outputs that could not be delivered. */
  notices: string[];
  /** Every file in the container after this turn, for the next turn to tell its new files apart. */
  containerFiles: string[];
}

/** How an output is found again: its container and container file id. */
export interface ContainerFileRef {
  containerId: string;
  fileId: string;
  name: string;
  bytes?: number;
}

const MIME_BY_EXT: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  csv: 'text/csv',
  txt: 'text/plain',
  json: 'application/json',
  md: 'text/markdown',
  html: 'text/html',
  pdf: 'application/pdf',
  zip: 'application/zip',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  py: 'text/x-python',
};

export function mimeFor(name: string): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  return MIME_BY_EXT[ext] ?? 'application/octet-stream';
}

/** "revenue_by_month.png" → "Revenue by month" */
export function titleFor(name: string): string {
  const base = name.replace(/^.*\//, '').replace(/\.[^.]+$/, '');
  // Images the code only displayed are named after their container file id (cfile_…).
  if (base === '' || /^cfile_[0-9a-f]+$/i.test(base)) return 'Chart';
  const words = base.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Sandbox links the model writes for its files (they are attached instead): images dropped, others → the name. */
function replaceSandboxLinks(text: string): string {
  return text.replace(/!\[[^\]]*\]\(sandbox:[^)]*\)\n?/g, '').replace(/\[([^\]]+)\]\(sandbox:[^)]*\)/g, '**$1**');
}

export function cleanText(text: string): string {
  return replaceSandboxLinks(text)
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** An unfinished markdown link held back while streaming is released after this many characters. */
const MAX_HELD_CHARS = 400;

/**
 * The same cleaning for streamed text: deltas may end inside a link, so text from an unfinished `[` on is
 * held back until the link is complete (or clearly is not one), then passed on with sandbox links replaced.
 */
export class StreamedTextCleaner {
  private held = '';

  push(delta: string): string {
    const text = this.held + delta;
    const cut = unfinishedLinkStart(text);
    this.held = text.slice(cut);
    return replaceSandboxLinks(text.slice(0, cut));
  }

  /** What is still held at the end of the stream. */
  flush(): string {
    const rest = replaceSandboxLinks(this.held);
    this.held = '';
    return rest;
  }
}

/** Where an unfinished `[text](target)` (or `![…](…)`) starts at the end of `text`; `text.length` if none. */
function unfinishedLinkStart(text: string): number {
  // A trailing "!" may start an image.
  const end = text.endsWith('!') ? text.length - 1 : text.length;
  const open = text.lastIndexOf('[');
  if (open < 0 || text.length - open > MAX_HELD_CHARS) return end;
  const tail = text.slice(open);
  const image = open > 0 && text[open - 1] === '!';
  const mayStillBeLink = /^\[[^\]\n]*$/.test(tail) || /^\[[^\]\n]*\]$/.test(tail) || /^\[[^\]\n]*\]\([^)\s]*$/.test(tail);
  // A finished sandbox image at the very end waits for the next character: its line break goes with it.
  const imageAtEnd = image && /^\[[^\]\n]*\]\(sandbox:[^)]*\)$/.test(tail);
  if (!mayStillBeLink && !imageAtEnd) return end;
  return image ? open - 1 : open;
}

export function collectCode(response: Response): CodeCell[] {
  const cells: CodeCell[] = [];
  for (const item of response.output) {
    if (item.type !== 'code_interpreter_call' || !item.code) continue;
    const logs = (item.outputs ?? []).flatMap((o) => (o.type === 'logs' && o.logs.trim() !== '' ? [o.logs] : []));
    cells.push(logs.length > 0 ? { code: item.code, output: logs.join('\n') } : { code: item.code });
  }
  return cells;
}

function citedFiles(response: Response): { text: string; refs: ContainerFileRef[] } {
  const texts: string[] = [];
  const refs: ContainerFileRef[] = [];
  for (const item of response.output) {
    if (item.type !== 'message') continue;
    for (const part of item.content) {
      if (part.type !== 'output_text') continue;
      texts.push(part.text);
      for (const annotation of part.annotations as ResponseOutputText['annotations']) {
        if (annotation.type === 'container_file_citation') {
          refs.push({ containerId: annotation.container_id, fileId: annotation.file_id, name: annotation.filename });
        }
      }
    }
  }
  return { text: texts.join('\n\n'), refs };
}

/** At most this many charts and files are posted per answer: cited ones first, then the rest the code wrote. */
export const MAX_OUTPUT_FILES = 10;

interface ListedFile extends ContainerFileRef {
  source: string;
}

/** Every file in the container now (one paginated listing, retried as a whole). */
async function listContainer(ctx: OutputContext, containerId: string): Promise<ListedFile[]> {
  return withRetries(ctx.retry, ctx.signal, async () => {
    const all: ListedFile[] = [];
    for await (const file of ctx.client.containers.files.list(containerId, { order: 'asc', limit: 100 }, { signal: ctx.signal })) {
      all.push({ containerId, fileId: file.id, name: file.path.replace(/^.*\//, ''), bytes: file.bytes ?? undefined, source: file.source });
    }
    return all;
  });
}

export async function collectAnswer(
  ctx: OutputContext,
  response: Response,
  containerId: string,
  before: ReadonlySet<string>,
): Promise<AnswerParts> {
  const { text, refs } = citedFiles(response);
  // Code that did not run wrote nothing: the listing (a request) is only needed after a code_interpreter call.
  const ranCode = response.output.some((item) => item.type === 'code_interpreter_call');
  const listed = ranCode ? await listContainer(ctx, containerId) : undefined;
  if (listed === undefined) {
    return { text: cleanText(text), outputs: refs.slice(0, MAX_OUTPUT_FILES).map(toOutput), code: [], notices: [], containerFiles: [...before] };
  }
  const byId = new Map(listed.map((file) => [file.fileId, file]));
  // Cited files first (with the listing's size when it has them), then what the code wrote without citing it.
  const written = listed.filter((file) => file.source === 'assistant' && !before.has(file.fileId));
  const unique = [...new Map([...refs.map((ref) => byId.get(ref.fileId) ?? ref), ...written].map((ref) => [ref.fileId, ref])).values()];
  const notices: string[] = [];
  const kept: ContainerFileRef[] = [];
  for (const ref of unique) {
    if (ref.bytes !== undefined && ref.bytes > ctx.maxFileBytes) notices.push(`**${ref.name}** was created but is too large to attach here.`);
    else kept.push(ref);
  }
  const outputs = kept.slice(0, MAX_OUTPUT_FILES).map(toOutput);
  const pngFirst = [...outputs.filter((o) => o.mimeType === 'image/png'), ...outputs.filter((o) => o.mimeType !== 'image/png')];
  const rest = kept.slice(MAX_OUTPUT_FILES).map((ref) => ref.name);
  if (rest.length > 0) {
    const shown = rest.slice(0, 10).join(', ') + (rest.length > 10 ? ', …' : '');
    notices.push(`The code also created ${rest.length} more file${rest.length === 1 ? '' : 's'} (${shown}); ask for the ones you want, or for a zip of them.`);
  }
  return { text: cleanText(text), outputs: pngFirst, code: collectCode(response), notices, containerFiles: listed.map((f) => f.fileId) };
}

function toOutput(ref: ContainerFileRef): EngineOutput {
  const stored: Json = { containerId: ref.containerId, fileId: ref.fileId, name: ref.name };
  return {
    name: ref.name,
    title: titleFor(ref.name),
    mimeType: mimeFor(ref.name),
    ...(ref.bytes !== undefined ? { sizeBytes: ref.bytes } : {}),
    ref: stored,
  };
}

/**
 * Streams a container file. Fails with `output_unavailable` when the container or file is gone (containers
 * expire after 20 idle minutes), and the stream fails once it passes `limit` bytes.
 */
export async function openContainerFile(ctx: OutputContext, ref: ContainerFileRef): Promise<Readable> {
  let response: globalThis.Response;
  try {
    response = await withRetries(ctx.retry, ctx.signal, () =>
      ctx.client.containers.files.content.retrieve(ref.fileId, { container_id: ref.containerId }, { signal: ctx.signal }),
    );
  } catch (err) {
    const cause = err instanceof CrunchError ? err.cause : err;
    if (cause instanceof OpenAI.NotFoundError || cause instanceof OpenAI.BadRequestError) {
      throw new CrunchError('output_unavailable', `**${ref.name}** is no longer available (its sandbox expired); ask again to recreate it.`, { cause: err });
    }
    throw err;
  }
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > ctx.maxFileBytes) {
    await response.body?.cancel();
    throw new CrunchError('output_unavailable', `**${ref.name}** is too large to attach here.`);
  }
  if (!response.body) return Readable.from([]);
  let size = 0;
  const limit = ctx.maxFileBytes;
  const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  // Destroying the returned stream ends the generator, which destroys the body and closes the connection.
  return Readable.from(
    (async function* () {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) throw new CrunchError('output_unavailable', `**${ref.name}** is too large to attach here.`);
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
}
