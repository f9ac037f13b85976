import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, systemClock, wallTimeOf, type Clock } from '../src/clock.js';

describe('systemClock', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('now() is monotonic and does not follow a wall-clock step; wallNow() does', () => {
    const before = systemClock.now();
    const wallBefore = systemClock.wallNow!();
    // Readings near the date: the default clock starts at the process's start time in epoch ms.
    expect(Math.abs(before - wallBefore)).toBeLessThan(60_000);
    const realNow = Date.now;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000); // an hour back
    const after = systemClock.now();
    expect(after).toBeGreaterThanOrEqual(before);
    expect(after - before).toBeLessThan(60_000);
    expect(systemClock.wallNow!()).toBeLessThan(wallBefore - 3_000_000);
    expect(Number.isInteger(after)).toBe(true); // whole milliseconds, as Date.now() gave
  });
});

describe('ManualClock', () => {
  it('stepWall() moves wallNow() and neither now() nor a timer', () => {
    const clock = new ManualClock(1000);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 100);
    expect(clock.wallNow()).toBe(1000);
    clock.stepWall(-60_000);
    expect(clock.now()).toBe(1000);
    expect(clock.wallNow()).toBe(-59_000);
    clock.advance(100);
    expect(fired).toEqual([1100]);
    expect(clock.wallNow()).toBe(-58_900);
  });
});

describe('wallTimeOf', () => {
  it("reads wallNow() where a clock has one, else now() (a user's clock from before wallNow)", () => {
    const old: Clock = { now: () => 42, setTimeout: () => 0, clearTimeout: () => {} };
    expect(wallTimeOf(old)).toBe(42);
    expect(wallTimeOf({ ...old, wallNow: () => 7 })).toBe(7);
  });
});
