import { describe, expect, it } from 'vitest';
import { createSlackAdapter, type SlackAdapterConfig } from '../../../adapters/slack/index.js';
import type { SlackConfig } from '../../../src/config/index.js';
import { CrunchError } from '../../../src/core/index.js';
import { startServer } from '../../../src/server/index.js';
import { deliverEvent } from '../../fakes/slack.js';
import { fakeDeps } from '../../support/deps.js';

// A loaded SlackConfig is a valid SlackAdapterConfig as it is.
const fromConfig: (config: SlackConfig) => SlackAdapterConfig = (config) => config;

const deps = fakeDeps;

describe('connection mode', () => {
  it('uses Socket Mode when an app token is set, and serves no HTTP route (nothing connects before start)', async () => {
    const adapter = createSlackAdapter(
      fromConfig({ botToken: 'xoxb-1-2-3', signingSecret: undefined, appToken: 'xapp-1-A0TEST-1-abc', apiUrl: 'http://127.0.0.1:9/api/', allowedBotIds: [] }),
      await deps(),
    );
    expect(adapter.name).toBe('slack');
    expect(adapter.mode).toBe('socket');
    expect(adapter.routes).toEqual([]);
  });

  it('uses the HTTP Events API otherwise, and needs the signing secret for it', async () => {
    const d = await deps();
    const adapter = createSlackAdapter({ botToken: 'xoxb-1-2-3', signingSecret: 'secret', appToken: undefined, apiUrl: undefined }, d);
    expect(adapter.mode).toBe('http');
    expect(adapter.routes).toHaveLength(1);
    expect(() => createSlackAdapter({ botToken: 'xoxb-1-2-3', signingSecret: undefined, appToken: undefined, apiUrl: undefined }, d)).toThrow(CrunchError);
  });
});

describe('before start', () => {
  it('answers 503 (so Slack redelivers) until the adapter has started, and leaves other paths alone', async () => {
    const d = await deps();
    const adapter = createSlackAdapter({ botToken: 'xoxb-1-2-3', signingSecret: 'secret', appToken: undefined, apiUrl: 'http://127.0.0.1:9/api/' }, d);
    const server = await startServer({ port: 0, host: '127.0.0.1', routes: adapter.routes, logger: d.logger });
    try {
      const early = await deliverEvent(`${server.url}/slack/events`, { type: 'event_callback' }, { signingSecret: 'secret' });
      expect(early.status).toBe(503);
      expect((await fetch(`${server.url}/slack/events`)).status).toBe(405);
      expect((await fetch(`${server.url}/elsewhere`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
