import type { Logger } from 'pino';
import { CrunchError, type EngineRunInput, type SessionFile } from '../../core/index.js';
import { safeFileName, type Workspace } from './workspace.js';

/**
 * Puts the turn's files into the conversation folder. A file shared again (same source id) is not copied
 * twice while it is still there; one that cannot be used becomes a notice and the turn goes on.
 */
export async function addFiles(
  workspace: Workspace,
  id: string,
  known: SessionFile[],
  input: EngineRunInput,
  notices: string[],
  logger: Logger,
): Promise<{ files: SessionFile[]; mentioned: string[]; changed: boolean }> {
  let files = known;
  const mentioned: string[] = [];
  for (const file of input.files) {
    const kept = files.find((f) => f.sourceId === file.sourceId);
    if (kept && (await workspace.hasFile(id, kept.fileId))) {
      mentioned.push(kept.fileId);
      continue;
    }
    const name = safeFileName(file.name);
    input.progress({ type: 'status', text: `reading ${file.name}…` });
    try {
      await workspace.addFile(id, name, await file.open());
    } catch (err) {
      if (err instanceof CrunchError && err.code.startsWith('attachment_')) {
        // Logged too: a refused link (e.g. to a private address) is something an operator should see.
        logger.warn({ err, file: file.name, code: err.code }, 'attachment skipped');
        notices.push(err.userMessage);
        continue;
      }
      throw err;
    }
    // A new file under a name the folder already had replaces it there.
    files = [...files.filter((f) => f.sourceId !== file.sourceId && f.fileId !== name), { sourceId: file.sourceId, fileId: name, name: file.name }];
    mentioned.push(name);
  }
  return { files, mentioned, changed: files !== known };
}
