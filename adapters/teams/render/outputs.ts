import type { Activity } from 'botbuilder';
import { readOutput, type ReplyOutput } from '../../../src/core/index.js';
import { card, cardActivity, ENVELOPE_BYTES, type OutboundMessage, type RenderOptions, sizeOf, textActivity } from './activity.js';

/**
 * Charts and files as Teams messages. A chart small enough to fit in the message goes inline (base64, read
 * with a limit just above the budget); a bigger one, and every file, is kept behind a signed link, streamed
 * from the engine into the store without ever being whole in memory.
 */

function imageCard(image: ReplyOutput, url: string): Partial<Activity> {
  const body = [
    { type: 'TextBlock', text: image.title, weight: 'Bolder', wrap: true },
    { type: 'Image', url, altText: image.title, msTeams: { allowExpand: true } },
  ];
  return cardActivity(card(body), `Chart: ${image.title}`);
}

export async function imageMessage(image: ReplyOutput, options: RenderOptions): Promise<OutboundMessage> {
  const byUrl = async () => imageCard(image, (await options.host(image)).url);
  // base64 makes 4 bytes of 3: a chart over this many bytes cannot fit inline.
  const inlineLimit = Math.floor(((options.maxMessageBytes - ENVELOPE_BYTES) * 3) / 4);
  if (image.sizeBytes === undefined || image.sizeBytes <= inlineLimit) {
    const data = await readOutput(image, inlineLimit).catch(() => undefined);
    if (data !== undefined) {
      const inline = imageCard(image, `data:image/png;base64,${data.toString('base64')}`);
      if (sizeOf(inline) + ENVELOPE_BYTES <= options.maxMessageBytes) return { part: 'image', activity: inline, fallback: byUrl };
    }
  }
  return { part: 'image', activity: await byUrl() };
}

/** The signed download links of `files`, as one markdown message; a file that cannot be kept goes in `unattached`. */
export async function filesMessage(files: ReplyOutput[], options: Pick<RenderOptions, 'host'>, unattached: string[]): Promise<OutboundMessage | undefined> {
  const lines: string[] = [];
  for (const file of files) {
    try {
      const { url, size } = await options.host(file);
      lines.push(fileLinkLine(file.name, url, size));
    } catch (err) {
      unattached.push((err as { userMessage?: string }).userMessage ?? `**${file.name}** could not be attached.`);
    }
  }
  if (lines.length === 0) return undefined;
  const text = `📎 **${lines.length === 1 ? 'Your file' : 'Your files'}** (links stay valid for a limited time):\n\n${lines.join('\n')}`;
  return { part: 'files', activity: textActivity(text) };
}

/** `- [name](url) (12.3 KB)` */
export function fileLinkLine(name: string, url: string, bytes: number): string {
  return `- [${name.replace(/[[\]]/g, '')}](${url}) (${formatSize(bytes)})`;
}

function formatSize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} bytes`;
}
