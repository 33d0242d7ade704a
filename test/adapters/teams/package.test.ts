import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import type { TeamsAdapterConfig } from '../../../adapters/teams/index.js';
import { buildTeamsPackage, PackageError } from '../../../scripts/build-teams-package.js';

const APP_ID = '3f1e2d4c-5b6a-4789-8abc-def012345678';

describe('Teams app package', () => {
  it('zips the filled manifest and both icons', () => {
    const { zip } = buildTeamsPackage({ MicrosoftAppId: APP_ID, PUBLIC_URL: 'https://crunch.example.com' });
    const files = unzipSync(zip);
    expect(Object.keys(files).sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const manifest = JSON.parse(strFromU8(files['manifest.json']!)) as Record<string, any>;
    expect(manifest.id).toBe(APP_ID);
    expect(manifest.validDomains).toEqual(['crunch.example.com']);
    const [bot] = manifest.bots;
    expect(bot).toMatchObject({ botId: APP_ID, supportsFiles: true, scopes: ['personal', 'team', 'groupChat'] });
    expect(bot.commandLists[0].commands.map((c: { title: string }) => c.title)).toEqual(['help', 'reset', 'new']);
    expect(JSON.stringify(manifest)).not.toContain('${{');
  });

  it('names every missing variable', () => {
    try {
      buildTeamsPackage({});
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PackageError);
      const text = (err as PackageError).problems.join('\n');
      expect(text).toContain('MicrosoftAppId');
      expect(text).toContain('PUBLIC_URL');
    }
  });

  it('rejects a non-GUID app id', () => {
    expect(() => buildTeamsPackage({ MicrosoftAppId: 'not-a-guid', PUBLIC_URL: 'https://crunch.example.com' })).toThrow(/must be a GUID/);
  });
});

describe('configuration', () => {
  it('src/config feeds the adapter config as is', async () => {
    const { loadConfig } = await import('../../../src/config/index.js');
    const config = loadConfig(
      { MicrosoftAppId: APP_ID, MicrosoftAppPassword: 'secret', MicrosoftAppTenantId: 'tenant', TEAMS_GRAPH_FILES: 'true', TEAMS_STREAMING: '0', PUBLIC_URL: 'https://crunch.example.com' },
      { requireEngine: false },
    );
    const adapterConfig: TeamsAdapterConfig = { ...config.teams, publicUrl: config.publicUrl };
    expect(adapterConfig).toMatchObject({ appId: APP_ID, graphFiles: true, streaming: false, publicUrl: 'https://crunch.example.com' });
    expect(() => loadConfig({ TEAMS_GRAPH_FILES: 'yes' }, { requireEngine: false })).toThrow(/TEAMS_GRAPH_FILES/);
  });
});
