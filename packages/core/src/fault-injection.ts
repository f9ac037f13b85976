// Fault injection: the envoy.filters.http.fault filter (extensions/filters/http/fault/v3/fault.proto;
// Envoy's configuration/http/http_filters/fault_filter doc; gRFC A33 for gRPC).
//
// Three small pieces, so the transport applies what is decided here:
// - faultConfigForRoute(): the config in force for a route (a per-route override replaces the
//   filter's config whole, the most specific level winning, as Envoy's
//   resolveMostSpecificPerFilterConfig);
// - compileFault() once per config, decideFault() per request: a pure decision (delay, abort,
//   both or none) from the request and a Random;
// - ActiveFaults: the max_active_faults gauge, which outlives config snapshots.
// injectFault() puts the last two together the way Envoy's filter does.
//
// HTTP (Envoy):
// - the filter applies only when `upstream_cluster` (if set) is the route's cluster, the
//   x-envoy-downstream-service-node header is one of `downstream_nodes` (if any), and every
//   `headers` matcher matches;
// - delay and abort are drawn independently, each with its own random value (A33 "Evaluate
//   Possibility Fraction" asks the same); a delayed request may then be aborted;
// - header-controlled faults: x-envoy-fault-delay-request (ms; 0 or invalid = no delay),
//   x-envoy-fault-abort-request (HTTP status in [200, 600)), x-envoy-fault-abort-grpc-request
//   (gRPC status, used when no HTTP status is given; the reply is then HTTP 200), and the
//   percentages x-envoy-fault-{delay,abort}-request-percentage: a numerator over the
//   configured denominator, capped by the configured numerator. They are read only when the
//   config asks for header_delay / header_abort, and only the first value of a header counts;
// - max_active_faults: a request that would get a fault when the gauge is at the maximum gets
//   none (Envoy's faults_overflow). One slot per request however many faults; the slot is
//   released when a delay ends without an abort, or when the request ends.
// gRPC (A33): the same, except that `headers`, `downstream_nodes` and `upstream_cluster` are not
// supported (A33 "Deferred"), and an abort always carries a gRPC status: `grpc_status`, or
// `http_status` mapped by grpc's http-grpc-status-mapping (so 200 becomes UNKNOWN).
import type { FaultFilterConfig, FilterConfigOverride, FractionalPercent, TypedPerFilterConfig } from '@meshlet/xds-client';
import type { MeshRequest } from './request.js';
import type { Random } from './random.js';
import { compileHeaderMatcher, type RequestPredicate } from './route-header-match.js';

export const FAULT_FILTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

export const HEADER_DELAY = 'x-envoy-fault-delay-request';
export const HEADER_DELAY_PERCENTAGE = 'x-envoy-fault-delay-request-percentage';
export const HEADER_ABORT = 'x-envoy-fault-abort-request';
export const HEADER_ABORT_GRPC = 'x-envoy-fault-abort-grpc-request';
export const HEADER_ABORT_PERCENTAGE = 'x-envoy-fault-abort-request-percentage';
export const HEADER_DOWNSTREAM_NODE = 'x-envoy-downstream-service-node';

/** Envoy's response flags for an injected delay and an injected abort. */
export type FaultFlag = 'DI' | 'FI';

export interface FaultAbortDecision {
  /** The HTTP status of the local reply (200 when only a gRPC status was given). */
  readonly httpStatus: number;
  /** The gRPC status to answer with; always set for a gRPC request (A33). */
  readonly grpcStatus: number | undefined;
}

export interface FaultDecision {
  /** Wait this long (ms, > 0) before sending; flag DI. */
  readonly delayMs: number | undefined;
  /** Answer locally instead of sending (after the delay, if any); flag FI. */
  readonly abort: FaultAbortDecision | undefined;
  /** DI, FI or both, in that order. */
  readonly flags: readonly FaultFlag[];
  /** max_active_faults of the config that decided (undefined = unlimited). */
  readonly maxActiveFaults: number | undefined;
}

/** What decideFault reads besides the request. */
export interface FaultContext {
  /** The route's cluster (for `upstream_cluster`). */
  readonly cluster?: string;
}

export interface CompiledFault {
  readonly config: FaultFilterConfig;
  /** @internal */
  readonly headers: readonly RequestPredicate[];
  /** @internal */
  readonly downstreamNodes: ReadonlySet<string> | undefined;
}

const compiled = new WeakMap<FaultFilterConfig, CompiledFault>();

/** Compile a config once (cached per config object, so every snapshot shares it). */
export function compileFault(config: FaultFilterConfig): CompiledFault {
  let c = compiled.get(config);
  if (c === undefined) {
    c = {
      config,
      headers: config.headers.map(compileHeaderMatcher),
      downstreamNodes: config.downstreamNodes.length > 0 ? new Set(config.downstreamNodes) : undefined,
    };
    compiled.set(config, c);
  }
  return c;
}

/**
 * The fault config in force for a route, or undefined when the filter is off for it.
 * `levels` are the typed_per_filter_config maps from the most specific to the least (weighted
 * cluster entry, route, virtual host); the first with an entry for `filterName` wins, and its
 * config replaces the filter's own (Envoy: "route-level configuration overrides filter-level").
 * A FilterConfig entry with `disabled` turns the filter off; one without a config enables a
 * filter that is disabled by default, with its own config.
 */
export function faultConfigForRoute(
  filterName: string,
  filter: { readonly config: unknown; readonly disabled?: boolean } | undefined,
  levels: readonly (TypedPerFilterConfig | undefined)[],
): FaultFilterConfig | undefined {
  let override: FilterConfigOverride | undefined;
  for (const level of levels) {
    const o = level?.[filterName];
    if (o !== undefined) {
      override = o;
      break;
    }
  }
  if (override !== undefined) {
    if (override.disabled) return undefined;
    return (override.config as FaultFilterConfig | undefined) ?? (filter?.config as FaultFilterConfig | undefined);
  }
  if (filter === undefined || filter.disabled === true) return undefined;
  return filter.config as FaultFilterConfig;
}

const DENOMINATOR = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** Envoy's evaluateFractionalPercent over one fresh random value. */
function draw(numerator: number, denominator: FractionalPercent['denominator'], random: Random): boolean {
  if (numerator <= 0) return false;
  const d = DENOMINATOR[denominator];
  if (numerator >= d) return true;
  // 53 random bits: modulo a power of ten the bias is nil.
  const v = (random.nextUint32() >>> 11) * 0x1_0000_0000 + random.nextUint32();
  return v % d < numerator;
}

// absl::SimpleAtoi for an unsigned value: optional whitespace, an optional '+', digits.
const UINT_RE = /^[ \t\n\v\f\r]*\+?(\d+)[ \t\n\v\f\r]*$/;

/** The first value of a header as an unsigned integer (Envoy reads only the first value). */
function headerUint(req: MeshRequest, name: string): number | undefined {
  let v = req.headers.get(name);
  if (v === undefined) return undefined;
  const comma = v.indexOf(',');
  if (comma >= 0) v = v.slice(0, comma);
  const m = UINT_RE.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The percentage of a header-controlled fault: the header's numerator, capped by the config's. */
function headerNumerator(req: MeshRequest, header: string, configured: FractionalPercent): number {
  const n = headerUint(req, header);
  if (n === undefined || n > 0xffff_ffff) return configured.numerator;
  return Math.min(n, configured.numerator);
}

/** grpc's doc/http-grpc-status-mapping.md, as A33 asks for http_status on gRPC calls. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/** x-envoy-fault-abort-request when it holds an HTTP status in [200, 600). */
function httpStatusHeader(req: MeshRequest): number | undefined {
  const h = headerUint(req, HEADER_ABORT);
  return h !== undefined && h >= 200 && h < 600 ? h : undefined;
}

function delayFor(fault: CompiledFault, req: MeshRequest, random: Random): number | undefined {
  const d = fault.config.delay;
  if (d === undefined) return undefined;
  const numerator = d.kind === 'header' ? headerNumerator(req, HEADER_DELAY_PERCENTAGE, d.percentage) : d.percentage.numerator;
  if (!draw(numerator, d.percentage.denominator, random)) return undefined;
  const ms = d.kind === 'fixed' ? d.fixedDelay : headerUint(req, HEADER_DELAY);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

function abortFor(fault: CompiledFault, req: MeshRequest, random: Random): FaultAbortDecision | undefined {
  const a = fault.config.abort;
  if (a === undefined) return undefined;
  const numerator = a.kind === 'header' ? headerNumerator(req, HEADER_ABORT_PERCENTAGE, a.percentage) : a.percentage.numerator;
  if (!draw(numerator, a.percentage.denominator, random)) return undefined;
  let http: number | undefined;
  let grpc: number | undefined;
  if (a.kind === 'http_status') http = a.httpStatus;
  else if (a.kind === 'grpc_status') grpc = a.grpcStatus;
  else if (req.grpc === true) {
    // For a gRPC call the gRPC header is the more specific one, so it is read first.
    grpc = headerUint(req, HEADER_ABORT_GRPC);
    if (grpc === undefined) http = httpStatusHeader(req);
  } else {
    // Envoy: an HTTP status from the header wins over a gRPC one.
    http = httpStatusHeader(req);
    if (http === undefined) grpc = headerUint(req, HEADER_ABORT_GRPC);
  }
  if (req.grpc === true) {
    // A33: a gRPC call fails with a gRPC status; http_status maps to one.
    if (grpc === undefined && http === undefined) return undefined;
    return { httpStatus: 200, grpcStatus: grpc ?? httpToGrpcStatus(http!) };
  }
  // Envoy: an HTTP status wins; a gRPC status alone answers HTTP 200 with that grpc-status.
  if (http !== undefined) return { httpStatus: http, grpcStatus: undefined };
  if (grpc !== undefined) return { httpStatus: 200, grpcStatus: grpc };
  return undefined;
}

const FLAGS_DI: readonly FaultFlag[] = Object.freeze(['DI']);
const FLAGS_FI: readonly FaultFlag[] = Object.freeze(['FI']);
const FLAGS_BOTH: readonly FaultFlag[] = Object.freeze(['DI', 'FI']);

/**
 * Which faults this request gets, or undefined for none. Pure: the same request and random
 * sequence give the same answer. It does not look at max_active_faults (see injectFault).
 */
export function decideFault(fault: CompiledFault, req: MeshRequest, random: Random, ctx: FaultContext = {}): FaultDecision | undefined {
  const c = fault.config;
  if (req.grpc !== true) {
    if (c.upstreamCluster !== '' && ctx.cluster !== c.upstreamCluster) return undefined;
    if (fault.downstreamNodes !== undefined) {
      const node = req.headers.get(HEADER_DOWNSTREAM_NODE);
      if (node === undefined || !fault.downstreamNodes.has(node)) return undefined;
    }
    for (const h of fault.headers) if (!h(req)) return undefined;
  }
  const delayMs = delayFor(fault, req, random);
  const abort = abortFor(fault, req, random);
  if (delayMs === undefined && abort === undefined) return undefined;
  return {
    delayMs,
    abort,
    flags: delayMs !== undefined ? (abort !== undefined ? FLAGS_BOTH : FLAGS_DI) : FLAGS_FI,
    maxActiveFaults: c.maxActiveFaults,
  };
}

/**
 * The active-fault gauge of one fault filter (Envoy: per HTTP connection manager filter, shared
 * by its per-route overrides; A33: one for the whole process). Keep it across snapshots.
 */
export class ActiveFaults {
  private count = 0;
  private overflowCount = 0;

  get active(): number {
    return this.count;
  }

  /** Envoy's faults_overflow counter. */
  get overflows(): number {
    return this.overflowCount;
  }

  /**
   * Take a slot for a faulted request: a release function (idempotent), or undefined when
   * `max` slots are taken (the request then gets no fault). `max` undefined = unlimited.
   */
  tryAcquire(max: number | undefined): (() => void) | undefined {
    if (max !== undefined && this.count >= max) {
      this.overflowCount++;
      return undefined;
    }
    this.count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.count--;
    };
  }
}

export interface InjectedFault extends FaultDecision {
  /**
   * Give the active-fault slot back: when a delay ends without an abort, or when the request
   * ends (an abort's local reply sent). Idempotent.
   */
  readonly release: () => void;
}

/** decideFault, then a slot under max_active_faults; undefined = send the request as it is. */
export function injectFault(
  fault: CompiledFault,
  req: MeshRequest,
  random: Random,
  active: ActiveFaults,
  ctx: FaultContext = {},
): InjectedFault | undefined {
  const d = decideFault(fault, req, random, ctx);
  if (d === undefined) return undefined;
  const release = active.tryAcquire(d.maxActiveFaults);
  if (release === undefined) return undefined;
  return { ...d, release };
}
