import { describe, expect, it } from 'vitest';
import { retryAfterMs } from '../../src/core/index.js';

describe('retryAfterMs', () => {
  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs('0.5')).toBe(500);
    expect(retryAfterMs('Thu, 01 Jan 1970 00:00:10 GMT', 4000)).toBe(6000);
    expect(retryAfterMs('Thu, 01 Jan 1970 00:00:01 GMT', 4000)).toBe(0);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs(' ')).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});
