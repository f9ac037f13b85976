// One forwarded request, from the route's decision to the caller's last callback: fault
// filter, circuit breakers, timeouts, attempts with retries, outlier detection. It is a
// plain state object driven by undici's callbacks and the mesh's clock, with no promise and
// no AbortController on the way, because every request takes this path: a request whose
// route asks for no policy still gets Envoy's default 15 s route timeout, its breaker slot
// and outlier reporting, at the cost of a timer and two small objects.
//
// Both sides speak undici's older handler style (legacy-handler.ts): the caller's handler
// receives the final attempt's callbacks as they come, so a response streams through with
// nothing buffered. The retry decision is made at response start (status and headers), as
// Envoy's router makes it; a response to be retried is drained and dropped.
//
// Timeouts (timeout-policy.ts): the route `timeout` runs from the start to the end of the
// response, over every attempt and back-off (Envoy: "from the end of the downstream request
// until the upstream response has been completely processed"); expiry aborts the attempt and
// fails the request with UT, never retried. `per_try_timeout` runs until the attempt's
// response starts; expiry aborts the attempt, which the policy may retry. The stream's
// `max_stream_duration` covers everything, body included; expiry is flag DT.
import {
  applyResponseHeaderMutations,
  computeRequestHash,
  finalizeForwardRequest,
  forwardsUnchanged,
  mutableHeadersFromRecord,
  resolveTimeouts,
  retryAdmissionFrom,
  RetryState,
  RETRY_REQUEST_HEADERS,
  TIMEOUT_REQUEST_HEADERS,
  type AttemptOutcome,
  type ClusterCircuitBreaker,
  type ClusterLoadBalancer,
  type CompiledRetryPolicy,
  type RetryConditions,
  type ClusterSnapshot,
  type ForwardDecision,
  type InjectedFault,
  type Mesh,
  type OutlierDetector,
  type PickedHost,
  type ResponseHeaderView,
  type RetryFlag,
  type TargetSnapshot,
  type UpstreamTimeouts,
  compileRetryPolicy,
  DeadlineTimers,
  selectDropOverload,
  type CallRecorder,
  type Deadline,
} from '@meshlet/core';
import { MeshletError, tracer, type Clock, type TimerHandle } from '@meshlet/xds-client';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { overflowError, poolKey, type EndpointPools, type PoolEntry } from './endpoint-pools.js';
import { deliverLocalResponse, rawOfRecord, recordOfRaw, type BodyChunk, type LegacyHandler, type RawHeaders } from './legacy-handler.js';
import { mirrorRequest } from './mirror.js';
import { bufferBody, isReplayable, knownBodyBytes } from './replay-body.js';

const trace = tracer('http');

type Body = Dispatcher.DispatchOptions['body'];

/** What the agent gives every request: its pools, mesh, and the deadlines of the mesh's clock (deadlinesOf). */
export interface RequestContext {
  readonly pools: EndpointPools;
  readonly mesh: Mesh;
  readonly deadlines: DeadlineTimers;
}

export class RoutedRequest {
  readonly #ctx: RequestContext;
  readonly #snapshot: TargetSnapshot;
  readonly #scheme: string;
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #caller: LegacyHandler;
  readonly #headers: Record<string, string | string[]>;
  readonly #decision: ForwardDecision;
  readonly #cluster: ClusterSnapshot;
  readonly #hash: bigint | undefined;
  /** Upgrades and CONNECT: one attempt, and the stream is the caller's once upgraded. */
  readonly #upgrade: boolean;

  #timeouts: UpstreamTimeouts | undefined;
  /**
   * The retry conditions in force when the request may be retried. The RetryState itself is
   * made when an attempt's outcome first might be retried (#retryState): most requests never
   * need one.
   */
  #conditions: RetryConditions | undefined;
  #retryPolicy: CompiledRetryPolicy | undefined;
  #retry: RetryState | undefined;
  /** An attempt changes the request's headers in a way the next one must not inherit (#attempt). */
  #copyHeaders = false;
  #body: Body;
  #replayable = true;
  /** The request's size went to telemetry before the first attempt (its body's size was known). */
  #bodyCounted = false;
  /** The request carries x-envoy-* headers (read by the policies, consumed before sending). */
  #envoyHeaders = false;
  /** The request holds its cluster's breaker 'request' slot. */
  #holdsSlot = false;
  #fault: InjectedFault | undefined;
  #current: Attempt | undefined;
  #attempts = 0;
  #timer: Deadline | undefined;
  #streamTimer: Deadline | undefined;
  #waitTimer: TimerHandle | undefined;
  /** The response the caller is receiving (its headers were handed over). */
  #committed = false;
  #done = false;
  /** Telemetry for this call (undefined when nothing listens), and what it will report. */
  readonly #rec: CallRecorder | undefined;
  #status = 0;
  #flags: string | undefined;
  #grpcStatus: number | undefined;

  constructor(
    ctx: RequestContext,
    snapshot: TargetSnapshot,
    scheme: string,
    opts: Dispatcher.DispatchOptions,
    caller: LegacyHandler,
    headers: Record<string, string | string[]>,
    decision: ForwardDecision,
    cluster: ClusterSnapshot,
    rec: CallRecorder | undefined,
  ) {
    this.#ctx = ctx;
    this.#rec = rec;
    rec?.route(cluster.cluster ?? decision.cluster);
    this.#snapshot = snapshot;
    this.#scheme = scheme;
    this.#opts = opts;
    this.#caller = caller;
    this.#headers = headers;
    this.#decision = decision;
    this.#cluster = cluster;
    this.#hash = decision.hashPolicies.length > 0 ? computeRequestHash(decision.hashPolicies, decision.request) : undefined;
    this.#upgrade = opts.upgrade != null || opts.method === 'CONNECT';
    this.#body = opts.body;
  }

  /** The caller's abort: ends the request (an attempt streaming a response ends through its error). */
  readonly #abort = (reason?: Error): void => {
    if (this.#done) return;
    this.#flag('DC');
    this.#endWith(reason ?? new MeshletError('MESHLET_DOWNSTREAM_TERMINATED', 'request aborted by the caller'), false);
  };

  start(): void {
    this.#caller.onConnect?.(this.#abort);
    if (this.#done) return;
    // The fault filter runs before the router (HCM filter order): its delay comes before any
    // circuit breaker slot or timeout, its abort answers without an upstream.
    const d = this.#decision;
    const fault = this.#ctx.mesh.injectFault(this.#snapshot, d, d.cluster !== undefined ? { cluster: d.cluster } : undefined);
    if (fault === undefined) {
      this.#admit();
      return;
    }
    this.#fault = fault;
    if (fault.delayMs === undefined) {
      this.#faultAbort();
      return;
    }
    trace(() => `fault filter: delaying ${fault.delayMs} ms (DI)`);
    this.#flag('DI');
    this.#waitTimer = this.#ctx.mesh.clock.setTimeout(() => {
      this.#waitTimer = undefined;
      if (fault.abort !== undefined) {
        this.#faultAbort();
        return;
      }
      fault.release(); // a delay without an abort gives its slot back when it ends
      this.#fault = undefined;
      this.#admit();
    }, fault.delayMs);
  }

  /** The fault filter's abort: a local reply with the configured status (FI). */
  #faultAbort(): void {
    const abort = this.#fault!.abort!;
    const grpc = this.#decision.request.grpc === true && abort.grpcStatus !== undefined;
    trace(() => `fault filter: abort with ${grpc ? `grpc-status ${abort.grpcStatus}` : abort.httpStatus} (FI)`);
    this.#flag('FI');
    this.#status = abort.httpStatus;
    if (grpc) this.#grpcStatus = abort.grpcStatus;
    this.#committed = true;
    this.#finish();
    if (grpc) {
      const headers = { 'content-type': 'application/grpc', 'grpc-status': String(abort.grpcStatus), 'grpc-message': 'fault filter abort' };
      deliverLocalResponse(this.#caller, abort.httpStatus, headers, undefined);
    } else {
      deliverLocalResponse(this.#caller, abort.httpStatus, { 'content-type': 'text/plain' }, 'fault filter abort');
    }
  }

  /** Past the fault filter: the router's circuit breaker, timeouts and retry policy. */
  #admit(): void {
    const decision = this.#decision;
    // EDS drop_overloads come first, before any breaker slot (Envoy's router: flag DO, 503).
    const drops = this.#cluster.endpoints?.dropOverloads;
    if (drops !== undefined && drops.length > 0) {
      const dropped = selectDropOverload(drops, this.#ctx.mesh.random);
      if (dropped !== undefined) {
        this.#fail(new MeshletError('MESHLET_DROP_OVERLOAD', `cluster "${decision.cluster}": dropped by the control plane's drop_overloads (category "${dropped.category}")`));
        return;
      }
    }
    const breaker = this.#cluster.breaker;
    if (breaker !== undefined) {
      // Circuit breakers (Cluster.circuit_breakers): 'request' for the request's life. Routes
      // carry no priority here, so the DEFAULT thresholds apply.
      const overflow = breaker.take('request', 'DEFAULT');
      if (overflow !== undefined) {
        this.#fail(overflowError(decision.cluster!, overflow));
        return;
      }
      this.#holdsSlot = true;
    }
    const request = decision.request;
    // Envoy's x-envoy-* retry and timeout request headers are read only when the request has
    // one: eight lookups of absent names cost more than this scan of the few present.
    let honorEnvoyHeaders = false;
    for (const name in this.#headers) {
      if (name.startsWith('x-envoy-')) {
        honorEnvoyHeaders = true;
        break;
      }
    }
    this.#envoyHeaders = honorEnvoyHeaders;
    if (!this.#upgrade) {
      const policy = compileRetryPolicy(decision.retryPolicy);
      const conditions = policy.forRequest(request, honorEnvoyHeaders ? HONOR_ENVOY_HEADERS : IGNORE_ENVOY_HEADERS);
      if (conditions !== undefined && conditions.numRetries > 0) {
        this.#conditions = conditions;
        this.#retryPolicy = policy;
        // An attempt that may be followed by another must leave the caller's headers as they
        // were when its changes are not idempotent: header mutations (appends, formatters that
        // name the upstream host), x-forwarded-host appended by a host rewrite, a host rewrite
        // that reads a header (the Host the attempt sets may be it).
        this.#copyHeaders = decision.requestHeaderOps.length > 0 || decision.hostRewrite !== undefined;
      }
    }
    const hcmMaxStreamDuration = this.#snapshot.config.listener.apiListener?.maxStreamDuration;
    const timeouts = resolveTimeouts(decision, request, { honorEnvoyHeaders, hcmMaxStreamDuration });
    this.#timeouts = timeouts;
    if (timeouts.overall !== undefined) {
      this.#timer = this.#ctx.deadlines.schedule(timeouts.overall, this);
    }
    if (timeouts.maxStreamDuration !== undefined) {
      this.#streamTimer = this.#ctx.deadlines.schedule(timeouts.maxStreamDuration, () => this.#streamTimeout());
    }
    if (this.#conditions === undefined || isReplayable(this.#body)) {
      this.#attempt();
      return;
    }
    // A streamed body is collected so a retry can send it again, up to a limit; a longer one
    // is sent once, and then the request is not retried.
    bufferBody(this.#body).then(
      (b) => {
        if (this.#done) return;
        this.#body = b.body;
        this.#replayable = b.replayable;
        this.#attempt();
      },
      (err: unknown) => this.#fail(err instanceof Error ? err : new Error(String(err))),
    );
  }

  #attempt(): void {
    const n = ++this.#attempts;
    const decision = this.#decision;
    const retry = this.#retry; // made by the time of a second attempt (#retryState)
    const ejected = this.#cluster.outlier?.ejected();
    const lb = this.#cluster.lb!; // the agent routes here only to a cluster with a balancer
    const hash = this.#hash;
    const host =
      retry === undefined
        ? pickAvoiding(lb, undefined, ejected, hash)
        : retry.hosts.select((ctx) => pickAvoiding(lb, ctx.exclude, ejected, hash));
    if (host === undefined) {
      this.#fail(new MeshletError('MESHLET_NO_HEALTHY_UPSTREAM', `cluster "${decision.cluster}" has no healthy upstream`));
      return;
    }
    // An attempt that may be followed by another finalizes its own copy when it changes them
    // for good (#copyHeaders); the rest of what it sets, every attempt sets again.
    const hdrs = this.#copyHeaders ? copyHeaders(this.#headers) : this.#headers;
    if (this.#envoyHeaders) for (const name in hdrs) if (CONSUMED_REQUEST_HEADERS.has(name)) delete hdrs[name];
    let path: string;
    let authority: string;
    if (forwardsUnchanged(decision)) {
      // What finalizeForwardRequest gives such a route, without its header view and options.
      path = decision.request.path;
      authority = decision.clusterHostRewrite ?? decision.request.authority;
    } else {
      const target = finalizeForwardRequest(decision, mutableHeadersFromRecord(hdrs), { upstreamRemoteAddress: host.key });
      path = target.path;
      authority = target.authority;
    }
    const hostValue = decision.autoHostRewrite && host.endpoint.hostname ? host.endpoint.hostname : authority;
    const grpcTimeout = this.#timeouts?.grpcTimeoutHeader;
    if (grpcTimeout !== undefined) hdrs['grpc-timeout'] = grpcTimeout;
    const rec = this.#rec;
    if (rec !== undefined) {
      if (n === 1) {
        const size = knownBodyBytes(this.#body);
        if (size !== undefined) {
          if (size > 0) rec.requestBytes(size);
          this.#bodyCounted = true;
        }
      }
      rec.attempt(host);
      // Trace context of this attempt, and Istio's peer metadata (metadata exchange).
      rec.injectHeadersInto(hdrs);
    }
    const t = upstreamOf(this.#scheme, this.#cluster.name, host);
    let pool: PoolEntry;
    try {
      pool = this.#ctx.pools.entry(t.origin, t.key, this.#cluster, hostValue);
    } catch (err) {
      // max_connection_pools reached (UO), or the agent is closed.
      this.#attemptFailed(undefined, { kind: 'overflow', host: host.key }, err as Error);
      return;
    }
    // A pool named for this Host writes it itself (endpoint-pools.ts); undici skips a header
    // whose value is undefined, which a caller's own Host header becomes.
    if (pool.host !== hostValue) hdrs['host'] = hostValue;
    else if (hdrs['host'] !== undefined) hdrs['host'] = undefined as unknown as string;
    const breaker = this.#cluster.breaker;
    if (breaker !== undefined) {
      const overflow = breaker.take('pending', 'DEFAULT');
      if (overflow !== undefined) {
        this.#attemptFailed(undefined, { kind: 'overflow', host: host.key }, overflowError(decision.cluster!, overflow));
        return;
      }
    }
    const body =
      n === 1 && decision.mirrorPolicies.length > 0
        ? mirrorRequest(this.#ctx.pools, { snapshot: this.#snapshot, scheme: this.#scheme, host: hostValue }, this.#opts.method, this.#body, decision, hdrs, path)
        : this.#body;
    const attempt = new Attempt(this, host, breaker);
    this.#current = attempt;
    const perTry = this.#timeouts?.perTry;
    if (perTry !== undefined) {
      attempt.timer = this.#ctx.deadlines.schedule(perTry, attempt);
    }
    pool.pool.dispatch(upstreamOptions(this.#opts, t.origin, path, hdrs, body, this.#scheme, hostValue), attempt as unknown as Dispatcher.DispatchHandler);
  }

  // ---- what an attempt reports ----

  /** @internal An attempt's response started: retry it, or hand it to the caller. */
  onAttemptHeaders(attempt: Attempt, status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (attempt !== this.#current || this.#done) return true; // abandoned: drain
    if (status < 200) return this.#caller.onHeaders ? this.#caller.onHeaders(status, raw, resume, statusText) : true;
    attempt.clearTimer();
    this.#cluster.outlier?.record(attempt.host.key, status);
    const conditions = this.#conditions;
    const view = conditions !== undefined || this.#rec !== undefined ? new RawHeaderView(raw) : undefined;
    // A response the conditions would not retry needs no retry state: unless one exists (a
    // retry is under way and its breaker slot is given back at this outcome), it is delivered.
    if (conditions !== undefined && this.#replayable && (this.#retry !== undefined || conditions.shouldRetryResponse(status, view!))) {
      const d = this.#retryState(attempt).decide({ kind: 'response', status, headers: view!, host: attempt.host.key });
      if (d.retry) {
        this.#rec?.attemptEnd({ status });
        attempt.discarding = true;
        this.#retryAfter(d.delayMs);
        return true; // drain the body so the connection can be reused
      }
      for (const f of d.flags) this.#flag(f);
    }
    this.#committed = true;
    this.#status = status;
    if (this.#rec !== undefined) {
      // The server's peer metadata names the destination workload.
      this.#rec.receivedHeaders(view!);
      if (this.#decision.request.grpc) this.#grpcStatus = grpcStatusOf(raw);
    }
    let headers = raw;
    if (this.#decision.responseHeaderOps.length > 0) {
      const record = recordOfRaw(raw);
      applyResponseHeaderMutations(this.#decision, mutableHeadersFromRecord(record), { upstreamRemoteAddress: attempt.host.key });
      headers = rawOfRecord(record);
    }
    const c = this.#caller;
    c.onResponseStarted?.();
    return c.onHeaders ? c.onHeaders(status, headers, resume, statusText) : true;
  }

  /** @internal */
  onAttemptData(attempt: Attempt, chunk: Buffer): boolean {
    if (attempt !== this.#current || !this.#committed || this.#done) return true;
    this.#rec?.responseBytes(chunk.length);
    return this.#caller.onData ? this.#caller.onData(chunk) : true;
  }

  /** @internal */
  onAttemptComplete(attempt: Attempt, trailers: RawHeaders): void {
    if (attempt !== this.#current || !this.#committed || this.#done) return;
    if (this.#rec !== undefined && this.#decision.request.grpc && trailers) this.#grpcStatus = grpcStatusOf(trailers) ?? this.#grpcStatus;
    this.#finish();
    this.#caller.onComplete?.(trailers ?? []);
  }

  /** @internal */
  onAttemptUpgrade(attempt: Attempt, status: number, headers: RawHeaders, socket: Duplex): void {
    if (attempt !== this.#current || this.#done) {
      socket.destroy();
      return;
    }
    attempt.clearTimer();
    this.#committed = true;
    this.#status = status;
    this.#finish();
    this.#caller.onUpgrade?.(status, headers, socket);
  }

  /** @internal */
  onAttemptBodySent(attempt: Attempt, chunk: BodyChunk): void {
    if (attempt !== this.#current || this.#done) return;
    // The request's size is the caller's body, counted once (retries send it again): up
    // front when its size was known, else as the first attempt writes it.
    if (this.#attempts === 1 && !this.#bodyCounted) this.#rec?.requestBytes(knownBodyBytes(chunk) ?? 0);
    this.#caller.onBodySent?.(chunk);
  }

  /** @internal An attempt failed: before its response (maybe retried), or while streaming it. */
  onAttemptError(attempt: Attempt, err: Error): void {
    if (attempt !== this.#current || this.#done) return;
    attempt.clearTimer();
    if (this.#committed) {
      const e = upstreamError(err, attempt.host.key);
      if (!this.#flags?.includes('DC')) this.#flagOf(e, 'UR');
      this.#finish();
      this.#caller.onError?.(e);
      return;
    }
    const outcome = outcomeOfError(err);
    if (outcome === undefined) {
      // Not an upstream outcome (a bad request option, say): it fails the request as it is.
      this.#fail(err);
      return;
    }
    const outlier = this.#cluster.outlier;
    if (outlier !== undefined) recordFailure(outlier, attempt.host.key, outcome);
    this.#rec?.attemptEnd({ status: 0, flags: outcome.kind === 'connect_failure' ? 'UF' : 'UR' });
    this.#attemptFailed(attempt, { ...outcome, host: attempt.host.key }, err);
  }

  // ---- decisions ----

  #attemptFailed(attempt: Attempt | undefined, outcome: AttemptOutcome & { host?: string }, err: Error | undefined): void {
    const flags: readonly RetryFlag[] = [];
    if (this.#conditions !== undefined && this.#replayable) {
      const d = this.#retryState(attempt).decide(outcome);
      if (d.retry) {
        if (attempt !== undefined) attempt.discarding = true;
        this.#retryAfter(d.delayMs);
        return;
      }
      this.#fail(finalError(outcome, err, d.flags, this.#attempts, this.#decision.cluster!));
      return;
    }
    this.#fail(finalError(outcome, err, flags, this.#attempts, this.#decision.cluster!));
  }

  /**
   * The request's retry state, made when an outcome first might be retried. The first attempt
   * picked its host without it, so that host counts as attempted now (previous_hosts).
   */
  #retryState(first: Attempt | undefined): RetryState {
    let r = this.#retry;
    if (r === undefined) {
      const clock = this.#ctx.mesh.clock;
      const random = this.#ctx.mesh.random;
      const breaker = this.#cluster.breaker;
      // Two literals, not a spread: a spread copies its properties through the runtime.
      r = new RetryState(
        this.#retryPolicy!,
        this.#conditions,
        breaker !== undefined ? { clock, random, admission: retryAdmissionFrom(() => breaker.tryAcquire('retry', 'DEFAULT')) } : { clock, random },
      );
      if (first !== undefined) r.hosts.attempted(first.host.key);
      this.#retry = r;
    }
    return r;
  }

  #retryAfter(delayMs: number): void {
    this.#current = undefined;
    this.#waitTimer = this.#ctx.mesh.clock.setTimeout(() => {
      this.#waitTimer = undefined;
      if (!this.#done) this.#attempt();
    }, delayMs);
  }

  /** @internal The attempt's per_try_timeout expired. */
  onPerTryTimeout(attempt: Attempt): void {
    attempt.timer = undefined;
    if (attempt !== this.#current || this.#done || this.#committed) return;
    trace(() => `per-try timeout on ${attempt.host.key} (cluster "${this.#decision.cluster}")`);
    attempt.abandon(timeoutError(this.#decision.cluster!, this.#attempts, 'per-try'));
    this.#rec?.attemptEnd({ status: 0, flags: 'UT' });
    this.#cluster.outlier?.record(attempt.host.key, 'timeout');
    this.#attemptFailed(attempt, { kind: 'timeout' }, undefined);
  }

  /** @internal The route timeout expired (this request is its own deadline's action). */
  onDeadline(): void {
    this.#timer = undefined;
    if (this.#done) return;
    const err = timeoutError(this.#decision.cluster!, this.#attempts, 'route');
    trace(() => err.message);
    this.#endWith(err, true);
  }

  #streamTimeout(): void {
    this.#streamTimer = undefined;
    if (this.#done) return;
    this.#endWith(new MeshletError('MESHLET_STREAM_DURATION_EXCEEDED', `max_stream_duration reached (cluster "${this.#decision.cluster}")`), false);
  }

  /**
   * End the request from outside its attempt (the caller's abort, the route timeout, the
   * stream's limit): a response being delivered ends through its attempt's error; otherwise the
   * attempt is let go (a timed-out one reported to outlier detection) and the request fails now.
   */
  #endWith(err: Error, timedOut: boolean): void {
    const attempt = this.#current;
    if (this.#committed && attempt !== undefined) {
      attempt.abortUpstream(err);
      return;
    }
    if (attempt !== undefined) {
      attempt.abandon(err);
      if (timedOut) this.#cluster.outlier?.record(attempt.host.key, 'timeout');
    }
    this.#fail(err);
  }

  /** End the request with an error (not after the caller has the response: that ends through the attempt). */
  #fail(err: Error): void {
    if (this.#done) return;
    if (!this.#committed) this.#status = (err as { status?: number }).status ?? 0;
    this.#flagOf(err, undefined);
    this.#finish();
    this.#caller.onError?.(err);
  }

  #flag(f: string): void {
    if (this.#rec === undefined) return;
    this.#flags = this.#flags === undefined ? f : this.#flags.split(',').includes(f) ? this.#flags : `${this.#flags},${f}`;
  }

  /** The response flag an error stands for (a MeshletError's), else `otherwise`. */
  #flagOf(err: Error, otherwise: string | undefined): void {
    if (this.#rec === undefined) return;
    const f = (err as { responseFlag?: string }).responseFlag || otherwise;
    if (f) this.#flag(f);
  }

  /** The request is over: timers off, slots back. Idempotent. */
  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#timer?.cancel();
    this.#streamTimer?.cancel();
    if (this.#waitTimer !== undefined) this.#ctx.mesh.clock.clearTimeout(this.#waitTimer);
    this.#current?.clearTimer();
    this.#retry?.finish();
    this.#fault?.release();
    if (this.#holdsSlot) {
      this.#holdsSlot = false;
      this.#cluster.breaker!.give('request', 'DEFAULT');
    }
    const rec = this.#rec;
    if (rec !== undefined) {
      const result: { status: number; flags?: string; grpcStatus?: number } = { status: this.#status };
      if (this.#flags !== undefined) result.flags = this.#flags;
      if (this.#grpcStatus !== undefined) result.grpcStatus = this.#grpcStatus;
      rec.end(result);
    }
  }
}

/** The handler of one attempt, given to the endpoint's pool (undici's older style). */
class Attempt implements LegacyHandler {
  readonly host: PickedHost;
  readonly #req: RoutedRequest;
  /** The breaker whose 'pending' slot the attempt holds until it has a connection. */
  #pending: ClusterCircuitBreaker | undefined;
  #abort: ((err?: Error) => void) | undefined;
  /** Why the request let go of this attempt; it is aborted as soon as it can be. */
  #abandoned: Error | undefined;
  #ended = false;
  timer: Deadline | undefined;
  /** Retried: its response is drained, not delivered. */
  discarding = false;

  constructor(req: RoutedRequest, host: PickedHost, pending: ClusterCircuitBreaker | undefined) {
    this.#req = req;
    this.host = host;
    this.#pending = pending;
    host.stats.activeRequests++;
  }

  clearTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Abort the upstream request (the attempt's own error callback follows). */
  abortUpstream(err: Error): void {
    if (this.#abort !== undefined) this.#abort(err);
    else this.#abandoned = err;
  }

  /**
   * The request no longer waits for this attempt: abort it now, or once it has a connection.
   * Its callbacks are ignored from here on (the abort's own error included).
   */
  abandon(err: Error): void {
    this.discarding = true;
    this.#abandoned = err;
    // An attempt still waiting for a connection stops counting as pending now, as Envoy takes a
    // cancelled request off its pool's pending list; undici drops it once a connection has it.
    this.#givePending();
    this.#abort?.(err);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.host.stats.activeRequests--;
    this.#givePending();
  }

  #givePending(): void {
    const p = this.#pending;
    if (p === undefined) return;
    this.#pending = undefined;
    p.give('pending', 'DEFAULT');
  }

  /** The per-try timeout (this attempt is its deadline's action). */
  onDeadline(): void {
    this.#req.onPerTryTimeout(this);
  }

  onConnect(abort: (err?: Error) => void): void {
    // undici starts a request once a connection has it: it is no longer pending.
    this.#givePending();
    this.#abort = abort;
    if (this.#abandoned !== undefined) abort(this.#abandoned);
  }

  onResponseStarted(): void {}

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.#abandoned !== undefined || this.discarding) return true;
    return this.#req.onAttemptHeaders(this, statusCode, headers, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    if (this.discarding || this.#abandoned !== undefined) return true;
    return this.#req.onAttemptData(this, chunk);
  }

  onComplete(trailers: RawHeaders): void {
    this.#end();
    if (this.discarding) return;
    this.#req.onAttemptComplete(this, trailers);
  }

  onError(err: Error): void {
    this.#end();
    if (this.discarding) return;
    this.#req.onAttemptError(this, err);
  }

  onUpgrade(statusCode: number, headers: RawHeaders, socket: Duplex): void {
    this.#end();
    this.#req.onAttemptUpgrade(this, statusCode, headers, socket);
  }

  onBodySent(chunk: BodyChunk): void {
    this.#req.onAttemptBodySent(this, chunk);
  }
}

/**
 * Response headers read by the retry policy and telemetry, straight from undici's raw array:
 * a lookup scans the names (comparing lengths first), with no record built; the retry policy
 * asks for one or two headers of every response.
 */
class RawHeaderView implements ResponseHeaderView {
  readonly #raw: Buffer[];

  constructor(raw: Buffer[]) {
    this.#raw = raw;
  }

  get(name: string): string | undefined {
    const raw = this.#raw;
    let out: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length !== name.length || n.toString('latin1').toLowerCase() !== name) continue;
      const v = raw[i + 1]!.toString('latin1');
      out = out === undefined ? v : `${out},${v}`;
    }
    return out;
  }
}

/** grpc-status from raw headers or trailers. */
function grpcStatusOf(raw: RawHeaders | Buffer[]): number | undefined {
  if (!raw) return undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toString('latin1').toLowerCase() === 'grpc-status') {
      const n = Number(raw[i + 1]!.toString('latin1'));
      return Number.isInteger(n) ? n : undefined;
    }
  }
  return undefined;
}

/** The request path's deadlines, one set per clock (a mesh's), shared by every agent on it. */
const DEADLINES = new WeakMap<object, DeadlineTimers>();
export function deadlinesOf(clock: Clock): DeadlineTimers {
  let d = DEADLINES.get(clock);
  if (d === undefined) {
    d = new DeadlineTimers(clock);
    DEADLINES.set(clock, d);
  }
  return d;
}

/** The retry policy's reading of the request's x-envoy-* headers, as constants (no object per request). */
const HONOR_ENVOY_HEADERS = { honorEnvoyHeaders: true } as const;
const IGNORE_ENVOY_HEADERS = { honorEnvoyHeaders: false } as const;

/** Request headers the router consumes (timeouts, retries); not sent upstream, as Envoy strips them. */
const CONSUMED_REQUEST_HEADERS: ReadonlySet<string> = new Set([...TIMEOUT_REQUEST_HEADERS, ...RETRY_REQUEST_HEADERS]);

function copyHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in headers) {
    const v = headers[k];
    // undefined: a Host left to a pool named for it (#attempt).
    if (v !== undefined) out[k] = typeof v === 'string' ? v : [...v];
  }
  return out;
}

/**
 * A pick that leaves out the hosts already tried (previous_hosts) and the ejected ones. When
 * ejection leaves nothing to pick, the ejected hosts are used after all, as Envoy's panic
 * routing would.
 */
function pickAvoiding(
  lb: ClusterLoadBalancer,
  tried: ReadonlySet<string> | undefined,
  ejected: ReadonlySet<string> | undefined,
  hash: bigint | undefined,
): PickedHost | undefined {
  if (ejected !== undefined && ejected.size > 0) {
    const exclude = tried === undefined || tried.size === 0 ? ejected : new Set([...tried, ...ejected]);
    const host = lb.pick(hash === undefined ? { exclude } : { exclude, hash });
    if (host !== undefined) return host;
  }
  if (tried === undefined || tried.size === 0) return lb.pick(hash === undefined ? undefined : { hash });
  return lb.pick(hash === undefined ? { exclude: tried } : { exclude: tried, hash });
}

/** Tell the cluster's outlier detector how an attempt failed before a response. */
function recordFailure(outlier: OutlierDetector, host: string, o: AttemptOutcome): void {
  switch (o.kind) {
    case 'connect_failure':
      outlier.record(host, 'connect_failure');
      return;
    case 'reset':
    case 'refused_stream':
      outlier.record(host, 'reset');
      return;
    default:
      return;
  }
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const RESETS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * The retry policy's view of an attempt that failed before a response: a connect failure or
 * a reset (the connection dropped or the peer broke the protocol). Anything else (a bad
 * request option, say) is not an upstream outcome.
 */
function outcomeOfError(error: Error): AttemptOutcome | undefined {
  const code = (error as { code?: string }).code;
  if (code === undefined) return undefined;
  if (CONNECT_FAILURES.has(code)) return { kind: 'connect_failure' };
  if (RESETS.has(code)) return { kind: 'reset', reason: 'connection_termination' };
  if (code.startsWith('HPE_')) return { kind: 'reset', reason: 'protocol_error' };
  return undefined;
}

/** Connection failures to the picked endpoint carry UF; other errors pass through as undici made them. */
function upstreamError(error: Error, hostKey: string): Error {
  const code = (error as { code?: string }).code;
  if (code !== undefined && CONNECT_FAILURES.has(code)) {
    return new MeshletError('MESHLET_UPSTREAM_CONNECT_FAILURE', `upstream connect error to ${hostKey}: ${error.message}`, { cause: error });
  }
  return error;
}

function timeoutError(cluster: string, attempts: number, which: 'route' | 'per-try'): MeshletError {
  return new MeshletError('MESHLET_UPSTREAM_TIMEOUT', `upstream request timeout (${which} timeout, cluster "${cluster}", ${attempts} attempt(s))`);
}

/** The error a request ends with when its last attempt had no response (Envoy's local reply and flags). */
function finalError(o: AttemptOutcome & { host?: string }, cause: Error | undefined, flags: readonly RetryFlag[], attempts: number, cluster: string): Error {
  if (o.kind === 'timeout') return timeoutError(cluster, attempts, 'per-try');
  if (o.kind === 'overflow' && cause !== undefined) return cause;
  const what = cause?.message ?? o.kind;
  if (flags.includes('URX')) {
    return new MeshletError('MESHLET_RETRY_LIMIT_EXCEEDED', `retries exhausted after ${attempts} attempts (cluster "${cluster}"); last: ${what}`, { cause });
  }
  if (flags.includes('UO')) {
    return new MeshletError('MESHLET_OVERFLOW', `retry refused by the circuit breaker of cluster "${cluster}"; last: ${what}`, { cause });
  }
  if (o.kind === 'connect_failure') {
    return new MeshletError('MESHLET_UPSTREAM_CONNECT_FAILURE', `upstream connect error to ${o.host ?? cluster}: ${what}`, { cause });
  }
  return cause ?? new MeshletError('MESHLET_UPSTREAM_RESET', `upstream reset (${o.kind})`);
}


/**
 * The caller's dispatch options with the upstream's origin, path, headers and body (the query
 * is already in the path): the options undici's Request and Client read, in one fixed shape.
 * Written out field by field: the options `undici.request` hands a dispatcher were made by an
 * object spread with overrides, which leaves them in V8's slow dictionary mode, so copying
 * them key by key (or spreading them again) costs several times more.
 */
function upstreamOptions(
  opts: Dispatcher.DispatchOptions,
  origin: string,
  path: string,
  headers: Record<string, string | string[]>,
  body: Body,
  scheme: string,
  host: string,
): Dispatcher.DispatchOptions {
  const out: UpstreamOptions = {
    origin,
    path,
    method: opts.method,
    body,
    // undici inspects a headers object (prototype, own iterator, keys) even when it is empty.
    headers: hasAny(headers) ? headers : undefined,
    query: undefined,
    idempotent: undefined,
    blocking: undefined,
    upgrade: undefined,
    headersTimeout: undefined,
    bodyTimeout: undefined,
    reset: undefined,
    expectContinue: undefined,
    throwOnError: undefined,
    servername: undefined,
    typeOfService: undefined,
    maxRedirections: undefined,
  };
  // Only the keys the caller set are read (a lookup of an absent key in a dictionary-mode
  // object costs more than enumerating the few present ones).
  const o = opts as unknown as Record<string, unknown>;
  for (const k in o) {
    switch (k) {
      case 'idempotent':
      case 'blocking':
      case 'upgrade':
      case 'headersTimeout':
      case 'bodyTimeout':
      case 'reset':
      case 'expectContinue':
      case 'throwOnError':
      case 'servername':
      case 'typeOfService':
      case 'maxRedirections':
        (out as unknown as Record<string, unknown>)[k] = o[k];
    }
  }
  // Without a servername undici derives one from the Host header on every request, through
  // net.isIP's IPv6 regex (several µs). Over plain HTTP it is only a label that groups a
  // connection's queued requests, so the Host's name is given as it is.
  if (out.servername === undefined && scheme === 'http') out.servername = hostName(host);
  return out as unknown as Dispatcher.DispatchOptions;
}

/** The dispatch options undici's Request and Client read, in one fixed shape. */
interface UpstreamOptions {
  origin: string;
  path: string;
  method: string;
  body: Body;
  headers: Record<string, string | string[]> | undefined;
  query: undefined;
  idempotent: unknown;
  blocking: unknown;
  upgrade: unknown;
  headersTimeout: unknown;
  bodyTimeout: unknown;
  reset: unknown;
  expectContinue: unknown;
  throwOnError: unknown;
  servername: string | undefined;
  typeOfService: unknown;
  maxRedirections: unknown;
}

function hasAny(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/**
 * The name part of a Host header value (`name:port` → `name`, `[v6]:port` → `[v6]`). The last
 * answer is remembered: requests in a row mostly carry one Host, and the slice is a new string.
 */
function hostName(host: string | string[] | undefined): string | undefined {
  if (typeof host !== 'string' || host === '') return undefined;
  if (host === lastHost) return lastHostName;
  const colon = host.lastIndexOf(':');
  const name = colon < 0 || host.endsWith(']') || (host.charCodeAt(0) === 91 /* [ */ && host.indexOf(']') > colon) ? host : host.slice(0, colon);
  lastHost = host;
  lastHostName = name;
  return name;
}
let lastHost = '';
let lastHostName = '';

/** The origin (`scheme://host:port`) of a picked host and the key of its cluster's pool, made once per host object. */
const UPSTREAMS = { http: new WeakMap<object, Upstream>(), https: new WeakMap<object, Upstream>() };
interface Upstream {
  readonly origin: string;
  readonly key: string;
}
function upstreamOf(scheme: string, cluster: string, host: { readonly key: string }): Upstream {
  const cache = scheme === 'https' ? UPSTREAMS.https : UPSTREAMS.http;
  let u = cache.get(host);
  if (u === undefined) {
    const origin = `${scheme}://${host.key}`;
    u = { origin, key: poolKey(cluster, origin) };
    cache.set(host, u);
  }
  return u;
}
