import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url);

describe('deployment files', () => {
  it('compose.yaml runs Redis (persistent, health-checked) and two replicas on it, with a grace period for the drain', async () => {
    const compose = parse(await readFile(new URL('compose.yaml', root), 'utf8'), { merge: true }) as { services: Record<string, Record<string, any>> };
    const { redis, 'crunch-1': one, 'crunch-2': two } = compose.services;
    expect(redis!['command']).toContain('--appendonly');
    expect(redis!['healthcheck']).toBeDefined();
    for (const replica of [one!, two!]) {
      expect(replica['environment']).toMatchObject({ STORE_URL: 'redis://redis:6379' });
      expect(replica['depends_on']).toMatchObject({ redis: { condition: 'service_healthy' } });
      expect(replica['stop_grace_period']).toBe('30s');
    }
    expect(new Set([one!['ports'][0], two!['ports'][0]]).size).toBe(2);
  });

  it('the image reports healthy only when ready (/readyz: started, store answering)', async () => {
    const dockerfile = await readFile(new URL('Dockerfile', root), 'utf8');
    expect(dockerfile).toMatch(/HEALTHCHECK[^\n]*\/readyz/);
  });
});
