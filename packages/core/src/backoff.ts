// Retry back-off, as Envoy computes it (source/common/common/backoff_strategy.cc).
//
// JitteredExponentialBackOffStrategy: the n-th back-off (n = 1, 2, ...) is drawn
// uniformly from the integers [0, min(base × 2^(n−1), max)), in milliseconds. The
// interval doubles while it is below max/2 and then sticks at max. (The router doc's
// older wording, "[0, (2^N − 1) × base)", describes the strategy Envoy used before;
// the code is what runs.) Defaults: base 25 ms, max 10 × base; both are whole
// milliseconds, at least 1 (route_components.proto RetryBackOff: "values less than
// 1 ms are rounded up to 1 ms").
//
// JitteredLowerBoundBackOffStrategy, for rate-limited retries: uniform in
// [interval, 1.5 × interval).
//
// gRPC's retry back-off (gRFC A6, used by A44 with multiplier 2) draws from the same
// range, so the gRPC layer can use this strategy too.
import type { Millis, RetryPolicy } from '@meshlet/xds-client';
import type { Random } from './random.js';

/** Envoy's default base interval (runtime upstream.base_retry_backoff_ms). */
export const DEFAULT_BASE_INTERVAL_MS = 25;
/** The default max interval is this many base intervals. */
export const DEFAULT_MAX_INTERVAL_FACTOR = 10;

function wholeMs(ms: Millis): number {
  return Math.max(1, Math.floor(ms));
}

/** A draw in [0, bound) (Envoy: random() % bound). */
function below(random: Random, bound: number): number {
  return Math.floor(random.next() * bound);
}

/** One request's exponential back-off: stateful, one instance per request. */
export class JitteredExponentialBackoff {
  private readonly base: number;
  private readonly max: number;
  private readonly doublingLimit: number;
  private nextInterval: number;

  constructor(
    baseInterval: Millis,
    maxInterval: Millis,
    private readonly random: Random,
  ) {
    this.base = wholeMs(baseInterval);
    this.max = Math.max(this.base, wholeMs(maxInterval));
    this.doublingLimit = Math.floor(this.max / 2);
    this.nextInterval = this.base;
  }

  /** The upper bound (exclusive) of the next draw. */
  get currentBound(): number {
    return this.nextInterval;
  }

  /** The next back-off in milliseconds. */
  next(): number {
    const bound = this.nextInterval;
    this.nextInterval = bound < this.doublingLimit ? bound * 2 : this.max;
    return below(this.random, bound);
  }

  reset(): void {
    this.nextInterval = this.base;
  }
}

/** The exponential back-off a retry policy asks for (Envoy's defaults when it sets none). */
export function exponentialBackoffFor(policy: RetryPolicy | undefined, random: Random): JitteredExponentialBackoff {
  const b = policy?.retryBackOff;
  const base = b ? wholeMs(b.baseInterval) : DEFAULT_BASE_INTERVAL_MS;
  const max = b ? b.maxInterval : base * DEFAULT_MAX_INTERVAL_FACTOR;
  return new JitteredExponentialBackoff(base, max, random);
}

/**
 * A back-off of at least `interval` ms: uniform in [interval, 1.5 × interval)
 * (Envoy's JitteredLowerBoundBackOffStrategy; interval must be > 1).
 */
export function jitteredLowerBound(interval: number, random: Random): number {
  const min = Math.floor(interval);
  return min + below(random, Math.floor(min / 2));
}
