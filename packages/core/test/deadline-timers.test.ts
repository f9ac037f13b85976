import { describe, expect, it } from 'vitest';
import { ManualClock } from '@meshlet/xds-client';
import { DeadlineTimers } from '../src/deadline-timers.js';


describe('DeadlineTimers', () => {
  it('fires each deadline at its time, in order, on one clock timer per duration', () => {
    const clock = new ManualClock();
    const d = new DeadlineTimers(clock);
    const fired: string[] = [];
    d.schedule(100, () => fired.push('a'));
    clock.advance(30);
    d.schedule(100, () => fired.push('b'));
    d.schedule(50, () => fired.push('c'));
    expect(clock.pending).toBe(2); // one per duration, not one per deadline
    clock.advance(49);
    expect(fired).toEqual([]);
    clock.advance(1); // t = 80: c
    expect(fired).toEqual(['c']);
    clock.advance(19);
    expect(fired).toEqual(['c']);
    clock.advance(1); // t = 100: a
    expect(fired).toEqual(['c', 'a']);
    clock.advance(29);
    expect(fired).toEqual(['c', 'a']);
    clock.advance(1); // t = 130: b
    expect(fired).toEqual(['c', 'a', 'b']);
    expect(clock.pending).toBe(0);
  });

  it('cancels in O(1); a duration with nothing left holds no timer', () => {
    const clock = new ManualClock();
    const d = new DeadlineTimers(clock);
    const fired: number[] = [];
    const a = d.schedule(100, () => fired.push(1));
    const b = d.schedule(100, () => fired.push(2));
    a.cancel();
    a.cancel(); // idempotent
    expect(clock.pending).toBe(1);
    b.cancel();
    expect(clock.pending).toBe(0); // nothing keeps a process alive after its requests
    const c = d.schedule(100, () => fired.push(3));
    clock.advance(100);
    c.cancel(); // after firing: nothing happens
    expect(fired).toEqual([3]);
  });

  it('re-arms for the new head when the first deadline was cancelled', () => {
    const clock = new ManualClock();
    const d = new DeadlineTimers(clock);
    const fired: number[] = [];
    const first = d.schedule(100, () => fired.push(1));
    clock.advance(40);
    d.schedule(100, () => fired.push(2)); // due at 140
    first.cancel();
    clock.advance(60); // t = 100: the timer armed for the first fires early, re-arms
    expect(fired).toEqual([]);
    expect(clock.pending).toBe(1);
    clock.advance(40);
    expect(fired).toEqual([2]);
  });

  it('lets a firing deadline schedule another of the same duration', () => {
    const clock = new ManualClock();
    const d = new DeadlineTimers(clock);
    const fired: number[] = [];
    d.schedule(10, () => {
      fired.push(clock.now());
      d.schedule(10, () => fired.push(clock.now()));
    });
    clock.advance(25);
    expect(fired).toEqual([10, 20]);
  });

  it('drops empty lanes once there are many durations', () => {
    const clock = new ManualClock();
    const d = new DeadlineTimers(clock);
    for (let ms = 1; ms <= 100; ms++) d.schedule(ms, () => {}).cancel();
    expect(d.lanes).toBeLessThanOrEqual(DeadlineTimers.KEEP_LANES + 1);
  });

  it("keeps a Node timer armed but unref'd while its lane is empty, and refs it again on the next deadline", async () => {
    // A clock on Node's own timers, recording what the lane does with them.
    const made: NodeJS.Timeout[] = [];
    let cleared = 0;
    const clock = {
      now: () => Date.now(),
      setTimeout: (fn: () => void, ms: number) => {
        const t = setTimeout(fn, ms);
        made.push(t);
        return t;
      },
      clearTimeout: (t: unknown) => {
        cleared++;
        clearTimeout(t as NodeJS.Timeout);
      },
    };
    const d = new DeadlineTimers(clock);
    const fired: number[] = [];
    d.schedule(20, () => fired.push(1)).cancel();
    expect(made).toHaveLength(1);
    expect(made[0]!.hasRef()).toBe(false); // an empty lane does not keep the process alive
    expect(cleared).toBe(0);
    d.schedule(20, () => fired.push(2)); // the same timer, referenced again: no new Node timer
    expect(made).toHaveLength(1);
    expect(made[0]!.hasRef()).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toEqual([2]);
    // The first (cancelled) deadline's firing found nothing due and armed for the second one.
    expect(made.length).toBeLessThanOrEqual(2);
    expect(made.every((t) => !t.hasRef() || (t as unknown as { _destroyed: boolean })._destroyed)).toBe(true);
  });

  it("clears the timer of a lane it drops, even a Node timer", () => {
    let cleared = 0;
    const clock = {
      now: () => Date.now(),
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (t: unknown) => {
        cleared++;
        clearTimeout(t as NodeJS.Timeout);
      },
    };
    const d = new DeadlineTimers(clock);
    for (let ms = 1000; ms < 1100; ms++) d.schedule(ms, () => {}).cancel();
    expect(d.lanes).toBeLessThanOrEqual(DeadlineTimers.KEEP_LANES + 1);
    expect(cleared).toBeGreaterThanOrEqual(100 - DeadlineTimers.KEEP_LANES - 1);
  });
});
