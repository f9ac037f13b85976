// Which attempt outcomes a route's retry policy retries, with Envoy's semantics
// (source/common/router/retry_state_impl.cc, router filter doc "x-envoy-retry-on"):
//
// - A response carrying x-envoy-ratelimited is retried only under `envoy-ratelimited`,
//   whatever else the policy says (a 503 with that header is not a `5xx` retry).
// - `5xx`: any 5xx response; and any reset, connect failure, refused stream or per-try
//   timeout (Envoy counts a reset as a 5xx). So it implies `connect-failure`,
//   `refused-stream` and `reset`.
// - `gateway-error`: 502, 503, 504 responses; and, like `5xx`, every reset, connect
//   failure, refused stream and per-try timeout.
// - `reset`: every reset, connect failure, refused stream and per-try timeout.
// - `reset-before-request`: the same, but only while no attempt of this request has put
//   a byte on the wire (sticky across attempts, as the router's upstream_request_started_).
// - `connect-failure`: connect failures only. `refused-stream`: REFUSED_STREAM only.
// - `retriable-4xx`: 409. `retriable-status-codes`: the policy's codes (and the
//   x-envoy-retriable-status-codes header's). `retriable-headers`: a response matching
//   any retriable_headers matcher (and x-envoy-retriable-header-names).
// - gRPC names (`cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`,
//   `unavailable`) match a grpc-status in the response headers (a trailers-only reply).
// - An overflow (local circuit breaker) is never retried. `http3-post-connect-failure`
//   is parsed and ignored (no HTTP/3 here).
// - A per-try timeout is a local reset to Envoy (router.cc onPerTryTimeout), so it is
//   retried exactly when a reset after the request started would be.
//
// Request headers (router filter doc; honoured by Envoy for internal requests, which an
// application calling through its own in-process mesh is): x-envoy-retry-on and
// x-envoy-retry-grpc-on add conditions, even with no policy configured (then with the
// default num_retries 1); x-envoy-max-retries replaces num_retries when any condition is
// set; x-envoy-retriable-status-codes and x-envoy-retriable-header-names extend the lists.
// retriable_request_headers, when set, must match the request or nothing is retried.
//
// Compiled once per RetryPolicy object (cached in a WeakMap, since route tables keep
// their policies for the life of a snapshot); the per-request view allocates only when
// a request carries one of the headers above.
import type { HeaderMatcher, RetryPolicy } from '@meshlet/xds-client';
import type { MeshRequest, RequestHeaders } from './request.js';
import type { AttemptOutcome, ResponseHeaderView } from './retry-outcome.js';
import { compileHeaderMatcher, parseInt64, type RequestPredicate } from './route-header-match.js';

/** retry_on conditions as bits (one per name Envoy knows). */
export const RetryOn = {
  FIVE_XX: 1 << 0,
  GATEWAY_ERROR: 1 << 1,
  CONNECT_FAILURE: 1 << 2,
  RETRIABLE_4XX: 1 << 3,
  REFUSED_STREAM: 1 << 4,
  RETRIABLE_STATUS_CODES: 1 << 5,
  RETRIABLE_HEADERS: 1 << 6,
  RESET: 1 << 7,
  RESET_BEFORE_REQUEST: 1 << 8,
  ENVOY_RATE_LIMITED: 1 << 9,
  HTTP3_POST_CONNECT_FAILURE: 1 << 10,
  GRPC_CANCELLED: 1 << 11,
  GRPC_DEADLINE_EXCEEDED: 1 << 12,
  GRPC_INTERNAL: 1 << 13,
  GRPC_RESOURCE_EXHAUSTED: 1 << 14,
  GRPC_UNAVAILABLE: 1 << 15,
} as const;

const HTTP_NAMES: Readonly<Record<string, number>> = {
  '5xx': RetryOn.FIVE_XX,
  'gateway-error': RetryOn.GATEWAY_ERROR,
  'connect-failure': RetryOn.CONNECT_FAILURE,
  'envoy-ratelimited': RetryOn.ENVOY_RATE_LIMITED,
  'retriable-4xx': RetryOn.RETRIABLE_4XX,
  'refused-stream': RetryOn.REFUSED_STREAM,
  'retriable-status-codes': RetryOn.RETRIABLE_STATUS_CODES,
  'retriable-headers': RetryOn.RETRIABLE_HEADERS,
  reset: RetryOn.RESET,
  'reset-before-request': RetryOn.RESET_BEFORE_REQUEST,
  'http3-post-connect-failure': RetryOn.HTTP3_POST_CONNECT_FAILURE,
};

const GRPC_NAMES: Readonly<Record<string, number>> = {
  cancelled: RetryOn.GRPC_CANCELLED,
  'deadline-exceeded': RetryOn.GRPC_DEADLINE_EXCEEDED,
  internal: RetryOn.GRPC_INTERNAL,
  'resource-exhausted': RetryOn.GRPC_RESOURCE_EXHAUSTED,
  unavailable: RetryOn.GRPC_UNAVAILABLE,
};

const GRPC_BITS =
  RetryOn.GRPC_CANCELLED |
  RetryOn.GRPC_DEADLINE_EXCEEDED |
  RetryOn.GRPC_INTERNAL |
  RetryOn.GRPC_RESOURCE_EXHAUSTED |
  RetryOn.GRPC_UNAVAILABLE;

// Conditions under which any reset (and a per-try timeout) is retried.
const ANY_RESET = RetryOn.RESET | RetryOn.FIVE_XX | RetryOn.GATEWAY_ERROR;

/**
 * The bits of a comma-separated retry_on list. `names` picks which vocabulary is read:
 * the route's retry_on takes both (Envoy parses it with both parsers), the
 * x-envoy-retry-on header only HTTP names, x-envoy-retry-grpc-on only gRPC names.
 * Unknown names are ignored (Envoy ignores them too).
 */
export function parseRetryOn(value: string | readonly string[], names: 'http' | 'grpc' | 'both' = 'both'): number {
  const tokens = typeof value === 'string' ? value.split(',') : value;
  let bits = 0;
  for (const raw of tokens) {
    const t = raw.trim();
    if (t === '') continue;
    if (names !== 'grpc') bits |= HTTP_NAMES[t] ?? 0;
    if (names !== 'http') bits |= GRPC_NAMES[t] ?? 0;
  }
  return bits;
}

/** Envoy's default num_retries when a retry policy (or x-envoy-retry-on) is in force. */
export const DEFAULT_NUM_RETRIES = 1;

/** A response as a MeshRequest, so the route header matchers test it (`:status` included). */
function responseAsRequest(status: number, headers: ResponseHeaderView): MeshRequest {
  const view: RequestHeaders = { get: (name) => (name === ':status' ? String(status) : headers.get(name)) };
  return { method: '', path: '', authority: '', scheme: '', headers: view };
}

function grpcStatusOf(headers: ResponseHeaderView): number | undefined {
  const v = headers.get('grpc-status');
  if (v === undefined) return undefined;
  const n = parseInt64(v);
  return typeof n === 'number' && n >= 0 ? n : undefined;
}

/** The retry conditions in force for one request (or, unchanged, for a whole policy). */
export class RetryConditions {
  constructor(
    /** RetryOn bits. */
    readonly retryOn: number,
    /** Retries allowed after the first attempt. */
    readonly numRetries: number,
    readonly retriableStatusCodes: readonly number[],
    private readonly retriableHeaders: readonly RequestPredicate[],
  ) {}

  /**
   * Whether Envoy would retry this outcome (before the retry count and circuit
   * breakers are consulted). `requestStarted`: whether any attempt of this request
   * has put bytes on the wire (for `reset-before-request`).
   */
  shouldRetry(outcome: AttemptOutcome, requestStarted = true): boolean {
    const on = this.retryOn;
    switch (outcome.kind) {
      case 'response':
        return this.shouldRetryResponse(outcome.status, outcome.headers);
      case 'overflow':
        return false;
      case 'connect_failure':
        if (on & RetryOn.CONNECT_FAILURE) return true;
        break;
      case 'refused_stream':
        if (on & RetryOn.REFUSED_STREAM) return true;
        break;
      case 'reset':
      case 'timeout':
        break;
    }
    // Every other reset (retry_state_impl.cc wouldRetryFromReset).
    if (on & RetryOn.RESET_BEFORE_REQUEST && !requestStarted) return true;
    return (on & ANY_RESET) !== 0;
  }

  /** shouldRetry for a response, without an outcome object (the request path asks this of every response). */
  shouldRetryResponse(status: number, headers: ResponseHeaderView): boolean {
    const on = this.retryOn;
    if (headers.get('x-envoy-ratelimited') !== undefined) return (on & RetryOn.ENVOY_RATE_LIMITED) !== 0;
    if (on & RetryOn.FIVE_XX && status >= 500 && status <= 599) return true;
    if (on & RetryOn.GATEWAY_ERROR && status >= 502 && status <= 504) return true;
    if (on & RetryOn.RETRIABLE_4XX && status === 409) return true;
    if (on & RetryOn.RETRIABLE_STATUS_CODES && this.retriableStatusCodes.includes(status)) return true;
    if (on & RetryOn.RETRIABLE_HEADERS && this.retriableHeaders.length > 0) {
      const asReq = responseAsRequest(status, headers);
      for (const m of this.retriableHeaders) if (m(asReq)) return true;
    }
    if (on & GRPC_BITS) {
      const g = grpcStatusOf(headers);
      switch (g) {
        case 1:
          return (on & RetryOn.GRPC_CANCELLED) !== 0;
        case 4:
          return (on & RetryOn.GRPC_DEADLINE_EXCEEDED) !== 0;
        case 8:
          return (on & RetryOn.GRPC_RESOURCE_EXHAUSTED) !== 0;
        case 13:
          return (on & RetryOn.GRPC_INTERNAL) !== 0;
        case 14:
          return (on & RetryOn.GRPC_UNAVAILABLE) !== 0;
      }
    }
    return false;
  }
}

export interface RetryRequestOptions {
  /**
   * Read the x-envoy-* retry request headers. Default true: Envoy honours them on
   * internal requests (it strips them from external ones, HCM header sanitizing),
   * and the caller of an in-process mesh is the application itself. A server-side
   * use that receives untrusted requests sets false.
   */
  readonly honorEnvoyHeaders?: boolean;
}

/** The request headers Envoy's router consumes for retries (the transport strips them upstream). */
export const RETRY_REQUEST_HEADERS = [
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
] as const;

// absl::SimpleAtoi<uint64_t>: surrounding whitespace, an optional '+', digits.
const UINT_RE = /^[ \t\n\v\f\r]*\+?(\d+)[ \t\n\v\f\r]*$/;

/** A non-negative decimal integer as Envoy's SimpleAtoi reads one, or undefined. */
export function parseUint(value: string): number | undefined {
  const m = UINT_RE.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

function nameOnlyMatcher(name: string): RequestPredicate {
  const m: HeaderMatcher = {
    name: name.toLowerCase(),
    match: { kind: 'present', present: true },
    invertMatch: false,
    treatMissingHeaderAsEmpty: false,
  };
  return compileHeaderMatcher(m);
}

/** A route's retry policy, compiled once. */
export class CompiledRetryPolicy extends RetryConditions {
  readonly requestMatchers: readonly RequestPredicate[];
  private readonly headerMatchers: readonly RequestPredicate[];

  constructor(readonly policy: RetryPolicy | undefined) {
    const headerMatchers = policy ? policy.retriableHeaders.map(compileHeaderMatcher) : [];
    super(
      policy ? parseRetryOn(policy.retryOn, 'both') : 0,
      policy ? policy.numRetries : DEFAULT_NUM_RETRIES,
      policy ? policy.retriableStatusCodes : [],
      headerMatchers,
    );
    this.headerMatchers = headerMatchers;
    this.requestMatchers = policy ? policy.retriableRequestHeaders.map(compileHeaderMatcher) : [];
  }

  /**
   * The conditions in force for `request`, or undefined when nothing can be retried
   * (Envoy then creates no retry state: no retries and no URX flag).
   */
  forRequest(request: MeshRequest, options?: RetryRequestOptions): RetryConditions | undefined {
    const h = request.headers;
    const honor = options?.honorEnvoyHeaders !== false;
    const retryOnHeader = honor ? h.get('x-envoy-retry-on') : undefined;
    const grpcOnHeader = honor ? h.get('x-envoy-retry-grpc-on') : undefined;
    let on = this.retryOn;
    if (retryOnHeader !== undefined) on |= parseRetryOn(retryOnHeader, 'http');
    if (grpcOnHeader !== undefined) on |= parseRetryOn(grpcOnHeader, 'grpc');
    if (on === 0) return undefined;
    if (this.requestMatchers.length > 0 && !this.requestMatchers.some((m) => m(request))) return undefined;
    if (!honor) return this;
    let numRetries = this.numRetries;
    const maxRetries = h.get('x-envoy-max-retries');
    if (maxRetries !== undefined) numRetries = parseUint(maxRetries) ?? numRetries;
    let codes = this.retriableStatusCodes;
    const codesHeader = h.get('x-envoy-retriable-status-codes');
    if (codesHeader !== undefined) {
      const extra: number[] = [];
      for (const t of codesHeader.split(',')) {
        const n = parseUint(t);
        if (n !== undefined) extra.push(n);
      }
      if (extra.length > 0) codes = [...codes, ...extra];
    }
    let headers = this.headerMatchers;
    const namesHeader = h.get('x-envoy-retriable-header-names');
    if (namesHeader !== undefined) {
      const extra = namesHeader
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map(nameOnlyMatcher);
      if (extra.length > 0) headers = [...headers, ...extra];
    }
    if (on === this.retryOn && numRetries === this.numRetries && codes === this.retriableStatusCodes && headers === this.headerMatchers) {
      return this;
    }
    return new RetryConditions(on, numRetries, codes, headers);
  }
}

const cache = new WeakMap<RetryPolicy, CompiledRetryPolicy>();
const NO_POLICY = new CompiledRetryPolicy(undefined);

/**
 * The compiled form of a retry policy (the route's, else the virtual host's: what
 * ForwardDecision.retryPolicy holds), built once per policy object. With no policy,
 * only the x-envoy-retry-on headers can enable retries.
 */
export function compileRetryPolicy(policy: RetryPolicy | undefined): CompiledRetryPolicy {
  if (policy === undefined) return NO_POLICY;
  let c = cache.get(policy);
  if (c === undefined) {
    c = new CompiledRetryPolicy(policy);
    cache.set(policy, c);
  }
  return c;
}
