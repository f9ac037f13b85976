import { describe, expect, it } from 'vitest';
import { exponentialBackoffFor, JitteredExponentialBackoff, jitteredLowerBound } from '../src/backoff.js';
import { seededRandom } from '../src/random.js';
import { parseResetInterval, type RateLimitedBackOff } from '../src/retry-rate-limit.js';
import { response, retryPolicy } from './retry-fixtures.js';

describe('jittered exponential back-off (Envoy JitteredExponentialBackOffStrategy)', () => {
  it('defaults: base 25 ms, bounds double to a cap of 250 ms', () => {
    const b = exponentialBackoffFor(undefined, seededRandom(1));
    const bounds: number[] = [];
    for (let i = 0; i < 7; i++) {
      bounds.push(b.currentBound);
      b.next();
    }
    expect(bounds).toEqual([25, 50, 100, 200, 250, 250, 250]);
  });

  it('every draw is a whole number in [0, bound); the mean is near bound/2', () => {
    const random = seededRandom(42);
    for (let retry = 1; retry <= 6; retry++) {
      const draws: number[] = [];
      let bound = 0;
      for (let k = 0; k < 4000; k++) {
        const b = new JitteredExponentialBackoff(25, 250, random);
        for (let i = 1; i < retry; i++) b.next();
        bound = b.currentBound;
        draws.push(b.next());
      }
      expect(bound).toBe(Math.min(25 * 2 ** (retry - 1), 250));
      expect(draws.every((d) => Number.isInteger(d) && d >= 0 && d < bound)).toBe(true);
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      expect(Math.abs(mean - (bound - 1) / 2)).toBeLessThan(bound * 0.05);
      // The draws cover the range, not just part of it.
      expect(Math.min(...draws)).toBeLessThan(bound * 0.05);
      expect(Math.max(...draws)).toBeGreaterThan(bound * 0.95 - 1);
    }
  });

  it('uses retry_back_off, its default max of 10 × base, and rounds to whole ms ≥ 1', () => {
    const b = exponentialBackoffFor(retryPolicy({ retryBackOff: { baseInterval: 100, maxInterval: 300 } }), seededRandom(3));
    const bounds = [b.currentBound];
    for (let i = 0; i < 4; i++) {
      b.next();
      bounds.push(b.currentBound);
    }
    // 100 → 200; 200 is not below 300/2, so the cap follows.
    expect(bounds).toEqual([100, 200, 300, 300, 300]);
    const tiny = new JitteredExponentialBackoff(0.4, 0.4, seededRandom(1));
    expect(tiny.currentBound).toBe(1);
    expect(tiny.next()).toBe(0);
    b.reset();
    expect(b.currentBound).toBe(100);
  });

  it('lower-bound jitter lies in [interval, 1.5 × interval)', () => {
    const random = seededRandom(9);
    const draws = Array.from({ length: 2000 }, () => jitteredLowerBound(2000, random));
    expect(draws.every((d) => d >= 2000 && d < 3000)).toBe(true);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    expect(mean).toBeGreaterThan(2400);
    expect(mean).toBeLessThan(2600);
  });
});

describe('rate-limited reset headers', () => {
  const config: RateLimitedBackOff = {
    resetHeaders: [
      { name: 'retry-after', format: 'SECONDS' },
      { name: 'x-ratelimit-reset', format: 'UNIX_TIMESTAMP' },
    ],
    maxInterval: 300_000,
  };
  const now = 1_700_000_000_500; // ms; whole seconds 1_700_000_000

  it('reads Retry-After in seconds', () => {
    expect(parseResetInterval(config, response(429, { 'retry-after': '120' }).headers, now)).toBe(120_000);
    expect(parseResetInterval(config, response(429, { 'retry-after': ' 7 ' }).headers, now)).toBe(7000);
    expect(parseResetInterval(config, response(429, { 'retry-after': '0' }).headers, now)).toBe(0);
  });

  it('reads a Unix timestamp against the current time in whole seconds', () => {
    expect(parseResetInterval(config, response(429, { 'x-ratelimit-reset': '1700000030' }).headers, now)).toBe(30_000);
    expect(parseResetInterval(config, response(429, { 'x-ratelimit-reset': '1700000000' }).headers, now)).toBe(0);
    // In the past: does not parse.
    expect(parseResetInterval(config, response(429, { 'x-ratelimit-reset': '1699999999' }).headers, now)).toBeUndefined();
  });

  it('tries headers in order, skipping unparsable ones and intervals over max_interval', () => {
    const h = (r: Record<string, string>) => response(429, r).headers;
    expect(parseResetInterval(config, h({ 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT', 'x-ratelimit-reset': '1700000010' }), now)).toBe(10_000);
    expect(parseResetInterval(config, h({ 'retry-after': '301', 'x-ratelimit-reset': '1700000010' }), now)).toBe(10_000);
    expect(parseResetInterval(config, h({ 'retry-after': '300' }), now)).toBe(300_000);
    expect(parseResetInterval(config, h({ 'retry-after': '301' }), now)).toBeUndefined();
    expect(parseResetInterval(config, h({ 'retry-after': '-5' }), now)).toBeUndefined();
    expect(parseResetInterval(config, h({}), now)).toBeUndefined();
    // Several values: the first one is read.
    expect(parseResetInterval(config, h({ 'retry-after': '3,9' }), now)).toBe(3000);
  });
});
