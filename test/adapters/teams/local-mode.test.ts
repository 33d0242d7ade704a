import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type RunningServer } from '../../fakes/http.js';
import { shownTexts, stacksClosedAfterEach, type Stack } from './harness.js';

/**
 * TEAMS_AUTH=off: no token vouches for a request, so /api/messages serves the Agents Playground on this
 * machine and nothing else. A web page in a local browser (cross-site POST, DNS rebinding), a proxy or tunnel,
 * or an activity asking for answers elsewhere is refused before anything runs, over real HTTP.
 */

const stack = stacksClosedAfterEach();
const local = () => stack({ auth: false, script: () => ({ text: 'ok' }) });

/** Another server: a page's own host, or wherever a forged serviceUrl points. It records whatever reaches it. */
const servers: RunningServer[] = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()!.close();
});
async function evilServer(): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = await listen((req, res, _body, url) => {
    hits.push(`${req.method} ${url.pathname}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"id":"1"}');
  });
  servers.push(server);
  return { url: server.url, hits };
}

/** POSTs `activity` to /api/messages with exactly these headers (node:http, so Host can be anything). */
function post(s: Stack, activity: Record<string, unknown>, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/api/messages', s.bot.url), { method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(JSON.stringify(activity));
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const refusedLog = (s: Stack) => s.logs().filter((l) => String(l.msg).startsWith('teams request refused: authentication is off and'));

describe('teams with authentication off: only the Agents Playground on this machine', () => {
  it.each([
    ['a web page (Origin header)', { ...JSON_TYPE, origin: 'http://evil.example' }, 403],
    ['a web page, same host (Origin: null)', { ...JSON_TYPE, origin: 'null' }, 403],
    ['a text/plain body (a form or fetch without preflight)', { 'content-type': 'text/plain;charset=UTF-8' }, 415],
    ['a form post', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
    ['no content type', {}, 415],
    ['a DNS-rebound Host', { ...JSON_TYPE, host: 'evil.example:3978' }, 403],
    ['a Host that only starts like localhost', { ...JSON_TYPE, host: 'localhost.evil.example' }, 403],
    ['a Host that only starts like 127.0.0.1', { ...JSON_TYPE, host: '127.0.0.1.nip.io:3978' }, 403],
  ])('refuses %s before anything runs, and posts nothing anywhere', async (_what, headers: Record<string, string>, status) => {
    const s = await local();
    const evil = await evilServer();
    // The serviceUrl is on this machine, so only the request itself gives it away.
    const activity = { ...s.fixture('personal-text'), serviceUrl: `${evil.url}/` };
    expect(await post(s, activity, headers)).toBe(status);
    await s.settle();
    expect(s.engine.calls).toEqual([]);
    expect(s.fake.recorded).toEqual([]);
    expect(evil.hits).toEqual([]);
    expect(refusedLog(s)).toHaveLength(1);
  });

  it.each([['forwarded'], ['x-forwarded-for'], ['x-real-ip'], ['cf-connecting-ip'], ['true-client-ip'], ['x-client-ip'], ['via']])(
    'refuses a request carrying %s (a local proxy or tunnel) with 401, and logs why',
    async (header) => {
      const s = await local();
      const evil = await evilServer();
      const activity = { ...s.fixture('personal-text'), serviceUrl: `${evil.url}/` };
      expect(await post(s, activity, { ...JSON_TYPE, [header]: header === 'via' ? '1.1 tunnel' : '203.0.113.9' })).toBe(401);
      await s.settle();
      expect(s.engine.calls).toEqual([]);
      expect(s.fake.recorded).toEqual([]);
      expect(evil.hits).toEqual([]);
      expect(refusedLog(s).some((l) => Array.isArray(l.headers) && l.headers.includes(header))).toBe(true);
    },
  );

  it('refuses an activity whose serviceUrl is not on this machine: answers would go wherever it says', async () => {
    const s = await local();
    const evil = await evilServer();
    // 0.0.0.0 is not a loopback address, yet on Linux and macOS connecting to it reaches this machine's servers.
    const elsewhere = [`http://0.0.0.0:${new URL(evil.url).port}/`, 'https://evil.example/', 'http://10.0.0.7:3978/', 'not a url', undefined];
    for (const serviceUrl of elsewhere) {
      const activity = { ...s.fixture('personal-text'), serviceUrl };
      expect(await post(s, activity, JSON_TYPE), String(serviceUrl)).toBe(403);
    }
    await s.settle();
    expect(s.engine.calls).toEqual([]);
    expect(s.fake.recorded).toEqual([]);
    expect(evil.hits).toEqual([]);
    expect(refusedLog(s).map((l) => l.serviceUrl)).toEqual([...elsewhere.slice(0, 4), null]);
  });

  it.each([['127.0.0.1'], ['localhost'], ['[::1]']])('answers the Playground: JSON, Host %s with a port, a loopback serviceUrl', async (host) => {
    const s = await local();
    const port = new URL(s.bot.url).port;
    const activity = s.fixture('personal-text');
    expect(await post(s, activity, { 'content-type': 'application/json; charset=utf-8', host: `${host}:${port}` })).toBe(200);
    await s.settle();
    expect(s.engine.calls.map((c) => c.text)).toEqual(['solve 3x + 11 = 14']);
    expect(shownTexts(s.fake)).toContain('ok');
    expect(refusedLog(s)).toEqual([]);
  });
});
