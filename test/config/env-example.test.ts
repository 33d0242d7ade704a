import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { placeholderValues } from '../../scripts/build-teams-package.js';
import { doctorSettings } from '../../src/cli/checks.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';

/** The variables `.env.example` documents, set or commented out: `NAME=` at the start of a line, after an optional `# `. */
function documented(text: string): Set<string> {
  return new Set([...text.matchAll(/^#?[ \t]*([A-Za-z][A-Za-z0-9_]*)=/gm)].map((match) => match[1]!));
}

/** Every variable `read` looks up in the environment it is given, whatever the code path asks for. */
function readsOf(read: (env: NodeJS.ProcessEnv) => void): Set<string> {
  const names = new Set<string>();
  const env = new Proxy({} as NodeJS.ProcessEnv, {
    get(_target, name) {
      if (typeof name === 'string') names.add(name);
      return undefined;
    },
  });
  read(env);
  return names;
}

const example = documented(await readFile(new URL('../../.env.example', import.meta.url), 'utf8'));

describe('.env.example', () => {
  const fromConfig = readsOf((env) => {
    try {
      loadConfig(env, { requireEngine: false });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
    }
  });
  const fromTeamsPackage = readsOf((env) => void placeholderValues(env));
  const fromDoctor = readsOf((env) => void doctorSettings(env));

  it('documents every variable the configuration reads', () => {
    expect(fromConfig.size).toBeGreaterThan(30);
    expect([...fromConfig].filter((name) => !example.has(name))).toEqual([]);
  });

  it('documents every variable `npm run package:teams` reads', () => {
    expect(fromTeamsPackage).toContain('TEAMS_APP_VERSION');
    expect([...fromTeamsPackage].filter((name) => !example.has(name))).toEqual([]);
  });

  it('documents every variable `crunch doctor` reads', () => {
    expect([...fromDoctor].filter((name) => !example.has(name))).toEqual([]);
  });

  it('documents nothing that Crunch does not read (a misspelt name would be silently ignored)', () => {
    expect([...example].filter((name) => !fromConfig.has(name) && !fromTeamsPackage.has(name) && !fromDoctor.has(name))).toEqual([]);
  });
});
