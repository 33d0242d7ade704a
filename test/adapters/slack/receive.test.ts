import { describe, expect, it } from 'vitest';
import { mayCarryToken } from '../../../adapters/slack/files/download.js';
import { authorOf, buildTurn, messageKeyOf, triageEvent } from '../../../adapters/slack/receive.js';
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

describe('triageEvent with allowed bots (SLACK_ALLOWED_BOT_IDS)', () => {
  // An app's bot posts with its bot user (U…) and bot id (B…); an integration's bot_message has only the bot id.
  const allowed = new Set(['BREPORTS', 'BBOT']);
  const fromReports = (patch: Partial<SlackMessageEvent>) => ev({ user: 'UREPORTS', bot_id: 'BREPORTS', ...patch });
  it.each([
    ['its mention', fromReports({ type: 'app_mention', channel_type: undefined, text: '<@UBOT> chart this' }), 'accept'],
    ['the message twin of its mention', fromReports({ text: '<@UBOT> chart this' }), 'accept'],
    ['its direct message', fromReports({ channel: 'D2', channel_type: 'im' }), 'accept'],
    ['its reply in a thread the bot started', fromReports({ thread_ts: '90.0', parent_user_id: 'UBOT' }), 'accept'],
    ['its reply in another thread', fromReports({ thread_ts: '90.0', parent_user_id: 'UALICE' }), 'check-thread'],
    ['its file share with a mention', fromReports({ subtype: 'file_share', text: '<@UBOT> here' }), 'accept'],
    ['an integration post (bot_message, no user) with a mention', fromReports({ user: undefined, subtype: 'bot_message', text: '<@UBOT> go' }), 'accept'],
    ['its channel chatter', fromReports({}), 'ignore'],
    ['its edit', fromReports({ subtype: 'message_changed', hidden: true }), 'ignore'],
    ['its channel join', fromReports({ subtype: 'channel_join', text: '<@UBOT> has joined' }), 'ignore'],
    ['a bot that is not listed', ev({ user: 'UOTHER', bot_id: 'BOTHER', type: 'app_mention', text: '<@UBOT> hi' }), 'ignore'],
    ['a person posting bot_message', ev({ subtype: 'bot_message', channel_type: 'im' }), 'ignore'],
    ['itself, though listed (by bot id)', ev({ user: undefined, bot_id: 'BBOT', subtype: 'bot_message', channel_type: 'im' }), 'ignore'],
    ['itself, though listed (by bot user)', ev({ user: 'UBOT', bot_id: 'BBOT', channel: 'D1', channel_type: 'im' }), 'ignore'],
    ['itself in its own thread', ev({ user: 'UBOT', bot_id: 'BBOT', thread_ts: '90.0', parent_user_id: 'UBOT' }), 'ignore'],
  ])('%s → %s', (_name, event, action) => {
    expect(triageEvent(event, bot, allowed).action).toBe(action);
  });

  it('says why it ignored a message from itself, so that no list can make it answer itself', () => {
    expect(triageEvent(ev({ user: 'UBOT', bot_id: 'BBOT', channel_type: 'im' }), bot, allowed)).toEqual({ action: 'ignore', reason: 'from myself' });
  });

  it('names the bot as the author of an integration post, which has no user', () => {
    expect(authorOf(ev({ user: undefined, bot_id: 'BREPORTS', subtype: 'bot_message' }))).toBe('BREPORTS');
    expect(authorOf(ev({ user: 'UREPORTS', bot_id: 'BREPORTS' }))).toBe('UREPORTS');
    const turn = buildTurn('T1', ev({ user: undefined, bot_id: 'BREPORTS', subtype: 'bot_message' }), bot);
    expect(turn.user).toEqual({ id: 'BREPORTS' });
  });
});

describe('buildTurn', () => {
  it('keys the message by team, channel and ts, and the conversation by its thread', () => {
    const event = ev({ type: 'app_mention', text: '<@UBOT>  plot &amp; explain', ts: '200.000200', thread_ts: '150.000150', user_team: 'T2' });
    expect(buildTurn('T1', event, bot)).toEqual({
      conversation: { platform: 'slack', workspace: 'T1', channel: 'C1', thread: '150.000150' },
      messageKey: 'slack:T1:C1:200.000200',
      user: { id: 'UALICE' },
      text: 'plot & explain',
      files: [],
      platformData: { channel: 'C1', threadTs: '150.000150', userId: 'UALICE', userTeamId: 'T2', stream: true },
      twin: 'awaits',
    });
    expect(messageKeyOf('T1', ev({ type: 'app_mention' }))).toBe(messageKeyOf('T1', ev({ type: 'message' })));
  });

  it('starts a thread under a top-level message', () => {
    expect(buildTurn('T1', ev({ ts: '300.1' }), bot).conversation.thread).toBe('300.1');
  });

  it('describes the files without fetching anything, and tells the twins of a channel mention apart', () => {
    const file = { id: 'F1', name: 'a.csv', size: 4, mimetype: 'text/csv', url_private: 'https://files.slack.com/a.csv' };
    const withFile = buildTurn('T1', ev({ type: 'app_mention', text: '<@UBOT> sum', files: [file] }), bot);
    expect(withFile.files).toEqual([{ sourceId: 'F1', name: 'a.csv', sizeBytes: 4, mimeType: 'text/csv', source: file }]);
    // An app_mention that carries the files needs no twin; the message twin of a mention completes one that did not.
    expect(withFile.twin).toBeUndefined();
    expect(buildTurn('T1', ev({ text: '<@UBOT> sum', files: [file] }), bot).twin).toBe('completes');
    // In a DM there are no twins; nor for a thread reply without a mention.
    expect(buildTurn('T1', ev({ channel: 'D1', channel_type: 'im', text: 'sum' }), bot).twin).toBeUndefined();
    expect(buildTurn('T1', ev({ thread_ts: '90.0', parent_user_id: 'UBOT' }), bot).twin).toBeUndefined();
  });

  it('asks for the answer whole for another bot (a stream needs a person to watch it)', () => {
    expect(buildTurn('T1', ev({ user: 'UREPORTS', bot_id: 'BREPORTS', channel_type: 'im' }), bot).platformData['stream']).toBe(false);
  });
});

describe('mayCarryToken: where the bot token may be sent', () => {
  it.each([
    ['https://files.slack.com/files-pri/T1-F1/download/a.csv', true],
    ['https://acme.slack.com/?redir=%2Ffiles-pri%2FT1-F1', true],
    ['https://slack.com/files-pri/T1-F1/a.csv', true],
    ['https://a.slack-edge.com/x/a.png', true],
    ['https://files.slack-gov.com/files-pri/T1-F1/a.csv', true],
    ['https://agency.slack-gov.com/', true],
    ['https://FILES.SLACK.COM/files-pri/T1-F1/a.csv', true],
    ['http://files.slack.com/files-pri/T1-F1/a.csv', false],
    ['https://files.slack.com:8443/files-pri/T1-F1/a.csv', false],
    ['https://files.slack.com.evil.example/a.csv', false],
    ['https://evilslack.com/a.csv', false],
    ['https://slack-edge.com.evil.example/a.csv', false],
    ['https://user:pw@files.slack.com/a.csv', false],
    ['https://drive.google.com/file/d/1', false],
    ['http://127.0.0.1:9000/files-pri/T1-F1/a.csv', false],
    ['not a url', false],
  ])('%s → %s', (url, expected) => {
    expect(mayCarryToken(url)).toBe(expected);
  });

  it('adds the exact origin of SLACK_API_URL (scheme, host and port), and nothing else on that host', () => {
    const apiUrl = 'http://127.0.0.1:9000/api/';
    expect(mayCarryToken('http://127.0.0.1:9000/files-pri/T1-F1/a.csv', apiUrl)).toBe(true);
    expect(mayCarryToken('http://127.0.0.1:9001/files-pri/T1-F1/a.csv', apiUrl)).toBe(false);
    expect(mayCarryToken('https://127.0.0.1:9000/files-pri/T1-F1/a.csv', apiUrl)).toBe(false);
    expect(mayCarryToken('https://files.slack-gov.com/a.csv', 'https://slack-gov.com/api/')).toBe(true);
    expect(mayCarryToken('https://files.slack.com/a.csv', 'not a url')).toBe(true);
  });
});
