// Time, injected so tests of does-not-exist timers and reconnect backoff are fast and exact.
//
// Two readings, as Envoy has MonotonicTime and SystemTime: now() measures intervals and
// deadlines and must not move when the wall clock is stepped (NTP, a VM resume, a user
// setting the date), or a step back would hold every timeout and ejection for as long as the
// step, and a step forward would fire them all at once. wallNow() is the date, read only
// where a wall time is meant (an epoch-seconds rate-limit reset header, a timestamp shown to
// an operator).
import { performance } from 'node:perf_hooks';

export type TimerHandle = unknown;

export interface Clock {
  /**
   * Milliseconds for intervals and deadlines: only differences between two readings mean
   * anything, and the clock must never go back. The default clocks read a monotonic clock
   * that starts at the process's start time in Unix epoch ms, so a reading printed in a log
   * or a dump is near the date (it drifts from it by every wall-clock step since).
   */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /**
   * Wall-clock time, Unix epoch ms, for values that are dates (X-RateLimit-Reset style
   * headers, timestamps in a config dump). Optional: a clock without it is read with now().
   */
  wallNow?(): number;
}

/** The clock's wall time: `wallNow()` where the clock has one, else `now()`. */
export function wallTimeOf(clock: Clock): number {
  return clock.wallNow !== undefined ? clock.wallNow() : clock.now();
}

// perf_hooks' own object: the global `performance` is a lazy getter on Node 20, run on every
// read. performance.now() counts from timeOrigin on the monotonic clock that Node's timers
// use; adding timeOrigin keeps readings near epoch ms. Whole milliseconds, as Date.now() gave:
// code that prints a reading or hands a difference to setTimeout expects integers.
const origin = performance.timeOrigin;

/** Monotonic milliseconds near the Unix epoch (see Clock.now). */
const monotonicNow = (): number => Math.floor(origin + performance.now());

export const systemClock: Clock = {
  now: monotonicNow,
  wallNow: () => Date.now(),
  setTimeout: (callback, ms) => {
    const t = setTimeout(callback, ms);
    // Timers of the xDS client never keep the process alive on their own.
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A clock that moves only when told to, for tests: `advance(ms)` fires every timer due on the
 * way, in order of due time, each with `now()` at its due time. Give it to `createMesh({ clock })`
 * (or an XdsClient) and every timeout, back-off, ejection and fault delay is exact and instant.
 */
export class ManualClock implements Clock {
  #t: number;
  #wallOffset = 0;
  #seq = 0;
  readonly #timers = new Map<number, { readonly at: number; readonly cb: () => void }>();

  constructor(start = 0) {
    this.#t = start;
  }

  now(): number {
    return this.#t;
  }

  /** now() plus the offset stepWall() has made (0 until then). */
  wallNow(): number {
    return this.#t + this.#wallOffset;
  }

  /**
   * Step the wall clock by `ms` (negative: back) without moving now() or any timer, as NTP or
   * a VM resume steps the date: what reads wall time sees the step, deadlines do not.
   */
  stepWall(ms: number): void {
    this.#wallOffset += ms;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#t + Math.max(0, ms), cb: callback });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /** Move to time `to`, firing every timer due by then (timers set while firing included). */
  advanceTo(to: number): void {
    for (;;) {
      let next: [number, { readonly at: number; readonly cb: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= to && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#t = next[1].at;
      next[1].cb();
    }
    this.#t = Math.max(this.#t, to);
  }

  advance(ms: number): void {
    this.advanceTo(this.#t + ms);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }
}
