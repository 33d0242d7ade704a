import { readOutput, type ReplyOutput } from '../../../src/core/index.js';
import { ENVELOPE_BYTES, type RenderOptions } from './activity.js';

/**
 * Charts and files as parts of the answer's card. A chart small enough to fit goes inline (base64, read with a
 * limit just above the budget); a bigger one, and every file, is kept behind a signed link, streamed from the
 * engine into the store without ever being whole in memory. A chart has no heading: its image carries its own
 * title, which is the alt text.
 */

export interface Charts {
  /** The charts as Image elements: inline where `inline` and the chart fits, else by signed URL; `inlined` when any is inline. */
  elements(inline: boolean): Promise<{ elements: unknown[]; inlined: boolean }>;
}

/**
 * The charts of an answer, each read (for inline) or hosted (for a link) at most once however often the card
 * is rebuilt to fit; a chart that can be neither gets a line in `unattached`.
 */
export function charts(images: ReplyOutput[], options: Pick<RenderOptions, 'host' | 'maxMessageBytes'>, unattached: string[]): Charts {
  // base64 makes 4 bytes of 3: a chart over this many bytes cannot fit inline.
  const inlineLimit = Math.floor(((options.maxMessageBytes - ENVELOPE_BYTES) * 3) / 4);
  const read = memo((image: ReplyOutput) =>
    image.sizeBytes !== undefined && image.sizeBytes > inlineLimit ? Promise.resolve(undefined) : readOutput(image, inlineLimit).catch(() => undefined),
  );
  const link = memo((image: ReplyOutput) =>
    options.host(image).then(
      (hosted) => hosted.url,
      (err: unknown) => {
        unattached.push((err as { userMessage?: string }).userMessage ?? `**${image.name}** could not be attached.`);
        return undefined;
      },
    ),
  );
  return {
    async elements(inline) {
      const elements: unknown[] = [];
      let inlined = false;
      for (const image of images) {
        const data = inline ? await read(image) : undefined;
        inlined ||= data !== undefined;
        const url = data !== undefined ? `data:image/png;base64,${data.toString('base64')}` : await link(image);
        if (url !== undefined) elements.push({ type: 'Image', url, altText: image.title, msTeams: { allowExpand: true } });
      }
      return { elements, inlined };
    },
  };
}

/** The signed download links of `files`, as one markdown paragraph; a file that cannot be kept goes in `unattached`. */
export async function fileLinks(files: ReplyOutput[], options: Pick<RenderOptions, 'host'>, unattached: string[]): Promise<string | undefined> {
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
  return `📎 **${lines.length === 1 ? 'Your file' : 'Your files'}** (links stay valid for a limited time):\n\n${lines.join('\n')}`;
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

function memo<K, V>(make: (key: K) => Promise<V>): (key: K) => Promise<V> {
  const made = new Map<K, Promise<V>>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) {
      value = make(key);
      made.set(key, value);
    }
    return value;
  };
}
