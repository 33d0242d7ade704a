import type { AdapterDriver, Delivery, DriverOptions } from '../../contracts/adapter.contract.js';
import { shownCards, shownTexts, startStack } from './harness.js';

/**
 * The Teams adapter as the adapter contract drives it: personal chats, files as download links. A person
 * opening Crunch is its install in their personal chat, which Teams tells twice: `conversationUpdate` adding
 * the bot, then `installationUpdate` "add"; the driver sends them in turn.
 */
export async function teamsDriver(options: DriverOptions = {}): Promise<AdapterDriver> {
  const s = await startStack({ script: {}, ...(options.governance ? { governance: options.governance } : {}) });
  let seq = 0;
  const opened = new Map<string, number>();
  return {
    engine: s.engine,
    message(text, options = {}) {
      seq += 1;
      const activity = s.fixture(options.file ? 'personal-file' : 'personal-text', options.file ? { downloadUrl: s.fake.hostDownload(options.file.data) } : {});
      const conversation = options.after?.conversation ?? `a:contract-${seq}`;
      activity.id = String(1772446000000 + seq);
      activity.text = text;
      activity.conversation.id = conversation;
      if (options.file) {
        activity.attachments[0].name = options.file.name;
        activity.attachments[0].content.uniqueId = `contract-file-${seq}`;
      }
      return { conversation, payload: activity };
    },
    opened(person) {
      const times = (opened.get(person) ?? 0) + 1;
      opened.set(person, times);
      const activity = s.fixture(times % 2 === 1 ? 'personal-install' : 'personal-installation-update');
      const conversation = `a:contract-home-${person}`;
      activity.conversation.id = conversation;
      activity.from.id = `29:contract-${person}`;
      return { conversation, payload: activity };
    },
    async send(delivery) {
      return (await s.send(delivery.payload)).status;
    },
    answers: (d: Delivery) => shownTexts(s.fake, d.conversation),
    smallPrint: (d) =>
      shownCards(s.fake, d.conversation)
        .flatMap((c) => (c['body'] ?? []) as Array<{ type: string; text?: string; isSubtle?: boolean }>)
        .filter((e) => e.type === 'TextBlock' && e.isSubtle === true)
        .map((e) => String(e.text)),
    outputs: (d) =>
      s.fake.shown(d.conversation).flatMap((m) =>
        ((m.activity.attachments ?? []) as { contentType: string; name?: string; content: Record<string, any> }[]).flatMap((a) => {
          if (a.name !== undefined) return [a.name];
          const body = (a.content?.['body'] ?? []) as Array<{ type: string; altText?: string; text?: string }>;
          // Charts by their alt text, linked files by their link text.
          return body.flatMap((e) => (e.type === 'Image' ? [e.altText ?? ''] : [...String(e.text ?? '').matchAll(/\[([^\]]+)\]\(http/g)].map((l) => l[1]!)));
        }),
      ),
    calls: (d) => s.fake.recorded.filter((r) => r.conversationId.startsWith(d.conversation)).length,
    settle: () => s.settle(),
    close: () => s.close(),
  };
}
