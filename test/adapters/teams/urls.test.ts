import { describe, expect, it } from 'vitest';
import { checkUrl, mayReceiveToken, urlPolicy } from '../../../adapters/teams/auth/urls.js';

const teams = urlPolicy('https://smba.trafficmanager.net/emea/', false);
const refused = (raw: string, policy = teams) => {
  try {
    checkUrl(raw, policy);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

describe('URLs taken from activities', () => {
  it('accepts https to public hosts only', () => {
    expect(refused('https://contoso-my.sharepoint.com/personal/x/download.aspx?tempauth=abc')).toBeUndefined();
    expect(refused('http://contoso-my.sharepoint.com/x')).toMatch(/non-https/);
    expect(refused('file:///etc/passwd')).toMatch(/file: URL/);
    expect(refused('https://user:secret@contoso.sharepoint.com/x')).toMatch(/credentials/);
  });

  it.each([
    'https://169.254.169.254/latest/meta-data/',
    'https://10.1.2.3/x',
    'https://172.16.0.1/x',
    'https://172.31.255.255/x',
    'https://192.168.1.1/x',
    'https://100.64.0.1/x',
    'https://0.0.0.0/x',
    'https://[fd00::1]/x',
    'https://[fe80::1]/x',
    'https://[::ffff:169.254.169.254]/x',
    'https://[::ffff:10.0.0.1]/x',
  ])('refuses the private or link-local address in %s', (raw) => {
    expect(refused(raw)).toMatch(/private or link-local/);
  });

  it('refuses loopback unless it is the loopback serviceUrl host, or authentication is off', () => {
    for (const raw of ['http://127.0.0.1:8080/x', 'https://localhost/x', 'https://[::1]/x', 'https://2130706433/x', 'https://0x7f.1/x']) {
      expect(refused(raw)).toMatch(/loopback/);
    }
    const fake = urlPolicy('http://127.0.0.1:4100/', false);
    expect(refused('http://127.0.0.1:4100/download/1', fake)).toBeUndefined();
    expect(refused('http://127.0.0.1:4101/download/1', fake)).toMatch(/loopback/);
    expect(refused('http://localhost:4100/download/1', fake)).toMatch(/loopback/);
    const local = urlPolicy('http://localhost:56150', true);
    expect(refused('http://127.0.0.1:9999/x', local)).toBeUndefined();
    expect(refused('http://[::1]:9999/x', local)).toBeUndefined();
    expect(refused('http://10.0.0.1/x', local)).toMatch(/non-https/);
    expect(refused('https://10.0.0.1/x', local)).toMatch(/private/);
  });

  it('lets the bot token go to Teams hosts over https and to the serviceUrl, nowhere else', () => {
    const yes = (raw: string, policy = teams) => mayReceiveToken(new URL(raw), policy);
    expect(yes('https://smba.trafficmanager.net/emea/v3/attachments/0-weu-d3/views/original')).toBe(true);
    expect(yes('https://us-api.asm.skype.com/v1/objects/0-eus-d1/views/original')).toBe(true);
    expect(yes('https://smba.infra.gcc.teams.microsoft.com/teams/v3/attachments/x/views/original')).toBe(true);
    expect(yes('https://api.botframework.com/v3/attachments/x')).toBe(true);
    expect(yes('http://smba.trafficmanager.net/emea/v3/attachments/x')).toBe(false);
    expect(yes('https://smba.trafficmanager.net.evil.example/x')).toBe(false);
    expect(yes('https://evilbotframework.com/x')).toBe(false);
    expect(yes('https://contoso.sharepoint.com/x')).toBe(false);
    const fake = urlPolicy('http://127.0.0.1:4100/', false);
    expect(yes('http://127.0.0.1:4100/v3/attachments/1/views/original', fake)).toBe(true);
    expect(yes('http://127.0.0.1:4101/v3/attachments/1/views/original', fake)).toBe(false);
  });
});
