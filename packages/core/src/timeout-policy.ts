// The timeouts of one routed request.
//
// HTTP follows Envoy (router.cc FilterUtility::finalTimeout, conn_manager_impl.cc
// refreshDurationTimeout, route_components.proto):
// - overall: the route `timeout`, default 15 s, 0 disables. It covers every attempt and
//   back-off; on expiry the request ends with 504 and flag UT and is never retried.
//   A route that sets `max_stream_duration` uses Envoy's "new timeouts": its `timeout`
//   is then not applied at all (only max_stream_duration is).
// - perTry: the retry policy's per_try_timeout. Ignored when it is not below a non-zero
//   overall timeout. Expiry aborts the attempt, which may be retried (retry-policy.ts).
// - maxStreamDuration: the whole stream's lifetime, response body included (the HTTP
//   connection manager's timer; the transport enforces it). From the route's
//   max_stream_duration (0 disables), else the Listener's HttpConnectionManager
//   common_http_protocol_options.max_stream_duration. With grpc_timeout_header_max set
//   and a grpc-timeout request header, the header's value instead, capped by the max
//   (0 = no cap) and reduced by grpc_timeout_header_offset (to 0 when the offset is not
//   below it: the stream then times out at once). Envoy then also rewrites grpc-timeout
//   for a gRPC request (grpcTimeoutHeader).
// - Request headers, honoured by Envoy for internal requests (stripped from external
//   ones by header sanitizing); the application calling its own in-process mesh is
//   internal, so they are honoured by default: x-envoy-upstream-rq-timeout-ms replaces
//   the overall timeout (0 disables), x-envoy-upstream-rq-per-try-timeout-ms the per-try
//   timeout. x-envoy-expected-rq-timeout-ms is read only with the router's
//   respect_expected_rq_timeout, which meshlet does not configure, so it is not read.
//
// gRPC follows gRFC A31 (grpcCallTimeout): only max_stream_duration and
// grpc_timeout_header_max limit the application's deadline; `timeout` and the offset
// are not used.
import type { ForwardAction, Millis, RetryPolicy } from '@meshlet/xds-client';
import type { MeshRequest } from './request.js';
import { parseUint } from './retry-policy.js';

/** Envoy's route timeout when none is configured. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

/** The request headers Envoy's router consumes for timeouts (the transport strips them upstream). */
export const TIMEOUT_REQUEST_HEADERS = ['x-envoy-upstream-rq-timeout-ms', 'x-envoy-upstream-rq-per-try-timeout-ms'] as const;

export interface UpstreamTimeouts {
  /** Covers all attempts and back-offs (UT, 504); undefined = none. */
  readonly overall: Millis | undefined;
  /** Each attempt's limit; undefined = none. */
  readonly perTry: Millis | undefined;
  /** Each attempt's idle limit (no bytes either way); undefined = none. */
  readonly perTryIdle: Millis | undefined;
  /** The whole stream's lifetime, response body included; undefined = none, 0 = already expired. */
  readonly maxStreamDuration: Millis | undefined;
  /** The grpc-timeout value to send upstream instead of the caller's, when Envoy rewrites it. */
  readonly grpcTimeoutHeader: string | undefined;
}

export interface TimeoutOptions {
  /** Read x-envoy-upstream-rq-timeout-ms and x-envoy-upstream-rq-per-try-timeout-ms. Default true. */
  readonly honorEnvoyHeaders?: boolean;
  /** The Listener's HttpConnectionManager common_http_protocol_options.max_stream_duration. */
  readonly hcmMaxStreamDuration?: Millis | undefined;
}

/** What the timeouts are computed from: a ForwardDecision has these fields. */
export interface TimeoutSource {
  readonly action: Pick<ForwardAction, 'maxStreamDuration'>;
  readonly timeout: Millis | undefined;
  readonly retryPolicy: RetryPolicy | undefined;
}

const positive = (ms: Millis | undefined): Millis | undefined => (ms === undefined || ms === 0 ? undefined : ms);
// Envoy reads durations as whole milliseconds (PROTOBUF_GET_MS_OR_DEFAULT truncates), so
// a sub-millisecond timeout is 0: disabled.
const wholeMs = (ms: Millis | undefined): Millis | undefined => (ms === undefined ? undefined : Math.floor(ms));

/** The timeouts for one HTTP request, with Envoy's rules (see the module comment). */
export function resolveTimeouts(source: TimeoutSource, request: MeshRequest, options?: TimeoutOptions): UpstreamTimeouts {
  const msd = source.action.maxStreamDuration;
  const usingNewTimeouts = msd !== undefined;
  // 0 means "none" throughout, as in Envoy.
  let overall: Millis = usingNewTimeouts ? 0 : (wholeMs(source.timeout) ?? DEFAULT_ROUTE_TIMEOUT_MS);
  let perTry: Millis = wholeMs(source.retryPolicy?.perTryTimeout) ?? 0;
  if (options?.honorEnvoyHeaders !== false) {
    const h = request.headers;
    const rq = h.get('x-envoy-upstream-rq-timeout-ms');
    if (rq !== undefined) overall = parseUint(rq) ?? overall;
    const pt = h.get('x-envoy-upstream-rq-per-try-timeout-ms');
    if (pt !== undefined) perTry = parseUint(pt) ?? perTry;
  }
  if (overall !== 0 && perTry >= overall) perTry = 0;

  let maxStreamDuration: Millis | undefined;
  let grpcTimeoutHeader: string | undefined;
  const headerValue = request.headers.get('grpc-timeout');
  const grpcTimeout = headerValue === undefined ? undefined : parseGrpcTimeout(headerValue);
  if (grpcTimeout === undefined || msd?.grpcTimeoutHeaderMax === undefined) {
    maxStreamDuration =
      msd?.maxStreamDuration !== undefined ? positive(wholeMs(msd.maxStreamDuration)) : positive(wholeMs(options?.hcmMaxStreamDuration));
  } else {
    let t = grpcTimeout;
    const max = Math.floor(msd.grpcTimeoutHeaderMax);
    if (max !== 0 && t > max) t = max;
    const offset = wholeMs(msd.grpcTimeoutHeaderOffset);
    if (t !== 0 && offset !== undefined) t = offset < t ? t - offset : 0;
    maxStreamDuration = t;
  }
  if (usingNewTimeouts && request.grpc === true && maxStreamDuration !== undefined) {
    grpcTimeoutHeader = formatGrpcTimeout(maxStreamDuration);
  }

  return {
    overall: positive(overall),
    perTry: positive(perTry),
    perTryIdle: positive(wholeMs(source.retryPolicy?.perTryIdleTimeout)),
    maxStreamDuration,
    grpcTimeoutHeader,
  };
}

/**
 * The timeout of a gRPC call on this route (gRFC A31): the application's timeout
 * (ms; undefined = no deadline) limited by grpc_timeout_header_max when set, else by
 * max_stream_duration, else by the Listener's max_stream_duration; a limit of 0 or
 * none leaves the application's timeout as it is. undefined = no deadline.
 */
export function grpcCallTimeout(
  action: Pick<ForwardAction, 'maxStreamDuration'>,
  applicationTimeout: Millis | undefined,
  hcmMaxStreamDuration?: Millis,
): Millis | undefined {
  const msd = action.maxStreamDuration;
  const cap =
    msd?.grpcTimeoutHeaderMax !== undefined
      ? positive(msd.grpcTimeoutHeaderMax)
      : positive(msd?.maxStreamDuration ?? hcmMaxStreamDuration);
  if (cap === undefined) return applicationTimeout;
  return applicationTimeout === undefined ? cap : Math.min(applicationTimeout, cap);
}

const GRPC_TIMEOUT_RE = /^(\d{1,8})([HMSmun])$/;

/**
 * A grpc-timeout header value (PROTOCOL-HTTP2.md: at most 8 digits and a unit) in
 * milliseconds, rounded up as Envoy does; undefined when malformed.
 */
export function parseGrpcTimeout(value: string): Millis | undefined {
  const m = GRPC_TIMEOUT_RE.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return Math.ceil(n / 1000);
    default:
      return Math.ceil(n / 1_000_000);
  }
}

const MAX_GRPC_TIMEOUT_VALUE = 99_999_999;

/** Milliseconds as a grpc-timeout value, in the finest unit that fits 8 digits (Envoy's toGrpcTimeout). */
export function formatGrpcTimeout(ms: Millis): string {
  let time = Math.floor(ms);
  const units = 'mSMH';
  let u = 0;
  if (time > MAX_GRPC_TIMEOUT_VALUE) {
    time = Math.floor(time / 1000);
    u = 1;
  }
  while (time > MAX_GRPC_TIMEOUT_VALUE) {
    if (u === 3) {
      time = MAX_GRPC_TIMEOUT_VALUE;
      break;
    }
    time = Math.floor(time / 60);
    u++;
  }
  return `${time}${units[u]}`;
}
