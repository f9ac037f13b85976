// The retry decisions of one routed request, as a plain state object (Envoy's
// RetryStateImpl): after each attempt's outcome, `decide` says whether to retry and after
// what back-off, or which flags end the request. It holds no timers and no promises, so a
// transport can drive it from its own callbacks (the HTTP request path does), and
// runWithRetries drives it for callers that want a promise.
//
//   outcome ─▶ retriable? ── no ──▶ done
//                   │ yes
//       retries left? ── no ──▶ done, flag URX
//                   │ yes (one retry used)
//  breaker admits a retry? ── no ──▶ done, flag UO
//                   │ yes
//  back-off: the rate-limited reset header's interval, else exponential with full jitter
import { tracer, wallTimeOf, type Clock } from '@meshlet/xds-client';
import type { Random } from './random.js';
import type { MeshRequest } from './request.js';
import { exponentialBackoffFor, jitteredLowerBound, type JitteredExponentialBackoff } from './backoff.js';
import { requestWasSent, type AttemptOutcome, type HostTagged } from './retry-outcome.js';
import type { CompiledRetryPolicy, RetryConditions } from './retry-policy.js';
import { parseResetInterval } from './retry-rate-limit.js';
import { retryHostSelector, type RetryHostSelector } from './retry-host-predicate.js';

const trace = tracer('retry');

export type RetryFlag = 'URX' | 'UT' | 'UO';

/**
 * Circuit-breaker admission of retries (cluster circuit_breakers max_retries and
 * retry_budget), implemented by the breaker module. Envoy counts a retry as active
 * from the moment it is scheduled until the retried attempt has an outcome.
 */
export interface RetryAdmission {
  /** Whether one more retry may start now; false ends the request with flag UO. */
  canRetry(): boolean;
  /** A retry was admitted (back-off starts). */
  retryStarted?(): void;
  /** That retry's attempt finished, or the request ended while it was pending. */
  retryFinished?(): void;
}

export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number }
  | { readonly retry: false; readonly flags: readonly RetryFlag[] };

const DONE: RetryDecision = { retry: false, flags: [] };
const URX: RetryDecision = { retry: false, flags: ['URX'] };
const UO: RetryDecision = { retry: false, flags: ['UO'] };

export interface RetryStateOptions {
  readonly clock: Clock;
  readonly random: Random;
  readonly admission?: RetryAdmission | undefined;
}

export class RetryState {
  /** previous_hosts: the hosts the next pick must avoid. */
  readonly hosts: RetryHostSelector;
  readonly #policy: CompiledRetryPolicy;
  readonly #conditions: RetryConditions | undefined;
  readonly #options: RetryStateOptions;
  #retriesRemaining: number;
  #requestStarted = false;
  #retryActive = false;
  #backoff: JitteredExponentialBackoff | undefined;

  /**
   * `conditions` is `policy.forRequest(request, ...)`: the policy as this request's
   * x-envoy-* headers amend it; undefined = never retry.
   */
  constructor(policy: CompiledRetryPolicy, conditions: RetryConditions | undefined, options: RetryStateOptions) {
    this.#policy = policy;
    this.#conditions = conditions;
    this.#options = options;
    this.#retriesRemaining = conditions?.numRetries ?? 0;
    this.hosts = retryHostSelector(policy.policy);
  }

  /** The state for `request` under `policy` (its x-envoy-* headers read when `honorEnvoyHeaders`). */
  static forRequest(policy: CompiledRetryPolicy, request: MeshRequest, honorEnvoyHeaders: boolean, options: RetryStateOptions): RetryState {
    return new RetryState(policy, policy.forRequest(request, { honorEnvoyHeaders }), options);
  }

  /** Whether any retry could ever happen (a policy with retries and conditions). */
  get mayRetry(): boolean {
    return this.#conditions !== undefined && this.#conditions.numRetries > 0;
  }

  /**
   * An attempt ended with `outcome` before a response was handed to the caller: retry it
   * (after `delayMs`) or end the request with `flags`. A retry's circuit-breaker slot is
   * taken here and given back at the next decision or at finish().
   */
  decide(outcome: AttemptOutcome & HostTagged): RetryDecision {
    this.#finishRetry();
    if (outcome.host !== undefined) this.hosts.attempted(outcome.host);
    if (requestWasSent(outcome)) this.#requestStarted = true;
    const conditions = this.#conditions;
    if (conditions === undefined || !conditions.shouldRetry(outcome, this.#requestStarted)) return DONE;
    if (this.#retriesRemaining === 0) {
      trace(() => `${describe(outcome)}; retries exhausted (URX)`);
      return URX;
    }
    this.#retriesRemaining--;
    const admission = this.#options.admission;
    if (admission !== undefined && !admission.canRetry()) {
      trace(() => `${describe(outcome)}; retry refused by the circuit breaker (UO)`);
      return UO;
    }
    this.#retryActive = true;
    admission?.retryStarted?.();
    let delayMs: number | undefined;
    const rateLimited = this.#policy.policy?.rateLimitedRetryBackOff;
    if (outcome.kind === 'response' && rateLimited !== undefined) {
      // Reset headers name a date (UNIX_TIMESTAMP), so this is the one wall-clock reading of
      // the request path.
      const interval = parseResetInterval(rateLimited, outcome.headers, wallTimeOf(this.#options.clock));
      if (interval !== undefined && interval > 1) delayMs = jitteredLowerBound(interval, this.#options.random);
    }
    if (delayMs === undefined) {
      this.#backoff ??= exponentialBackoffFor(this.#policy.policy, this.#options.random);
      delayMs = this.#backoff.next();
    }
    trace(() => `${describe(outcome)}; retrying in ${delayMs} ms`);
    return { retry: true, delayMs };
  }

  /** The request is over: give back a retry slot still held. */
  finish(): void {
    this.#finishRetry();
  }

  #finishRetry(): void {
    if (this.#retryActive) {
      this.#retryActive = false;
      this.#options.admission?.retryFinished?.();
    }
  }
}

function describe(o: AttemptOutcome & HostTagged): string {
  const what = o.kind === 'response' ? `status ${o.status}` : o.kind;
  return o.host === undefined ? what : `${what} from ${o.host}`;
}
