import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { registry } from '../../src/core/index.js';

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');

describe('README: metrics', () => {
  const documented = new Set([...readme.matchAll(/`(crunch_[a-z_]+)(?:\{[^}`]*\})?`/g)].map((match) => match[1]!));
  const registered = registry.getMetricsAsArray().map((metric) => metric.name);
  // The process metrics prom-client collects are documented as families (`crunch_process_*`, `crunch_nodejs_*`).
  const crunch = registered.filter((name) => !/^crunch_(process|nodejs)_/.test(name));

  it('lists every metric Crunch registers', () => {
    expect(crunch.length).toBeGreaterThan(5);
    expect(crunch.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('lists no metric that does not exist', () => {
    expect([...documented].filter((name) => !registered.includes(name))).toEqual([]);
  });
});
