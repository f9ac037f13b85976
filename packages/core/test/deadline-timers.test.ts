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

  it("keeps a Node-style timer armed but unref'd while its lane is empty, and refs it again on the next deadline", () => {
    const clock = new RefClock();
    const d = new DeadlineTimers(clock);
    const fired: number[] = [];
    d.schedule(20, () => fired.push(1)).cancel();
    expect(clock.timers).toHaveLength(1);
    expect(clock.timers[0]!.hasRef()).toBe(false); // an empty lane does not keep the process alive
    expect(clock.cleared).toBe(0);
    clock.advance(5);
    d.schedule(20, () => fired.push(2)); // the same timer, referenced again: no new timer
    expect(clock.timers).toHaveLength(1);
    expect(clock.timers[0]!.hasRef()).toBe(true);
    clock.advance(15); // t = 20: the parked timer fires, finds nothing due, arms for t = 25
    expect(fired).toEqual([]);
    clock.advance(5);
    expect(fired).toEqual([2]);
    expect(clock.pending).toBe(0);
    expect(clock.timers.some((t) => t.live && t.hasRef())).toBe(false);
  });

  it("leaves a timer the clock made unref'd as it is (the xDS client's systemClock)", () => {
    const clock = new RefClock({ unrefd: true });
    const d = new DeadlineTimers(clock);
    d.schedule(20, () => {}).cancel();
    d.schedule(20, () => {});
    expect(clock.timers).toHaveLength(1);
    expect(clock.timers[0]!.hasRef()).toBe(false); // never ref'd by the lane
    expect(clock.cleared).toBe(0);
  });

  it('arms a parked lane again for a deadline earlier than its timer (the clock went back)', () => {
    const clock = new RefClock();
    const d = new DeadlineTimers(clock);
    const fired: number[] = [];
    d.schedule(3000, () => fired.push(1)).cancel(); // parked, armed for t = 3000
    clock.advance(1500);
    clock.step(-60_000); // the wall clock goes back a minute
    d.schedule(3000, () => fired.push(2)); // due 3000 ms from now
    clock.advance(1500); // the parked timer's time: too early for this deadline
    expect(fired).toEqual([]);
    clock.advance(1499);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([2]);
  });

  it('clears the timer of a lane it drops, even a Node-style one', () => {
    const clock = new RefClock();
    const d = new DeadlineTimers(clock);
    for (let ms = 1000; ms < 1100; ms++) d.schedule(ms, () => {}).cancel();
    expect(d.lanes).toBeLessThanOrEqual(DeadlineTimers.KEEP_LANES + 1);
    expect(clock.cleared).toBeGreaterThanOrEqual(100 - DeadlineTimers.KEEP_LANES - 1);
    expect(clock.pending).toBeLessThanOrEqual(DeadlineTimers.KEEP_LANES + 1);
  });
});

/** A manual clock whose handles behave like Node's timers: ref(), unref(), hasRef(). */
class RefClock {
  #now = 0;
  readonly timers: FakeTimer[] = [];
  cleared = 0;
  constructor(readonly options: { unrefd?: boolean } = {}) {}
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): FakeTimer {
    const t = new FakeTimer(this.#now + ms, fn, !this.options.unrefd);
    this.timers.push(t);
    return t;
  }
  clearTimeout(t: unknown): void {
    this.cleared++;
    (t as FakeTimer).live = false;
  }
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }
  /** Move the clock without running timers (a wall-clock step). */
  step(ms: number): void {
    this.#now += ms;
    for (const t of this.timers) t.at += ms; // timers count elapsed time, not wall time
  }
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.#now = next.at;
      next.live = false;
      next.fn();
    }
    this.#now = end;
  }
}

class FakeTimer {
  live = true;
  constructor(
    public at: number,
    readonly fn: () => void,
    public refd: boolean,
  ) {}
  ref(): this {
    this.refd = true;
    return this;
  }
  unref(): this {
    this.refd = false;
    return this;
  }
  hasRef(): boolean {
    return this.refd;
  }
}
