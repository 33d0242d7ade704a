import type { AdapterDriver, Delivery, DriverOptions } from '../../contracts/adapter.contract.js';
import { contextTexts, messageText } from '../../fakes/slack.js';
import { startHarness } from './harness.js';

/**
 * The Slack adapter as the adapter contract drives it: direct messages over the HTTP Events API. A person
 * opening Crunch is `app_home_opened` on its Messages tab; what Crunch says there is top-level in the DM.
 */
export async function slackDriver(options: DriverOptions = {}): Promise<AdapterDriver> {
  const h = await startHarness({}, undefined, options.governance);
  let seq = 0;
  const event = (d: Delivery) => d.payload['event'] as { type: string; thread_ts?: string; ts: string };
  const root = (d: Delivery) => String((d.payload['event'] as { thread_ts?: string; ts: string }).thread_ts ?? (d.payload['event'] as { ts: string }).ts);
  const channel = (d: Delivery) => d.conversation;
  return {
    engine: h.engine,
    message(text, options = {}) {
      seq += 1;
      const ts = `1716000000.${String(seq).padStart(6, '0')}`;
      const dm = options.after?.conversation ?? `D0CONTRACT${String(seq).padStart(3, '0')}`;
      const files = options.file
        ? [h.fake.hostFile({ id: `F0CONTRACT${seq}`, name: options.file.name, mimetype: 'text/csv', bytes: options.file.data })]
        : undefined;
      const event = {
        type: 'message',
        channel: dm,
        channel_type: 'im',
        user: 'U0ALICE001',
        team: h.fake.teamId,
        text,
        ts,
        ...(options.after ? { thread_ts: root(options.after) } : {}),
        ...(files ? { files, subtype: 'file_share' } : {}),
      };
      return { conversation: dm, payload: { token: 'x', team_id: h.fake.teamId, api_app_id: 'A0CRUNCHAPP', type: 'event_callback', event_id: `EvC${seq}`, event_time: 1716000000, event } };
    },
    opened(person) {
      seq += 1;
      const dm = `D0HOME${person.toUpperCase()}`;
      const event = { type: 'app_home_opened', user: `U0${person.toUpperCase()}`, channel: dm, tab: 'messages', event_ts: `1716000000.${String(seq).padStart(6, '0')}` };
      return { conversation: dm, payload: { token: 'x', team_id: h.fake.teamId, api_app_id: 'A0CRUNCHAPP', type: 'event_callback', event_id: `EvH${seq}`, event_time: 1716000000, event } };
    },
    async send(delivery) {
      return (await h.deliver(delivery.payload)).status;
    },
    answers: (d) =>
      (event(d).type === 'app_home_opened' ? h.fake.messages.filter((m) => m.channel === channel(d) && m.thread_ts === undefined && !m.deleted) : h.fake.thread(channel(d), root(d)))
        .filter((m) => !m.streaming)
        .map((m) => messageText(m).trim()),
    smallPrint: (d) => h.fake.thread(channel(d), root(d)).flatMap((m) => contextTexts(m)),
    outputs: (d) => h.fake.threadUploads(channel(d), root(d)).map((u) => u.title ?? u.filename),
    calls: (d) => h.fake.calls.filter((c) => c.params['channel'] === channel(d) || c.params['channel_id'] === channel(d)).length,
    settle: () => h.settle(),
    close: () => h.close(),
  };
}
