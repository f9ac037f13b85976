// The attempt loop of one routed request: attempts, per-try and overall timeouts,
// retry decisions and back-off, transport-agnostic and driven by an injected clock.
// It follows Envoy's router (router.cc, retry_state_impl.cc):
//
//   attempt ─▶ outcome ─▶ retriable? ── no ──▶ done
//                              │ yes
//                  retries left? ── no ──▶ done, flag URX
//                              │ yes (one retry used)
//             breaker admits a retry? ── no ──▶ done, flag UO
//                              │ yes
//       back-off (rate-limited reset header, else exponential) ─▶ attempt
//
// The overall timeout runs from the start and covers every attempt and back-off; when
// it fires the in-flight attempt is aborted and the result is a timeout with flag UT
// (504), never a retry. A per-try timeout aborts the attempt and yields a 'timeout'
// outcome that the policy may retry. Aborting is through the AbortSignal handed to
// each attempt; an attempt that settles after it was abandoned is handed to `discard`.
//
// Differences from Envoy, on purpose: the per-try timer starts when the attempt
// starts (Envoy starts it once the request is sent and a connection is ready), and
// hedging (hedge_on_per_try_timeout) is not done.
import { systemClock, type Clock, type TimerHandle } from '@meshlet/xds-client';
import type { Random } from './random.js';
import type { MeshRequest } from './request.js';
import type { AttemptOutcome, HostTagged, TimeoutOutcome } from './retry-outcome.js';
import { compileRetryPolicy, type CompiledRetryPolicy } from './retry-policy.js';
import type { RetryHostSelector } from './retry-host-predicate.js';
import { RetryState, type RetryAdmission, type RetryFlag } from './retry-state.js';
import type { UpstreamTimeouts } from './timeout-policy.js';

export type { RetryAdmission, RetryFlag } from './retry-state.js';

export interface RetryLoopOptions<O extends AttemptOutcome> {
  /** The compiled policy (compileRetryPolicy(decision.retryPolicy)); undefined = no policy. */
  readonly policy?: CompiledRetryPolicy | undefined;
  /** The request, for x-envoy-* retry headers and retriable_request_headers. */
  readonly request: MeshRequest;
  readonly honorEnvoyHeaders?: boolean;
  /** From resolveTimeouts(); only `overall` and `perTry` are enforced here. */
  readonly timeouts: Pick<UpstreamTimeouts, 'overall' | 'perTry'>;
  readonly clock: Clock;
  readonly random: Random;
  /**
   * Make attempt `n` (1 for the first). `signal` aborts on per-try or overall timeout
   * or when the caller's signal aborts. `exclude` is the set of hosts to avoid
   * (previous_hosts); `hosts.select(pick)` applies Envoy's whole host-selection rule
   * and records the host. A transport that picks otherwise records it with
   * `hosts.attempted(key)` or names it in the outcome (`host`).
   */
  attempt(n: number, signal: AbortSignal, exclude: ReadonlySet<string>, hosts: RetryHostSelector): Promise<O>;
  /** An outcome that will not be returned (retried, or settled after its attempt was abandoned): release it. */
  discard?(outcome: O): void;
  readonly admission?: RetryAdmission;
  /** The caller gave up: abort the attempt and reject with the signal's reason. */
  readonly signal?: AbortSignal;
}

export interface RetryResult<O extends AttemptOutcome> {
  /** The last attempt's outcome, or a timeout when the overall timeout ended the request. */
  readonly outcome: O | TimeoutOutcome;
  /** Attempts started (1 + retries). */
  readonly attempts: number;
  readonly flags: readonly RetryFlag[];
}

const TIMEOUT: TimeoutOutcome = { kind: 'timeout' };

type Wake<O> =
  | { readonly kind: 'settled'; readonly outcome: O }
  | { readonly kind: 'failed'; readonly error: unknown }
  | { readonly kind: 'per_try' }
  | { readonly kind: 'overall' }
  | { readonly kind: 'backoff_done' }
  | { readonly kind: 'cancelled' };

/**
 * A Clock for the request path: systemClock's readings (monotonic now(), so a wall-clock step
 * moves no deadline; Date.now for wallNow()) and timers that keep the process alive. The
 * xDS client's systemClock unrefs its timers, which suits background work but would let
 * a process whose only pending work is a request in back-off exit under it.
 */
export const requestClock: Clock = {
  now: systemClock.now,
  wallNow: systemClock.wallNow,
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Run the attempts of one request under its retry policy and timeouts. */
export async function runWithRetries<O extends AttemptOutcome & HostTagged>(opts: RetryLoopOptions<O>): Promise<RetryResult<O>> {
  const { clock, request } = opts;
  const policy = opts.policy ?? compileRetryPolicy(undefined);
  const retry = RetryState.forRequest(policy, request, opts.honorEnvoyHeaders !== false, {
    clock,
    random: opts.random,
    admission: opts.admission,
  });
  const hosts = retry.hosts;

  // One pending wait at a time (an attempt, or a back-off). Each wait is a slot; an
  // attempt or timer delivers only to its own slot, so a late settlement never wakes a
  // later wait. The overall timer and cancellation wake whatever is pending.
  interface Slot {
    resolve(w: Wake<O>): void;
  }
  let current: Slot | undefined;
  const deliver = (w: Wake<O>, target?: Slot): boolean => {
    const c = current;
    if (c === undefined || (target !== undefined && c !== target)) return false;
    current = undefined;
    c.resolve(w);
    return true;
  };
  const wait = (): [Slot, Promise<Wake<O>>] => {
    let slot!: Slot;
    const p = new Promise<Wake<O>>((resolve) => {
      slot = { resolve };
    });
    current = slot;
    return [slot, p];
  };
  let overallExpired = false;
  let overallTimer: TimerHandle | undefined;
  if (opts.timeouts.overall !== undefined) {
    overallTimer = clock.setTimeout(() => {
      overallExpired = true;
      overallTimer = undefined;
      deliver({ kind: 'overall' });
    }, opts.timeouts.overall);
  }
  const onCancel = (): void => void deliver({ kind: 'cancelled' });
  opts.signal?.addEventListener('abort', onCancel);

  let attempts = 0;
  // A timeout that ends the request carries UT whether it was the overall or a
  // per-try timeout (router.cc onUpstreamTimeoutAbort), beside URX or UO.
  const done = (outcome: O | TimeoutOutcome, flags: RetryFlag[]): RetryResult<O> => ({
    outcome,
    attempts,
    flags: outcome.kind === 'timeout' && !flags.includes('UT') ? ['UT', ...flags] : flags,
  });

  try {
    for (;;) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (overallExpired) return done(TIMEOUT, ['UT']);
      attempts++;
      const controller = new AbortController();
      const [slot, waiting] = wait();
      opts.attempt(attempts, controller.signal, hosts.exclude, hosts).then(
        (outcome) => {
          if (!deliver({ kind: 'settled', outcome }, slot)) opts.discard?.(outcome);
        },
        (error: unknown) => void deliver({ kind: 'failed', error }, slot),
      );
      let perTryTimer: TimerHandle | undefined;
      if (opts.timeouts.perTry !== undefined) {
        perTryTimer = clock.setTimeout(() => {
          perTryTimer = undefined;
          deliver({ kind: 'per_try' }, slot);
        }, opts.timeouts.perTry);
      }
      const w = await waiting;
      if (perTryTimer !== undefined) clock.clearTimeout(perTryTimer);
      if (w.kind !== 'settled' && w.kind !== 'failed') {
        controller.abort(w.kind === 'cancelled' ? opts.signal?.reason : new Error(w.kind === 'overall' ? 'overall timeout' : 'per-try timeout'));
      }
      switch (w.kind) {
        case 'failed':
          throw w.error;
        case 'cancelled':
          throw opts.signal?.reason;
        case 'overall':
          return done(TIMEOUT, ['UT']);
        case 'backoff_done':
          continue; // not reachable: no back-off pending here
      }
      const outcome: O | TimeoutOutcome = w.kind === 'per_try' ? TIMEOUT : w.outcome;
      const decision = retry.decide(outcome);
      if (!decision.retry) return done(outcome, [...decision.flags]);
      const delay = decision.delayMs;
      if (w.kind === 'settled') opts.discard?.(w.outcome);

      const [sleepSlot, sleeping] = wait();
      const backoffTimer = clock.setTimeout(() => deliver({ kind: 'backoff_done' }, sleepSlot), delay);
      const s = await sleeping;
      if (s.kind !== 'backoff_done') clock.clearTimeout(backoffTimer);
      if (s.kind === 'overall') return done(TIMEOUT, ['UT']);
      if (s.kind === 'cancelled') throw opts.signal?.reason;
    }
  } finally {
    current = undefined;
    if (overallTimer !== undefined) clock.clearTimeout(overallTimer);
    opts.signal?.removeEventListener('abort', onCancel);
    retry.finish();
  }
}

/**
 * A RetryAdmission over a circuit breaker's retry resource: `tryAcquire` is, say,
 * `() => breaker.tryAcquire('retry', priority)` (circuit-breaker.ts), giving a release
 * function or an overflow. The resource is held from the retry's back-off until its
 * attempt has an outcome, as Envoy holds it.
 */
export function retryAdmissionFrom(tryAcquire: () => (() => void) | { readonly overflow: true }): RetryAdmission {
  let release: (() => void) | undefined;
  return {
    canRetry(): boolean {
      const r = tryAcquire();
      if (typeof r !== 'function') return false;
      release = r;
      return true;
    },
    retryFinished(): void {
      const r = release;
      release = undefined;
      r?.();
    },
  };
}
