// Rate-limited retry back-off (route_components.proto RetryPolicy.RateLimitedRetryBackOff;
// Envoy's reset_header_parser.cc and RetryStateImpl::shouldRetryHeaders):
//
// - only a response the policy decided to retry consults it (never a reset);
// - reset_headers are tried in order; the first value of a header is read, as an
//   unsigned decimal: SECONDS is a delay, UNIX_TIMESTAMP a point in time (seconds since
//   the epoch) from which the current time, in whole seconds, is subtracted (a time in
//   the past does not parse);
// - a header whose interval exceeds max_interval is discarded and the next one tried;
// - an interval of at most 1 ms (e.g. "Retry-After: 0") falls back to the exponential
//   back-off, as does no header parsing at all;
// - the wait is jittered upward: uniform in [interval, 1.5 × interval).
// Configuring it does not by itself make anything retriable (retry_on still decides).
import type { RetryPolicy } from '@meshlet/xds-client';
import type { ResponseHeaderView } from './retry-outcome.js';
import { parseUint } from './retry-policy.js';

export type RateLimitedBackOff = NonNullable<RetryPolicy['rateLimitedRetryBackOff']>;

/**
 * The interval (ms, before jitter) the response asks for, or undefined when no reset
 * header parses within max_interval. `nowMs` is wall-clock time (Unix epoch ms).
 */
export function parseResetInterval(config: RateLimitedBackOff, headers: ResponseHeaderView, nowMs: number): number | undefined {
  for (const h of config.resetHeaders) {
    const raw = headers.get(h.name);
    if (raw === undefined) continue;
    // Several values arrive joined with ","; Envoy reads only the first.
    const comma = raw.indexOf(',');
    const n = parseUint(comma < 0 ? raw : raw.slice(0, comma));
    if (n === undefined) continue;
    let interval: number;
    if (h.format === 'SECONDS') {
      interval = n * 1000;
    } else {
      const nowSeconds = Math.floor(nowMs / 1000);
      if (n < nowSeconds) continue;
      interval = (n - nowSeconds) * 1000;
    }
    if (interval <= config.maxInterval) return interval;
  }
  return undefined;
}
