// An xDS retry policy as gRPC's retry policy (gRFC A44, converting to gRFC A6's
// service-config RetryPolicy), for the gRPC layer to hand to grpc-js:
// - retryableStatusCodes from the gRPC names in retry_on (cancelled, deadline-exceeded,
//   internal, resource-exhausted, unavailable); every other condition is ignored, and
//   with none left there is no retry policy;
// - maxAttempts = num_retries + 1 (the channel caps it at 5); num_retries 0 means no
//   policy (gRPC C-core rejects it; Envoy reads it as "no retries");
// - initialBackoff = base_interval (default 25 ms), maxBackoff = max_interval (default
//   10 × base), backoffMultiplier 2.
// per_try_timeout, retriable headers, request headers, host predicates and retry
// circuit breakers are not part of gRPC's xDS retries (A44 "Deferred or Unsupported").
import type { RetryPolicy } from '@meshlet/xds-client';
import { DEFAULT_BASE_INTERVAL_MS, DEFAULT_MAX_INTERVAL_FACTOR } from './backoff.js';
import { parseRetryOn, RetryOn } from './retry-policy.js';

export interface GrpcRetryPolicy {
  readonly maxAttempts: number;
  /** Milliseconds. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly backoffMultiplier: 2;
  /** Numeric gRPC status codes, ascending. */
  readonly retryableStatusCodes: readonly number[];
}

const GRPC_CODES: readonly (readonly [number, number])[] = [
  [RetryOn.GRPC_CANCELLED, 1],
  [RetryOn.GRPC_DEADLINE_EXCEEDED, 4],
  [RetryOn.GRPC_RESOURCE_EXHAUSTED, 8],
  [RetryOn.GRPC_INTERNAL, 13],
  [RetryOn.GRPC_UNAVAILABLE, 14],
];

/** gRFC A44's conversion, or undefined when the route retries no gRPC status. */
export function grpcRetryPolicy(policy: RetryPolicy | undefined): GrpcRetryPolicy | undefined {
  if (policy === undefined || policy.numRetries === 0) return undefined;
  const bits = parseRetryOn(policy.retryOn, 'grpc');
  const codes = GRPC_CODES.filter(([bit]) => (bits & bit) !== 0).map(([, code]) => code);
  if (codes.length === 0) return undefined;
  const base = policy.retryBackOff?.baseInterval ?? DEFAULT_BASE_INTERVAL_MS;
  const max = policy.retryBackOff?.maxInterval ?? base * DEFAULT_MAX_INTERVAL_FACTOR;
  return {
    maxAttempts: policy.numRetries + 1,
    initialBackoffMs: base,
    maxBackoffMs: max,
    backoffMultiplier: 2,
    retryableStatusCodes: codes,
  };
}
