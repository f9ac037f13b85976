import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, type Clock } from '@meshlet/xds-client';
import { DeadlineTimers } from '../src/deadline-timers.js';
import { requestClock } from '../src/retry-loop.js';
import { restoreWallClock, stepWallClock } from './wall-clock-step.js';


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

  it("runs an object's onDeadline(), with one lane per duration however durations alternate", () => {
    const clock = new ManualClock();
    const d = new DeadlineTimers(clock);
    const fired: string[] = [];
    const target = (name: string) => ({ onDeadline: () => fired.push(name) });
    // Durations in turn (a route and a per-try timeout), then a third: each keeps one lane.
    for (const [ms, name] of [[100, 'r1'], [50, 'p1'], [100, 'r2'], [50, 'p2'], [70, 'x'], [100, 'r3']] as const) d.schedule(ms, target(name));
    expect(d.lanes).toBe(3);
    expect(clock.pending).toBe(3);
    const cancelled = d.schedule(50, target('cancelled'));
    cancelled.cancel();
    clock.advance(100);
    expect(fired).toEqual(['p1', 'p2', 'x', 'r1', 'r2', 'r3']);
  });

  it('fires every deadline not cancelled exactly at its time, over more durations than it keeps lanes for (seeded random)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const clock = new ManualClock();
    const d = new DeadlineTimers(clock);
    const live = new Map<number, { at: number; cancel(): void }>();
    const fired: Array<[number, number, number]> = [];
    let id = 0;
    let now = 0;
    for (let step = 0; step < 20000; step++) {
      const r = rnd();
      if (r < 0.5) {
        // durations from a wide set (> KEEP_LANES) and a hot pair
        const ms = rnd() < 0.5 ? (rnd() < 0.5 ? 100 : 50) : 1 + Math.floor(rnd() * 40);
        const k = id++;
        const fire = () => {
          fired.push([k, live.get(k)!.at, now]);
          live.delete(k);
        };
        const action = rnd() < 0.5 ? fire : { onDeadline: fire };
        const h = d.schedule(ms, action);
        live.set(k, { at: now + ms, cancel: () => h.cancel() });
      } else if (r < 0.75) {
        const keys = [...live.keys()];
        if (keys.length > 0) {
          const k = keys[Math.floor(rnd() * keys.length)]!;
          live.get(k)!.cancel();
          live.delete(k);
        }
      } else {
        const by = Math.floor(rnd() * 10);
        for (let i = 0; i < by; i++) {
          now++;
          clock.advance(1);
        }
      }
    }
    for (let i = 0; i < 200; i++) {
      now++;
      clock.advance(1);
    }
    expect(live.size).toBe(0);
    for (const [, at, when] of fired) expect(when).toBe(at);
    expect(d.lanes).toBeLessThanOrEqual(DeadlineTimers.KEEP_LANES + 1);
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

  it('a clock that goes back with deadlines queued delays the next one by at most its duration, not the step', () => {
    const clock = new RefClock();
    const d = new DeadlineTimers(clock);
    const fired: number[] = [];
    d.schedule(100, () => fired.push(1)); // due at t = 100
    clock.advance(50);
    d.schedule(100, () => fired.push(2)); // due at t = 150
    clock.step(-60_000); // the clock goes back a minute; its timers do not
    clock.advance(50); // the first one's timer
    expect(fired).toEqual([1]);
    clock.advance(99);
    expect(fired).toEqual([1]);
    clock.advance(1); // 100 ms later (50 ms late), not a minute later
    expect(fired).toEqual([1, 2]);
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

// The mesh's default clock, with real Node timers, while the wall clock is stepped.
describe('DeadlineTimers on the default request clock, across a wall-clock step', () => {
  afterEach(restoreWallClock);

  /** requestClock, recording the delay of every timer it is asked for. */
  function recording(): { clock: Clock; delays: number[] } {
    const delays: number[] = [];
    const clock: Clock = {
      now: () => requestClock.now(),
      setTimeout: (cb, ms) => {
        delays.push(ms);
        return requestClock.setTimeout(cb, ms);
      },
      clearTimeout: (h) => requestClock.clearTimeout(h),
    };
    return { clock, delays };
  }

  it('a step forward does not run a deadline before its time', async () => {
    const d = new DeadlineTimers(requestClock);
    const fired: string[] = [];
    const firstDone = new Promise<void>((resolve) => d.schedule(100, () => (fired.push('a'), resolve())));
    await sleep(50);
    const bScheduled = performance.now();
    let bFiredAfter = -1;
    const secondDone = new Promise<void>((resolve) =>
      d.schedule(100, () => {
        bFiredAfter = performance.now() - bScheduled;
        fired.push('b');
        resolve();
      }),
    );
    stepWallClock(3_600_000); // the date jumps an hour ahead
    await firstDone;
    await secondDone;
    expect(fired).toEqual(['a', 'b']);
    // On a clock that followed the date, b ran with a, about 50 ms early. (Timers round to
    // whole milliseconds, hence the slack of 2.)
    expect(bFiredAfter).toBeGreaterThanOrEqual(98);
  });

  it('a step back does not put a deadline off by the step', async () => {
    const { clock, delays } = recording();
    const d = new DeadlineTimers(clock);
    const fired: string[] = [];
    const firstDone = new Promise<void>((resolve) => d.schedule(100, () => (fired.push('a'), resolve())));
    await sleep(20);
    const second = d.schedule(100, () => fired.push('b'));
    stepWallClock(-3_600_000); // the date goes back an hour
    await firstDone;
    // The lane armed again for b: within its 100 ms, not an hour and 100 ms away (where a
    // clock that followed the date puts it).
    expect(delays).toHaveLength(2);
    expect(delays[1]).toBeLessThanOrEqual(100);
    second.cancel();
    expect(fired).toEqual(['a']);
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
