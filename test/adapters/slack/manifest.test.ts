import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Manifest {
  display_information: { name: string; description: string; long_description: string };
  features: { bot_user: { display_name: string }; app_home: { messages_tab_enabled: boolean }; slash_commands?: unknown };
  oauth_config: { scopes: { bot: string[]; user?: string[] } };
  settings: { event_subscriptions: { bot_events: string[] }; socket_mode_enabled: boolean };
}

const manifest = parse(readFileSync(new URL('../../../manifest/slack/manifest.yaml', import.meta.url), 'utf8')) as Manifest;

/** The scope each subscribed event needs (Slack's event reference); null for none. */
const EVENT_SCOPE: Record<string, string | null> = {
  app_mention: 'app_mentions:read',
  'message.im': 'im:history',
  'message.channels': 'channels:history',
  'message.groups': 'groups:history',
  app_home_opened: null,
};
/** Scopes the Web API calls of adapters/slack need. */
const CALL_SCOPES = ['chat:write', 'files:read', 'files:write'];

describe('Slack manifest', () => {
  it('asks for exactly the scopes its events and calls need', () => {
    const events = manifest.settings.event_subscriptions.bot_events;
    expect(events.filter((e) => !(e in EVENT_SCOPE))).toEqual([]);
    const needed = new Set([...events.map((e) => EVENT_SCOPE[e]).filter((scope) => scope !== null), ...CALL_SCOPES]);
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual([...needed].sort());
    expect(manifest.oauth_config.scopes.user).toBeUndefined();
  });

  it('subscribes to app_home_opened, for the greeting', () => {
    expect(manifest.settings.event_subscriptions.bot_events).toContain('app_home_opened');
  });

  it('has a bot user, a DM tab, Socket Mode on, no slash command, and a description Slack accepts', () => {
    expect(manifest.features.bot_user.display_name).toBe('Crunch');
    expect(manifest.features.app_home.messages_tab_enabled).toBe(true);
    expect(manifest.settings.socket_mode_enabled).toBe(true);
    expect(manifest.features.slash_commands).toBeUndefined();
    expect(manifest.display_information.description.length).toBeLessThanOrEqual(140);
    expect(manifest.display_information.long_description.length).toBeGreaterThanOrEqual(175);
  });
});
