import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logDestination } from '../../src/app.js';

describe('createLogger', () => {
  it('censors credentials wherever SDK errors and configs carry them', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    const logger = createLogger('info', sink);
    const err = Object.assign(new Error('request failed'), {
      config: { headers: { Authorization: 'Bearer xoxb-secret-1' } },
      request: { headers: { authorization: 'Bearer secret-2' } },
    });
    logger.error({ err }, 'slack call failed');
    logger.info({ req: { headers: { authorization: 'Bearer secret-3', 'api-key': 'secret-4' } } }, 'inbound');
    logger.info({ slack: { botToken: 'xoxb-secret-5', appToken: 'xapp-secret-6' }, openai: { apiKey: 'sk-secret-7' } }, 'config');
    await new Promise((resolve) => setImmediate(resolve));
    expect(out).toContain('slack call failed');
    expect(out).toContain('[redacted]');
    expect(out).not.toMatch(/secret-\d/);
  });
});

describe('logDestination', () => {
  it('writes JSON lines when stderr is not a terminal, readable lines on one, and follows LOG_FORMAT', async () => {
    expect(await logDestination('auto', false)).toBeUndefined();
    expect(await logDestination('json', true)).toBeUndefined();
    const pretty = await logDestination('pretty', false);
    expect(pretty).toBeDefined();
    expect(typeof (pretty as { write?: unknown }).write).toBe('function');
  });
});
