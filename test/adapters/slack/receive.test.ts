import { describe, expect, it } from 'vitest';
import { buildTurn, messageKeyOf, threadKey, triageEvent } from '../../../adapters/slack/receive.js';
import type { SlackMessageEvent } from '../../../adapters/slack/types.js';

const bot = { userId: 'UBOT', botId: 'BBOT' };
const base: SlackMessageEvent = { type: 'message', channel: 'C1', channel_type: 'channel', user: 'UALICE', text: 'hello', ts: '100.000100' };
const ev = (patch: Partial<SlackMessageEvent>): SlackMessageEvent => ({ ...base, ...patch });

describe('triageEvent', () => {
  it.each([
    ['an app_mention', ev({ type: 'app_mention', channel_type: undefined, text: '<@UBOT> hi' }), 'accept'],
    ['a direct message', ev({ channel: 'D1', channel_type: 'im' }), 'accept'],
    ['a DM reply in a thread', ev({ channel: 'D1', channel_type: 'im', thread_ts: '90.0' }), 'accept'],
    ['the message twin of a mention', ev({ text: '<@UBOT> hi', subtype: 'file_share' }), 'accept'],
    ['a reply in a thread the bot started', ev({ thread_ts: '90.0', parent_user_id: 'UBOT' }), 'accept'],
    ['a thread reply sent to the channel too', ev({ thread_ts: '90.0', subtype: 'thread_broadcast', text: '<@UBOT> go' }), 'accept'],
    ['a reply in someone else’s thread', ev({ thread_ts: '90.0', parent_user_id: 'UBOB' }), 'check-thread'],
    ['channel chatter', ev({}), 'ignore'],
    ['an edit', ev({ subtype: 'message_changed', hidden: true }), 'ignore'],
    ['a deletion', ev({ subtype: 'message_deleted', hidden: true }), 'ignore'],
    ['a channel join', ev({ subtype: 'channel_join', text: '<@UBOT> has joined' }), 'ignore'],
    ['another bot', ev({ bot_id: 'BOTHER', text: '<@UBOT> hi' }), 'ignore'],
    ['another bot’s mention', ev({ type: 'app_mention', bot_id: 'BOTHER', text: '<@UBOT> hi' }), 'ignore'],
    ['the bot itself', ev({ user: 'UBOT', channel: 'D1', channel_type: 'im' }), 'ignore'],
    ['a message without a user', ev({ user: undefined, channel_type: 'im' }), 'ignore'],
  ])('%s → %s', (_name, event, action) => {
    expect(triageEvent(event, bot).action).toBe(action);
  });
});

describe('buildTurn', () => {
  it('keys the message by team, channel and ts, and the conversation by its thread', () => {
    const event = ev({ type: 'app_mention', text: '<@UBOT>  plot &amp; explain', ts: '200.000200', thread_ts: '150.000150' });
    const turn = buildTurn({ team: 'T1', event, bot, attachments: [], notices: ['one'] });
    expect(turn).toMatchObject({
      conversation: { platform: 'slack', workspace: 'T1', channel: 'C1', thread: '150.000150' },
      messageKey: 'slack:T1:C1:200.000200',
      user: { id: 'UALICE' },
      text: 'plot & explain',
      notices: ['one'],
    });
    expect(messageKeyOf('T1', ev({ type: 'app_mention' }))).toBe(messageKeyOf('T1', ev({ type: 'message' })));
    expect(threadKey('T1', 'C1', '150.000150')).toBe('slack:thread:T1:C1:150.000150');
  });

  it('starts a thread under a top-level message', () => {
    expect(buildTurn({ team: 'T1', event: ev({ ts: '300.1' }), bot, attachments: [], notices: [] }).conversation.thread).toBe('300.1');
  });
});
