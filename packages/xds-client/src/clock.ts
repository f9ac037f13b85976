// Time, injected so tests of does-not-exist timers and reconnect backoff are fast and exact.

export type TimerHandle = unknown;

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
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
  #seq = 0;
  readonly #timers = new Map<number, { readonly at: number; readonly cb: () => void }>();

  constructor(start = 0) {
    this.#t = start;
  }

  now(): number {
    return this.#t;
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
