// Timeouts for the request path, on one clock timer per duration. Every routed HTTP request
// carries at least Envoy's default 15 s route timeout, and nearly all of them end long before
// it: a Node timer per request (created, then cleared) costs more than routing the request.
// Requests with the same duration expire in the order they started, so each duration keeps
// a FIFO list (a doubly linked list: O(1) to add and to cancel) and one clock timer armed
// for the list's head. When it fires, the expired entries run and the timer is armed for the
// new head. A list left empty lets go of its timer, so no timer outlives the requests (a process
// is never kept alive by a finished request's timeout): a Node timer is kept armed but unref'd
// (a client that sends one request at a time would otherwise insert and remove a Node timer per
// request, which costs more than the rest of the lane); a clock whose handles cannot be
// unref'd has its timer cleared.
import type { Clock, TimerHandle } from '@meshlet/xds-client';

/** A scheduled deadline; cancel() is O(1) and idempotent. */
export interface Deadline {
  cancel(): void;
}

/**
 * What a deadline runs: a function, or an object whose onDeadline() runs (an object that
 * already exists, such as the request or attempt it limits, saves a closure per deadline).
 */
export type DeadlineAction = (() => void) | { onDeadline(): void };

class Entry implements Deadline {
  prev: Entry | undefined;
  next: Entry | undefined;
  linked = true;

  constructor(
    readonly lane: Lane,
    readonly at: number,
    readonly action: DeadlineAction,
  ) {}

  fire(): void {
    const a = this.action;
    if (typeof a === 'function') a();
    else a.onDeadline();
  }

  cancel(): void {
    if (this.linked) this.lane.unlink(this);
  }
}

class Lane {
  head: Entry | undefined;
  tail: Entry | undefined;
  #timer: TimerHandle | undefined;
  /** The lane is empty and its timer is still armed. */
  #parked = false;
  /** The armed timer keeps the process alive and can be unref'd (a Node timer as setTimeout makes it). */
  #unrefable = false;
  /** When the armed timer fires (it may be earlier than the head's deadline after cancels). */
  #armedAt = 0;

  constructor(
    readonly clock: Clock,
    readonly ms: number,
    /** The lane is empty; false to drop it (its timer is then cleared). */
    readonly onEmpty: (lane: Lane) => boolean,
  ) {}

  add(action: DeadlineAction): Entry {
    const now = this.clock.now();
    const e = new Entry(this, now + this.ms, action);
    const tail = this.tail;
    if (tail === undefined) {
      this.head = this.tail = e;
    } else {
      tail.next = e;
      e.prev = tail;
      this.tail = e;
    }
    if (this.#timer === undefined) this.#arm(e.at, now);
    else if (this.#parked) this.#unpark(e, now);
    return e;
  }

  /** The first deadline after the lane was empty: its parked timer serves it again. */
  #unpark(e: Entry, now: number): void {
    this.#parked = false;
    if (e.at < this.#armedAt) {
      // The clock went back while the lane was empty: the timer would fire after this
      // deadline and, as it fires for #armedAt, run it early. Armed again for this one.
      // The mesh's default clocks are monotonic and never get here; a clock given to
      // createMesh may follow the date.
      this.clock.clearTimeout(this.#timer);
      this.#arm(e.at, now);
    } else if (this.#unrefable) {
      (this.#timer as Refable).ref();
    }
  }

  unlink(e: Entry): void {
    e.linked = false;
    if (e.prev === undefined) this.head = e.next;
    else e.prev.next = e.next;
    if (e.next === undefined) this.tail = e.prev;
    else e.next.prev = e.prev;
    e.prev = e.next = undefined;
    if (this.head === undefined) {
      const kept = this.onEmpty(this);
      const t = this.#timer;
      if (t === undefined) return;
      if (kept && isRefable(t)) {
        // Parked: it fires at most once more, finds nothing due, and is not armed again.
        // A timer that keeps the process alive is unref'd meanwhile; one made unref'd (the
        // xDS client's systemClock makes them so) is left as it is.
        if (this.#unrefable) (t as Refable).unref();
        this.#parked = true;
      } else {
        this.clock.clearTimeout(t);
        this.#timer = undefined;
      }
    }
  }

  #arm(at: number, now: number): void {
    this.#armedAt = at;
    // No deadline of this lane is more than `ms` away; one that seems further was set before
    // a (non-monotonic) clock went back, and waits at most `ms` instead of the step.
    const t = this.clock.setTimeout(() => this.#expire(), Math.min(this.ms, Math.max(0, at - now)));
    this.#timer = t;
    this.#unrefable = isRefable(t) && t.hasRef();
  }

  #expire(): void {
    this.#timer = undefined;
    this.#parked = false;
    const now = this.clock.now();
    // Clocks may round: never run an entry before its time, but do not spin on one that is due.
    const due = Math.max(now, this.#armedAt);
    for (let e = this.head; e !== undefined && e.at <= due; e = this.head) {
      this.unlink(e);
      e.fire();
    }
    const head = this.head;
    if (head !== undefined && this.#timer === undefined) this.#arm(head.at, now);
  }
}

/** A Node timer's liveness controls. */
interface Refable {
  ref(): unknown;
  unref(): unknown;
  hasRef(): boolean;
}

function isRefable(t: TimerHandle): t is Refable {
  const r = t as Partial<Refable> | null;
  return typeof r?.unref === 'function' && typeof r.ref === 'function' && typeof r.hasRef === 'function';
}

/** Deadlines on a clock, grouped by duration (see the module comment). */
export class DeadlineTimers {
  readonly #clock: Clock;
  readonly #lanes = new Map<number, Lane>();
  /**
   * Empty lanes are kept for reuse while there are few durations; past this many (durations
   * from x-envoy-upstream-rq-timeout-ms headers, say) an empty lane is dropped.
   */
  static readonly KEEP_LANES = 16;
  readonly #onEmpty = (lane: Lane): boolean => {
    if (this.#lanes.size <= DeadlineTimers.KEEP_LANES) return true;
    this.#lanes.delete(lane.ms);
    return false;
  };

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Durations with a lane (for tests). */
  get lanes(): number {
    return this.#lanes.size;
  }

  /** Run `action` in `ms` milliseconds unless cancelled first. */
  schedule(ms: number, action: DeadlineAction): Deadline {
    let lane = this.#lanes.get(ms);
    if (lane === undefined) {
      lane = new Lane(this.#clock, ms, this.#onEmpty);
      this.#lanes.set(ms, lane);
    }
    return lane.add(action);
  }
}
