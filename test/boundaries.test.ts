import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** The architecture's import rules, checked on the sources themselves. */
const root = fileURLToPath(new URL('..', import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => relative(root, join(e.parentPath, e.name)));
}

async function imports(file: string): Promise<string[]> {
  const text = await readFile(join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => (m[1] ?? m[2])!);
}

describe('import boundaries', () => {
  it('the core imports no adapter, no engine implementation and no platform or model SDK', async () => {
    for (const file of await sources('src/core')) {
      for (const spec of await imports(file)) {
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^(@slack\/|botbuilder|botframework|openai)|adapters\/|engines\//);
      }
    }
  });

  it('engines reach the core only through its door, and never the app\'s config or an adapter', async () => {
    for (const file of await sources('src/engines')) {
      for (const spec of await imports(file)) {
        expect(spec, `${file} imports ${spec}`).not.toMatch(/config\/|adapters\/|cli\/|server\//);
        if (spec.includes('core/')) expect(spec, `${file} imports ${spec}`).toMatch(/core\/index\.js$/);
      }
    }
  });

  it('adapters never talk to OpenAI and reach the core only through src/core/index.ts', async () => {
    for (const file of await sources('adapters')) {
      for (const spec of await imports(file)) {
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^openai|engines\//);
        if (spec.includes('src/core')) expect(spec, `${file} imports ${spec}`).toMatch(/src\/core\/index\.js$/);
      }
    }
  });

  it('the Slack adapter never imports botbuilder and the Teams adapter never imports Slack', async () => {
    for (const file of await sources('adapters/slack')) for (const spec of await imports(file)) expect(spec).not.toMatch(/^botbuilder|^botframework|adapters\/teams/);
    for (const file of await sources('adapters/teams')) for (const spec of await imports(file)) expect(spec).not.toMatch(/^@slack\/|adapters\/slack/);
  });

  it('every adapter has the same top-level files, with platform-only parts in subfolders', async () => {
    const topLevel = async (platform: string) =>
      (await readdir(join(root, 'adapters', platform), { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
    expect(await topLevel('slack')).toEqual(['index.ts', 'markdown.ts', 'prepare.ts', 'present.ts', 'receive.ts', 'types.ts']);
    expect(await topLevel('teams')).toEqual(await topLevel('slack'));
  });

  it('keeps every source file under 300 lines', async () => {
    for (const file of [...(await sources('src')), ...(await sources('adapters'))]) {
      const lines = (await readFile(join(root, file), 'utf8')).split('\n').length;
      expect(lines, file).toBeLessThanOrEqual(300);
    }
  });
});
