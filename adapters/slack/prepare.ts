import type { Attachment, Turn } from '../../src/core/index.js';
import { downloadUrl, type FileAccess, fileLabel, mayCarryToken, openSlackFile, outsideSlack } from './files/download.js';
import type { SlackFile } from './types.js';

/**
 * A turn's files → attachments, in the worker that runs it. Only Slack Connect files cost a call here
 * (files.info): the core screens a file by its name, type and size before opening it, and Slack sends those
 * for such a file only on request. Every download waits for `Attachment.open()`, bounded by the turn's deadline.
 */
export async function prepareFiles(turn: Turn, access: FileAccess, signal: AbortSignal): Promise<{ attachments: Attachment[]; notices: string[] }> {
  const attachments: Attachment[] = [];
  const notices: string[] = [];
  const listed = turn.files.map((ref) => ({ ...(ref.source as unknown as SlackFile), id: ref.sourceId }));
  const described = await Promise.all(listed.map((file) => describe(file, access, signal)));
  for (const entry of described) {
    if ('notice' in entry) {
      notices.push(entry.notice);
      continue;
    }
    const { file } = entry;
    const refusal = unusable(file, access);
    if (refusal !== undefined) {
      notices.push(`**${fileLabel(file)}** skipped: ${refusal}`);
      continue;
    }
    attachments.push({
      sourceId: file.id,
      name: file.name ?? file.title ?? file.id,
      ...(file.size !== undefined ? { sizeBytes: file.size } : {}),
      ...(file.mimetype ? { mimeType: file.mimetype } : {}),
      open: (openSignal) => openSlackFile(file, access, openSignal ?? signal),
    });
  }
  return { attachments, notices };
}

/** The file as Slack describes it, asking files.info when the event only says that it may (Slack Connect). */
async function describe(listed: SlackFile, access: FileAccess, signal: AbortSignal): Promise<{ file: SlackFile } | { notice: string }> {
  if (listed.file_access !== 'check_file_info' && listed.mode !== 'file_access') return { file: listed };
  try {
    return { file: { ...(await access.fileInfo(listed.id, signal)), id: listed.id } };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    const code = platformError(err);
    return {
      notice: `**${fileLabel(listed)}** skipped: Slack did not let me open it (${code}). If it was shared from another organisation (Slack Connect), download it and attach it here again.`,
    };
  }
}

function unusable(file: SlackFile, access: FileAccess): string | undefined {
  if (file.mode === 'tombstone') return 'it was deleted.';
  if (file.mode === 'hidden_by_limit') return "it is hidden by this workspace's plan limits, so I cannot open it.";
  if (file.file_access === 'access_denied') return 'Slack denies me access to it.';
  if (file.is_external || file.mode === 'external') {
    const where = file.external_type ? ` (${file.external_type})` : '';
    return `it is a link to a file stored outside Slack${where}. Download it and attach the file itself.`;
  }
  const url = downloadUrl(file);
  if (url === undefined) return 'Slack sent no download link for it.';
  if (!mayCarryToken(url, access.apiUrl)) return outsideSlack(url);
  return undefined;
}

function platformError(err: unknown): string {
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : 'no access';
}

