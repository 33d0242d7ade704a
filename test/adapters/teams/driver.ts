import type { AdapterDriver, Delivery, DriverOptions } from '../../contracts/adapter.contract.js';
import { startStack } from './harness.js';

/** The Teams adapter as the adapter contract drives it: personal chats, files as download links. */
export async function teamsDriver(options: DriverOptions = {}): Promise<AdapterDriver> {
  const s = await startStack({ script: {}, ...(options.governance ? { governance: options.governance } : {}) });
  let seq = 0;
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
    async send(delivery) {
      return (await s.send(delivery.payload)).status;
    },
    answers: (d: Delivery) =>
      s.fake
        .messages(d.conversation)
        .map((r) => String(r.activity.text ?? ''))
        .filter((text) => text !== '' && !text.startsWith('⏳')),
    outputs: (d) =>
      s.fake
        .messages(d.conversation)
        .flatMap((r) => (r.activity.attachments ?? []) as { contentType: string; name?: string; content: Record<string, any> }[])
        .map((a) => a.name ?? a.content?.['body']?.[0]?.text ?? ''),
    calls: (d) => s.fake.recorded.filter((r) => r.conversationId.startsWith(d.conversation)).length,
    settle: () => s.settle(),
    close: () => s.close(),
  };
}
