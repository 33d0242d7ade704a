import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import OpenAI from 'openai';
import type { Response, ResponseOutputText } from 'openai/resources/responses/responses';
import { type CodeCell, CrunchError, type EngineOutput, type Json } from '../../core/index.js';
import { cleanText, MAX_OUTPUT_FILES, mimeFor, moreFilesNotice, pngFirst, titleFor, tooLargeNotice } from '../shared/answer.js';
import { type RetryPolicy, withRetries } from '../shared/errors.js';

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

/** Whether the response ran code: only code writes files to collect. */
export const ranCode = (response: Response): boolean => response.output.some((item) => item.type === 'code_interpreter_call');

export async function collectAnswer(
  ctx: OutputContext,
  response: Response,
  containerId: string,
  before: ReadonlySet<string>,
): Promise<AnswerParts> {
  const { text, refs } = citedFiles(response);
  // Code that did not run wrote nothing: the listing (a request) is only needed after a code_interpreter call.
  const listed = ranCode(response) ? await listContainer(ctx, containerId) : undefined;
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
    if (ref.bytes !== undefined && ref.bytes > ctx.maxFileBytes) notices.push(tooLargeNotice(ref.name));
    else kept.push(ref);
  }
  const outputs = pngFirst(kept.slice(0, MAX_OUTPUT_FILES).map(toOutput));
  const rest = kept.slice(MAX_OUTPUT_FILES).map((ref) => ref.name);
  if (rest.length > 0) notices.push(moreFilesNotice(rest));
  return { text: cleanText(text), outputs, code: collectCode(response), notices, containerFiles: listed.map((f) => f.fileId) };
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
