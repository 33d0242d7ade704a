import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { fakePng, modelInputs, shownCards, shownTexts, stacksClosedAfterEach, TENANT, uploadedFiles, type Stack } from './harness.js';

/**
 * End to end: fake Teams (connector, token issuer, files, Graph) → the real server and Teams adapter →
 * the real core → the real responses engine → the fake OpenAI. Assertions read the fakes' recorded state.
 */

const XLSX = await readFile(new URL('../../fixtures/files/sales.xlsx', import.meta.url));
const PNG = await readFile(new URL('../../fixtures/files/revenue.png', import.meta.url));
const CHANNEL = '19:c1a2b3c4d5e6f708@thread.tacv2';

const stack = stacksClosedAfterEach();

/** The last message the chat shows. */
const answerOf = (s: Stack) => s.fake.shown().at(-1)!;

describe('teams end to end: personal chat', () => {
  it('analyses an attached spreadsheet: one message holds the answer, its chart (its title not repeated) and the code', async () => {
    const s = await stack();
    s.openai.script.push({
      code: "import pandas as pd\ndf = pd.read_excel('/mnt/data/sales.xlsx')\n",
      logs: 'rows: 24',
      images: [{ filename: 'revenue_by_month.png', data: PNG }],
      text: 'Revenue grows every month.',
    });
    await s.ask(s.fixture('personal-file', { downloadUrl: s.fake.hostDownload(XLSX) }));

    expect(modelInputs(s)[0]).toMatch(/^plot revenue by month\b/);
    const [upload] = uploadedFiles(s);
    expect(upload!.filename).toBe('sales.xlsx');
    expect(upload!.data.equals(XLSX)).toBe(true);

    expect(s.fake.recorded[0]!.activity.type).toBe('typing');
    expect(s.fake.recorded.every((r) => r.authorization === `Bearer ${s.fake.issuedTokens[0]}`)).toBe(true);
    // One message in the chat: the stream the turn showed its progress in, become the answer's card.
    const shown = s.fake.shown();
    expect(shown).toHaveLength(1);
    expect(shown[0]!.history.map((h) => h.text ?? 'card')).toEqual(expect.arrayContaining(['Revenue grows every month.', 'card']));
    expect(JSON.stringify(shown)).not.toMatch(/Done|⏳/);
    const [card] = shownCards(s.fake);
    expect(card!.body.map((e: { type: string }) => e.type)).toEqual(['TextBlock', 'Image']);
    expect(card!.body[0].text).toBe('Revenue grows every month.');
    expect(card!.body[1].altText).toBe('Revenue by month');
    expect(Buffer.from(String(card!.body[1].url).replace('data:image/png;base64,', ''), 'base64').equals(PNG)).toBe(true);
    // The chart's title is in the chart; the card does not repeat it.
    expect(JSON.stringify(card!.body)).not.toContain('"text":"Revenue by month"');
    expect(card!.actions.map((a: { title: string }) => a.title)).toEqual(['Show the code']);
    expect(JSON.stringify(card!.actions[0].card)).toContain('pd.read_excel');
  });

  it('answers a math question in a DM, as a reply to the message', async () => {
    const s = await stack();
    s.openai.script.push({ code: "from sympy import *\nx = symbols('x')\nsolve(3*x + 11 - 14, x)", logs: '[1]', text: '**x = 1**' });
    const activity = s.fixture('personal-text');
    await s.ask(activity);
    expect(modelInputs(s)).toEqual(['solve 3x + 11 = 14']);
    expect(shownTexts(s.fake)).toEqual(['**x = 1**']);
    const answer = answerOf(s);
    expect(answer.conversationId).toBe(activity.conversation.id);
    expect(answer.replyToId ?? activity.id).toBe(activity.id);
  });

  it('streams a pasted image into the engine, downloaded with the bot token', async () => {
    const s = await stack();
    s.openai.script.push({ text: 'A bar chart of revenue.' });
    await s.ask(s.fixture('inline-image', { imageUrl: s.fake.hostInlineImage(PNG) }));
    const [upload] = uploadedFiles(s);
    expect(upload!.filename).toBe('pasted-image-1.png');
    expect(upload!.data.equals(PNG)).toBe(true);
    expect(shownTexts(s.fake)).toContain('A bar chart of revenue.');
  });

  it('explains an unsupported file without downloading it', async () => {
    const s = await stack();
    await s.ask(s.fixture('personal-unsupported', { downloadUrl: s.fake.hostDownload(Buffer.from('Rar!\u001a\u0007\u0000')) }));
    expect(s.fake.downloads).toEqual([]);
    expect(uploadedFiles(s)).toEqual([]);
    expect(shownTexts(s.fake).join('\n')).toMatch(/\*{1,2}backup\.rar\*{1,2} skipped: \.rar is not supported/);
  });

  it('serves an oversized chart from a signed URL on the bot, and refuses bad or expired links', async () => {
    const big = fakePng(60_000);
    const s = await stack();
    s.openai.script.push({ code: 'plot()', images: [{ filename: 'big_chart.png', data: big }], text: 'Here it is.' });
    await s.ask(s.fixture('personal-text'));
    for (const r of s.fake.recorded) expect(JSON.stringify(r.activity).length).toBeLessThan(40 * 1024);
    const image = shownCards(s.fake).flatMap((c) => c.body).find((e: { type: string }) => e.type === 'Image')!;
    const url = new URL(String(image.url));
    expect(url.origin).toBe(s.bot.url);
    expect(url.pathname).toMatch(/^\/files\/[0-9a-f-]{36}$/);

    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await ok.arrayBuffer()).equals(big)).toBe(true);

    const tampered = new URL(url);
    tampered.searchParams.set('sig', `${url.searchParams.get('sig')!.slice(0, -2)}xx`);
    expect((await fetch(tampered)).status).toBe(403);
    const extended = new URL(url);
    extended.searchParams.set('exp', String(Number(url.searchParams.get('exp')) + 3600));
    expect((await fetch(extended)).status).toBe(403);
    s.clock.now += 25 * 60 * 60 * 1000;
    expect((await fetch(url)).status).toBe(403);
  });

  it('survives a 429 from the connector by honouring Retry-After', async () => {
    const s = await stack();
    s.openai.script.push({ text: 'Still here.' });
    s.fake.failNext(1, { status: 429, headers: { 'retry-after': '0' } });
    await s.ask(s.fixture('personal-text'));
    expect(s.fake.failures).toHaveLength(1);
    expect(shownTexts(s.fake)).toContain('Still here.');
  });

  it('survives a 429 without Retry-After, and a 503, from the connector', async () => {
    const s = await stack();
    s.openai.script.push({ text: 'Throttled but delivered.' });
    s.fake.failNext(1, { status: 429 });
    s.fake.failNext(1, { status: 503 });
    await s.ask(s.fixture('personal-text'));
    expect(s.fake.failures.map((f) => f.status)).toEqual([429, 503]);
    expect(shownTexts(s.fake)).toContain('Throttled but delivered.');
  });

  it('answers a resent activity once', async () => {
    const s = await stack();
    s.openai.script.push({ text: 'Once.' });
    const activity = s.fixture('personal-text');
    await s.ask(activity);
    await s.ask(activity);
    expect(modelInputs(s)).toHaveLength(1);
    expect(shownTexts(s.fake).filter((t) => t === 'Once.')).toHaveLength(1);
  });
});

describe('teams end to end: channels and group chats', () => {
  it('answers a mention in the reply chain, and a later mention in the chain continues the conversation', async () => {
    const s = await stack();
    s.openai.script.push({ text: 'The average is 6.' }, { text: 'The median is 5.' });
    const root = s.fixture('channel-mention');
    await s.ask(root);
    const answer = answerOf(s);
    expect(answer.conversationId).toBe(`${CHANNEL};messageid=${root.id}`);
    expect(answer.replyToId).toBe(root.id);
    expect(answer.activity.text).toBe('The average is 6.');
    expect(s.fake.recorded.some((r) => r.activity.entities?.some((e: { type: string }) => e.type === 'streaminfo'))).toBe(false);

    const reply = s.fixture('channel-reply');
    await s.ask(reply);
    expect(modelInputs(s)).toEqual(['what is the average of 3, 5 and 10?', 'and the median?']);
    const [first, second] = [...s.openai.responses.values()];
    expect(second!.request.conversation).toBe(first!.request.conversation);
    const followUp = answerOf(s);
    expect(followUp.conversationId).toBe(`${CHANNEL};messageid=${root.id}`);
    expect(followUp.replyToId).toBe(reply.id);
    expect(followUp.activity.text).toBe('The median is 5.');
  });

  it('answers a mention in a group chat', async () => {
    const s = await stack();
    s.openai.script.push({ text: '72 °F is 22.2 °C.' });
    await s.ask(s.fixture('group-chat'));
    expect(modelInputs(s)).toEqual(['convert 72 F to C']);
    expect(answerOf(s).conversationId).toBe('19:9f8e7d6c5b4a@thread.v2');
  });

  it('ignores channel messages that do not mention the bot', async () => {
    const s = await stack();
    const activity = s.fixture('channel-mention');
    activity.entities = [];
    activity.text = 'just chatting';
    await s.ask(activity);
    expect(s.openai.requests).toHaveLength(0);
    expect(s.fake.recorded).toHaveLength(0);
  });

  it('explains a channel file it cannot fetch without Microsoft Graph', async () => {
    const s = await stack();
    s.openai.script.push({ text: 'I only have your words.' });
    await s.ask(s.fixture('channel-file-link'));
    expect(uploadedFiles(s)).toEqual([]);
    const text = shownTexts(s.fake).join('\n');
    expect(text).toContain('**Q3 budget.xlsx** skipped: Teams does not hand bots the files in channel posts');
    expect(text).toContain('1:1 chat');
    expect(text).toContain('TEAMS_GRAPH_FILES');
    expect(text).toContain('I only have your words.');
  });

  it('fetches a channel file through Microsoft Graph when enabled', async () => {
    const s = await stack({ config: { graphFiles: true } });
    s.openai.script.push({ text: 'Budget summarised.' });
    const activity = s.fixture('channel-file-link');
    s.fake.hostGraphMessage(`/teams/${s.fake.teamAadGroupId}/channels/${CHANNEL}/messages/${activity.id}`, [{ name: 'Q3 budget.xlsx', bytes: XLSX }]);
    await s.ask(activity);
    const [upload] = uploadedFiles(s);
    expect(upload!.filename).toBe('Q3 budget.xlsx');
    expect(upload!.data.equals(XLSX)).toBe(true);
    expect(shownTexts(s.fake)).toEqual(['Budget summarised.']);
  });

  it('names the missing Graph permission when Graph refuses', async () => {
    const s = await stack({ config: { graphFiles: true } });
    s.openai.script.push({ text: 'Words only.' });
    s.fake.denyGraph = true;
    await s.ask(s.fixture('channel-file-link'));
    expect(shownTexts(s.fake).join('\n')).toContain('ChannelMessage.Read.All and Files.Read.All application permissions');
  });

  it('handles `help` after removing the mention, without the engine', async () => {
    const s = await stack();
    const activity = s.fixture('channel-mention');
    activity.text = '<at>Crunch</at> help';
    await s.ask(activity);
    expect(s.openai.requests).toHaveLength(0);
    expect(shownTexts(s.fake)[0]).toContain("I'm Crunch.");
  });
});

describe('teams end to end: security', () => {
  it.each([
    ['missing', async (_s: Stack) => null],
    ['signed by another key', async (s: Stack) => s.fake.signToken({}, true)],
    ['for another app', async (s: Stack) => s.fake.signToken({ aud: 'someone-else' })],
    ['from another issuer', async (s: Stack) => s.fake.signToken({ iss: 'https://evil.example' })],
    ['for another serviceUrl', async (s: Stack) => s.fake.signToken({ serviceurl: 'https://evil.example/' })],
    ['expired', async (s: Stack) => s.fake.signToken({ expSeconds: -600 })],
  ])('rejects a request whose token is %s with 401', async (_name, token) => {
    const s = await stack();
    const response = await s.send(s.fixture('personal-text'), await token(s));
    expect(response.status).toBe(401);
    await s.settle();
    expect(s.openai.requests).toHaveLength(0);
    expect(s.fake.recorded).toHaveLength(0);
  });

  it('refuses a tenant outside TEAMS_ALLOWED_TENANTS with a friendly message and no engine call', async () => {
    const s = await stack({ config: { allowedTenants: ['11111111-2222-4333-8444-555555555555'] } });
    await s.ask(s.fixture('personal-text'));
    expect(s.openai.requests).toHaveLength(0);
    expect(shownTexts(s.fake)).toEqual(['Crunch is not enabled for this workspace. Ask your workspace admin if you need it here.']);
    expect(s.logs().some((l) => l.workspace === TENANT && String(l.msg).includes('refused'))).toBe(true);
  });

  it('works with authentication off, and says so loudly', async () => {
    const s = await stack({ auth: false });
    s.openai.script.push({ text: 'Anonymous but fine.' });
    expect(s.logs().some((l) => l.level === 50 && String(l.msg).includes('authentication is OFF'))).toBe(true);
    await s.ask(s.fixture('personal-text'));
    expect(shownTexts(s.fake)).toContain('Anonymous but fine.');
    expect(s.fake.recorded.every((r) => r.authorization === undefined)).toBe(true);
  });
});
