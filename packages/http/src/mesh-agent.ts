// MeshAgent: an undici Dispatcher that sends every request through the mesh. The
// request's origin (host:port) names a target; its snapshot routes the request to a
// cluster, the cluster's balancer picks an endpoint, and the endpoint's own pool sends
// it. Hosts the control plane does not serve follow the outbound traffic policy:
// ALLOW_ANY passes them through unchanged, REGISTRY_ONLY refuses them.
//
// Per request: one route(), one pick(), a header record; everything else was built
// when the config changed (DESIGN.md, "The request path").
import {
  applyResponseHeaderMutations,
  compileRetryPolicy,
  computeRequestHash,
  resolveTimeouts,
  runWithRetries,
  RETRY_REQUEST_HEADERS,
  TIMEOUT_REQUEST_HEADERS,
  compileFault,
  faultConfigForRoute,
  injectFault,
  isBreakerOverflow,
  FAULT_FILTER_TYPE_URL,
  type InjectedFault,
  retryAdmissionFrom,
  type BreakerOverflow,
  type ClusterLoadBalancer,
  type ClusterSnapshot,
  type OutlierDetector,
  type PickedHost,
  type CompiledRetryPolicy,
  type RetryFlag,
  type RetryHostSelector,
  type TimeoutOutcome,
  finalizeForwardRequest,
  headersFromRecord,
  mutableHeadersFromRecord,
  selectMirrorClusters,
  type ForwardDecision,
  type HostStats,
  type Mesh,
  type MeshRequest,
  type MeshTarget,
  type RouteDecision,
  type TargetSnapshot,
} from '@meshlet/core';
import { MeshletError, tracer, type MeshletErrorCode, type HttpFilter, type RetryPolicy } from '@meshlet/xds-client';
import { Agent, DecoratorHandler, Dispatcher } from 'undici';
import { EndpointPools, type PoolFactory } from './endpoint-pools.js';
import { getDefaultMesh } from '@meshlet/core';
import { bufferBody, isReplayable } from './replay-body.js';
import { DownstreamController, RequestScope, UpstreamAttempt, upstreamError, type UpstreamOutcome } from './upstream-attempt.js';

const trace = tracer('http');

export type OutboundTrafficPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface MeshAgentOptions {
  /** The mesh to route with; default: the process-wide mesh (see createMesh/getDefaultMesh). */
  readonly mesh?: Mesh;
  /**
   * What to do with a host the control plane does not serve (no Listener for host:port):
   * Istio's meshConfig.outboundTrafficPolicy. ALLOW_ANY (default) sends it unchanged through
   * `passthrough`; REGISTRY_ONLY fails it with MESHLET_REGISTRY_ONLY (flag NR).
   */
  readonly outboundTrafficPolicy?: OutboundTrafficPolicy;
  /** The dispatcher for pass-through requests; default a new undici Agent. */
  readonly passthrough?: Dispatcher;
  /** How to make an endpoint's connection pool; default `new Pool(origin)`. */
  readonly poolFactory?: PoolFactory;
}

interface OriginInfo {
  readonly target: MeshTarget;
  readonly scheme: string;
  /** host:port with the scheme's default port filled in: what names the Listener. */
  readonly authority: string;
  /** The Host the caller sends (no default port), which virtual hosts match, as Envoy sees it. */
  readonly host: string;
}

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

export class MeshAgent extends Dispatcher {
  readonly #meshOption: Mesh | undefined;
  readonly #policy: OutboundTrafficPolicy;
  readonly #passthrough: Dispatcher;
  readonly #ownsPassthrough: boolean;
  readonly #pools: EndpointPools;
  readonly #origins = new Map<string, OriginInfo>();
  readonly #unsubscribe: Array<() => void> = [];
  #closed = false;

  constructor(options: MeshAgentOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) throw invalid('options', 'want an object');
    const policy = options.outboundTrafficPolicy ?? 'ALLOW_ANY';
    if (policy !== 'ALLOW_ANY' && policy !== 'REGISTRY_ONLY') {
      throw invalid('outboundTrafficPolicy', `want "ALLOW_ANY" or "REGISTRY_ONLY", got ${JSON.stringify(policy)}`);
    }
    if (options.passthrough !== undefined && typeof (options.passthrough as Dispatcher).dispatch !== 'function') {
      throw invalid('passthrough', 'want an undici Dispatcher');
    }
    if (options.poolFactory !== undefined && typeof options.poolFactory !== 'function') throw invalid('poolFactory', 'want a function');
    this.#meshOption = options.mesh;
    this.#policy = policy;
    this.#ownsPassthrough = options.passthrough === undefined;
    this.#passthrough = options.passthrough ?? new Agent();
    this.#pools = new EndpointPools(options.poolFactory);
  }

  get mesh(): Mesh {
    return this.#meshOption ?? getDefaultMesh();
  }

  override dispatch(opts: Dispatcher.DispatchOptions, h: Handler): boolean {
    // The caller's handler as is: forwarded requests hand it (wrapped once) to the pool;
    // local replies and errors go through a DecoratorHandler, which speaks both styles.
    let info: OriginInfo;
    try {
      if (this.#closed) throw new MeshletError('MESHLET_INVALID_OPTION', 'MeshAgent is closed');
      info = this.#origin(opts.origin);
    } catch (err) {
      fail(h, err);
      return true;
    }
    const snapshot = info.target.snapshot;
    if (snapshot) {
      this.#route(snapshot, info, opts, h);
      return true;
    }
    switch (info.target.state) {
      case 'not_found':
        this.#unknownHost(info, opts, h);
        return true;
      case 'error':
        fail(h, info.target.error);
        return true;
      default:
        info.target.ready().then(
          (snap) => this.#route(snap, info, opts, h),
          (err: MeshletError) => {
            if (info.target.state === 'not_found') this.#unknownHost(info, opts, h);
            else fail(h, err);
          },
        );
        return true;
    }
  }

  override async close(): Promise<void> {
    this.#closed = true;
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#pools.close();
    if (this.#ownsPassthrough) await this.#passthrough.close();
  }

  override async destroy(): Promise<void> {
    this.#closed = true;
    for (const u of this.#unsubscribe.splice(0)) u();
    await this.#pools.destroy();
    if (this.#ownsPassthrough) await this.#passthrough.destroy();
  }

  #origin(origin: string | URL | undefined): OriginInfo {
    const key = origin === undefined ? '' : typeof origin === 'string' ? origin : origin.origin;
    let info = this.#origins.get(key);
    if (info) return info;
    if (!key) throw invalid('origin', 'a request through MeshAgent needs an origin (an absolute URL)');
    const url = new URL(key);
    const port = url.port || DEFAULT_PORTS[url.protocol];
    if (port === undefined) throw invalid('origin', `unsupported scheme ${url.protocol} in ${key}`);
    const authority = `${url.hostname}:${port}`;
    const target = this.mesh.target(authority);
    info = { target, scheme: url.protocol.slice(0, -1), authority, host: url.host };
    this.#origins.set(key, info);
    // Endpoints that leave every target's EDS get their pools closed (gracefully).
    this.#unsubscribe.push(target.onChange(() => this.#retainPools()));
    return info;
  }

  #retainPools(): void {
    const keep = new Set<string>();
    for (const { target, scheme } of this.#origins.values()) {
      for (const key of target.snapshot?.endpointKeys ?? []) keep.add(`${scheme}://${key}`);
    }
    this.#pools.retain(keep);
  }

  #unknownHost(info: OriginInfo, opts: Dispatcher.DispatchOptions, h: Handler): void {
    if (this.#policy === 'REGISTRY_ONLY') {
      fail(h, new MeshletError('MESHLET_REGISTRY_ONLY', `${info.authority} is not in the mesh and the outbound traffic policy is REGISTRY_ONLY`));
      return;
    }
    trace(() => `${info.authority}: not in the mesh, passing through`);
    this.#passthrough.dispatch(opts, h);
  }

  #route(snapshot: TargetSnapshot, info: OriginInfo, opts: Dispatcher.DispatchOptions, h: Handler): void {
    let headers: Record<string, string | string[]>;
    let req: MeshRequest;
    let decision: RouteDecision;
    try {
      headers = normalizeHeaders(opts.headers);
      const path = withQuery(opts.path, opts.query);
      req = {
        method: opts.method,
        path,
        authority: hostHeader(headers) ?? info.host,
        scheme: info.scheme,
        headers: headersFromRecord(headers),
        grpc: isGrpc(headers['content-type']),
      };
      decision = snapshot.routeTable.route(req, this.mesh.random);
    } catch (err) {
      fail(h, err);
      return;
    }
    switch (decision.kind) {
      case 'no_route':
        fail(h, meshError('MESHLET_NO_ROUTE', `no route for ${req.authority}${req.path}${decision.virtualHost ? ` in virtual host ${decision.virtualHost.name}` : ' (no virtual host matches)'}`));
        return;
      case 'non_forwarding':
        fail(h, meshError('MESHLET_NO_ROUTE', `route "${decision.route.name}" is non-forwarding`));
        return;
      case 'direct_response': {
        const out: Record<string, string | string[]> = {};
        if (decision.location) out['location'] = decision.location;
        if (decision.body !== undefined) out['content-type'] = 'text/plain';
        applyResponseHeaderMutations(decision, mutableHeadersFromRecord(out));
        localReply(h, decision.status, out, decision.body);
        return;
      }
      case 'redirect': {
        const out: Record<string, string | string[]> = { location: decision.location };
        applyResponseHeaderMutations(decision, mutableHeadersFromRecord(out));
        localReply(h, decision.status, out, undefined);
        return;
      }
      case 'forward':
        this.#forward(snapshot, info, opts, h, headers, decision);
        return;
    }
  }

  #forward(
    snapshot: TargetSnapshot,
    info: OriginInfo,
    opts: Dispatcher.DispatchOptions,
    h: Handler,
    headers: Record<string, string | string[]>,
    decision: ForwardDecision,
  ): void {
    if (decision.cluster === undefined) {
      fail(h, meshError('MESHLET_NO_CLUSTER', decision.clusterNotFound ? `no cluster: the route's cluster header is absent or empty` : `route "${decision.route.name}" names no cluster`));
      return;
    }
    const cluster = snapshot.clusters.get(decision.cluster);
    if (!cluster) {
      fail(h, meshError('MESHLET_NO_CLUSTER', `cluster "${decision.cluster}" is not known`));
      return;
    }
    if (!cluster.lb) {
      fail(h, meshError('MESHLET_NO_HEALTHY_UPSTREAM', `cluster "${decision.cluster}": ${cluster.error?.message ?? 'no endpoints'}`));
      return;
    }
    const hash = decision.hashPolicies.length > 0 ? computeRequestHash(decision.hashPolicies, decision.request) : undefined;
    // The policy path (attempts under runWithRetries) costs tens of µs a request; a route
    // that asks for none of it takes the direct path, with its circuit breaker slot.
    // Known gap: Envoy's default 15 s route timeout is not enforced on the direct path.
    if (opts.upgrade || opts.method === 'CONNECT' || !needsPolicyPath(snapshot, decision, cluster)) {
      const slot = cluster.breaker?.tryAcquire('request', 'DEFAULT');
      if (slot !== undefined && isBreakerOverflow(slot)) {
        fail(h, overflowError(decision.cluster, slot));
        return;
      }
      this.#sendOnce(snapshot, info, opts, h, headers, decision, cluster.lb, hash, slot);
      return;
    }
    this.#forwardWithPolicies(snapshot, info, opts, h, headers, decision, cluster, cluster.lb, hash);
  }

  /**
   * The direct path: one attempt, no timeouts or retries. Routes that ask for none of the
   * policies take it, and so do upgrades and CONNECT (the stream belongs to the caller once
   * it is upgraded). `release` gives back the request's circuit-breaker slot when it ends.
   */
  #sendOnce(
    snapshot: TargetSnapshot,
    info: OriginInfo,
    opts: Dispatcher.DispatchOptions,
    h: Handler,
    headers: Record<string, string | string[]>,
    decision: ForwardDecision,
    lb: ClusterLoadBalancer,
    hash: bigint | undefined,
    release?: () => void,
  ): void {
    const host = lb.pick(hash === undefined ? undefined : { hash });
    if (!host) {
      release?.();
      fail(h, meshError('MESHLET_NO_HEALTHY_UPSTREAM', `cluster "${decision.cluster}" has no healthy upstream`));
      return;
    }
    const mutable = mutableHeadersFromRecord(headers);
    const target = finalizeForwardRequest(decision, mutable, { upstreamRemoteAddress: host.key });
    const authority = decision.autoHostRewrite && host.endpoint.hostname ? host.endpoint.hostname : target.authority;
    headers['host'] = authority;
    const body = this.#mirror(snapshot, info, opts.method, opts.body, decision, headers, target.path);
    const stats = host.stats;
    const origin = originOf(info.scheme, host);
    const pool = this.#pools.get(origin);
    stats.activeRequests++;
    const upstream = isNewStyle(h)
      ? new UpstreamHandler(h, decision, stats, host.key, release)
      : new LegacyUpstreamHandler(h as LegacyHandler, decision, stats, host.key, release);
    pool.dispatch(
      { ...opts, origin, path: target.path, headers, body, query: undefined as unknown as Record<string, unknown> },
      upstream as Handler,
    );
  }

  /**
   * A forwarded request under the route's timeouts and retry policy (issue 4): attempts run
   * by runWithRetries on the mesh's clock, each on a host picked afresh (previous_hosts
   * excludes the ones tried). Only the final attempt's response reaches the caller.
   */
  #forwardWithPolicies(
    snapshot: TargetSnapshot,
    info: OriginInfo,
    opts: Dispatcher.DispatchOptions,
    h: Handler,
    headers: Record<string, string | string[]>,
    decision: ForwardDecision,
    cluster: ClusterSnapshot,
    lb: ClusterLoadBalancer,
    hash: bigint | undefined,
  ): void {
    const down = new RequestScope(new DecoratorHandler(h) as Handler);
    const dc = new DownstreamController();
    down.onRequestStart(dc, {});
    if (dc.aborted) {
      down.onResponseError(dc, dc.reason!);
      return;
    }
    const send = (): void => this.#send(snapshot, info, opts, down, dc, headers, decision, cluster, lb, hash);
    // The fault filter runs before the router (HCM filter order): its delay comes before any
    // circuit breaker slot or timeout, its abort answers without an upstream.
    const fault = this.#injectFault(snapshot, decision);
    if (fault === undefined) {
      send();
      return;
    }
    const abortReply = (): void => {
      const abort = fault.abort!;
      const grpc = decision.request.grpc === true && abort.grpcStatus !== undefined;
      const body = grpc ? '' : 'fault filter abort';
      const out: Record<string, string> = grpc
        ? { 'content-type': 'application/grpc', 'grpc-status': String(abort.grpcStatus), 'grpc-message': 'fault filter abort' }
        : { 'content-type': 'text/plain', 'content-length': String(body.length) };
      trace(() => `fault filter: abort with ${grpc ? `grpc-status ${abort.grpcStatus}` : abort.httpStatus} (FI)`);
      down.onResponseStart(dc, abort.httpStatus, out, '');
      if (body.length > 0) down.onResponseData(dc, Buffer.from(body));
      fault.release();
      down.onResponseEnd(dc, {});
    };
    if (fault.delayMs === undefined) {
      queueMicrotask(abortReply);
      return;
    }
    trace(() => `fault filter: delaying ${fault.delayMs} ms (DI)`);
    const clock = this.mesh.clock;
    const onCancel = (): void => {
      clock.clearTimeout(timer);
      fault.release();
      down.onResponseError(dc, dc.reason ?? new Error('aborted'));
    };
    const timer = clock.setTimeout(() => {
      dc.signal.removeEventListener('abort', onCancel);
      if (fault.abort !== undefined) {
        abortReply();
        return;
      }
      fault.release(); // a delay without an abort gives its slot back when it ends
      send();
    }, fault.delayMs);
    dc.signal.addEventListener('abort', onCancel, { once: true });
  }

  /** The fault (envoy.filters.http.fault) this request gets, with its max_active_faults slot; undefined = none. */
  #injectFault(snapshot: TargetSnapshot, decision: ForwardDecision): InjectedFault | undefined {
    const filter = faultFilterOf(snapshot);
    if (filter === undefined) return undefined;
    const config = faultConfigForRoute(filter.name, filter, [
      decision.weightedCluster?.typedPerFilterConfig,
      decision.route.typedPerFilterConfig,
      decision.virtualHost.typedPerFilterConfig,
    ]);
    if (config === undefined) return undefined;
    const mesh = this.mesh;
    return injectFault(compileFault(config), decision.request, mesh.random, mesh.activeFaults(`${snapshot.listenerName}/${filter.name}`), {
      ...(decision.cluster !== undefined ? { cluster: decision.cluster } : {}),
    });
  }

  #send(
    snapshot: TargetSnapshot,
    info: OriginInfo,
    opts: Dispatcher.DispatchOptions,
    down: RequestScope,
    dc: DownstreamController,
    headers: Record<string, string | string[]>,
    decision: ForwardDecision,
    cluster: ClusterSnapshot,
    lb: ClusterLoadBalancer,
    hash: bigint | undefined,
  ): void {
    // Circuit breakers (Cluster.circuit_breakers): 'request' for the request's life, 'pending'
    // while an attempt waits for a connection, 'retry' for each retry. meshlet's routes carry
    // no priority, so the DEFAULT thresholds apply.
    const breaker = cluster.breaker;
    const outlier = cluster.outlier;
    const priority = 'DEFAULT';
    const slot = breaker?.tryAcquire('request', priority);
    if (slot !== undefined) {
      if (isBreakerOverflow(slot)) {
        down.onResponseError(dc, overflowError(decision.cluster!, slot));
        return;
      }
      down.hold(slot);
    }
    const request = decision.request;
    const policy = compiledRetryPolicy(decision.retryPolicy);
    const conditions = policy.forRequest(request);
    const mayRetry = conditions !== undefined && conditions.numRetries > 0;
    const timeouts = resolveTimeouts(decision, request);
    const mesh = this.mesh;

    const run = (body: Dispatcher.DispatchOptions['body'], replayable: boolean): void => {
      const attempt = (n: number, signal: AbortSignal, _exclude: ReadonlySet<string>, hosts: RetryHostSelector): Promise<UpstreamOutcome> =>
        new Promise<UpstreamOutcome>((settle, reject) => {
          const host = hosts.select((ctx) => pickAvoiding(lb, ctx.exclude, outlier?.ejected(), hash));
          if (!host) {
            reject(meshError('MESHLET_NO_HEALTHY_UPSTREAM', `cluster "${decision.cluster}" has no healthy upstream`));
            return;
          }
          // Each attempt finalizes its own copy: header formatters may name the upstream host.
          const hdrs = copyHeaders(headers);
          for (const name of CONSUMED_REQUEST_HEADERS) delete hdrs[name];
          const target = finalizeForwardRequest(decision, mutableHeadersFromRecord(hdrs), { upstreamRemoteAddress: host.key });
          hdrs['host'] = decision.autoHostRewrite && host.endpoint.hostname ? host.endpoint.hostname : target.authority;
          const pending = breaker?.tryAcquire('pending', priority);
          if (pending !== undefined && isBreakerOverflow(pending)) {
            settle({ kind: 'overflow', host: host.key, error: overflowError(decision.cluster!, pending) });
            return;
          }
          const sendBody = n === 1 ? this.#mirror(snapshot, info, opts.method, body, decision, hdrs, target.path) : body;
          const origin = originOf(info.scheme, host);
          // Outlier detection sees every attempt's outcome, retried or not (Envoy's router
          // reports each upstream request's result to the host's detector).
          const report =
            outlier === undefined
              ? settle
              : (o: UpstreamOutcome): void => {
                  recordOutcome(outlier, o, dc.aborted);
                  settle(o);
                };
          // With no retry possible, a response that starts is the answer: it streams through at once.
          const upstream = new UpstreamAttempt(down, dc, decision, host.stats, host.key, signal, report, reject, pending, !mayRetry || !replayable);
          this.#pools.get(origin).dispatch(
            { ...opts, origin, path: target.path, headers: hdrs, body: sendBody, query: undefined as unknown as Record<string, unknown> },
            upstream,
          );
        });
      runWithRetries<UpstreamOutcome>({
        // A body that cannot be sent again is sent once: no retries, whatever asks for them.
        policy: replayable ? policy : undefined,
        honorEnvoyHeaders: replayable,
        request,
        timeouts,
        clock: mesh.clock,
        random: mesh.random,
        signal: dc.signal,
        attempt,
        discard: (o) => o.attempt?.discard(),
        ...(breaker ? { admission: retryAdmissionFrom(() => breaker.tryAcquire('retry', priority)) } : {}),
      }).then(
        (result) => {
          const o = result.outcome;
          if (o.kind === 'response') {
            (o as UpstreamOutcome).attempt?.deliver();
            return;
          }
          down.onResponseError?.(dc, finalError(o as UpstreamOutcome | TimeoutOutcome, result.flags, result.attempts, decision.cluster!));
        },
        (err: unknown) => down.onResponseError?.(dc, err instanceof Error ? err : new Error(String(err))),
      );
    };

    if (!mayRetry || isReplayable(opts.body)) {
      run(opts.body, true);
      return;
    }
    bufferBody(opts.body).then(
      (b) => {
        if (dc.aborted) down.onResponseError?.(dc, dc.reason!);
        else run(b.body, b.replayable);
      },
      (err: unknown) => down.onResponseError?.(dc, err instanceof Error ? err : new Error(String(err))),
    );
  }

  /**
   * Envoy's request mirroring: a copy to each mirror cluster, host suffixed "-shadow";
   * never waited for, never failing the request. Returns the body to send upstream: a
   * streamed body (fetch's) is passed through a tee that keeps a copy, and the mirrors go
   * out once the request has sent it all.
   */
  #mirror(
    snapshot: TargetSnapshot,
    info: OriginInfo,
    method: Dispatcher.HttpMethod,
    body: Dispatcher.DispatchOptions['body'],
    decision: ForwardDecision,
    headers: Record<string, string | string[]>,
    path: string,
  ): Dispatcher.DispatchOptions['body'] {
    const clusters = selectMirrorClusters(decision);
    if (clusters.length === 0) return body;
    const send = (copyBody: string | Uint8Array | null): void => {
      for (const name of clusters) {
        const host = snapshot.clusters.get(name)?.lb?.pick();
        if (!host) continue;
        const copy = { ...headers, host: `${hostHeader(headers) ?? info.host}-shadow` };
        const origin = originOf(info.scheme, host);
        this.#pools.get(origin).dispatch({ method, path, headers: copy, body: copyBody, origin }, DISCARD);
      }
    };
    if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array) {
      send(body ?? null);
      return body;
    }
    if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') return body; // FormData: not mirrored
    // undici takes any async iterable as a body (fetch hands it one); its types name only Readable.
    return teeBody(body as AsyncIterable<Uint8Array | string>, send) as unknown as Dispatcher.DispatchOptions['body'];
  }
}

/** Pass a streamed body through, keeping a copy; hand the copy over when the stream ends. */
async function* teeBody(body: AsyncIterable<Uint8Array | string>, done: (copy: Uint8Array) => void): AsyncGenerator<Uint8Array | string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    yield chunk;
  }
  done(Buffer.concat(chunks));
}

/** What both upstream handler styles keep: the decision, and the host's active-request count. */
abstract class UpstreamAccounting<H> {
  protected readonly h: H;
  protected readonly decision: ForwardDecision;
  protected readonly hostKey: string;
  readonly #stats: HostStats;
  readonly #release: (() => void) | undefined;
  #done = false;

  constructor(h: H, decision: ForwardDecision, stats: HostStats, hostKey: string, release?: () => void) {
    this.h = h;
    this.decision = decision;
    this.#stats = stats;
    this.hostKey = hostKey;
    this.#release = release;
  }

  /** The request is over (completed, failed or upgraded): count it out once, and give back its breaker slot. */
  protected finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#stats.activeRequests--;
    this.#release?.();
  }
}

/** Wraps the caller's handler: applies response header mutations, keeps the host's active count. */
class UpstreamHandler extends UpstreamAccounting<Handler> implements Handler {

  onRequestStart(controller: Controller, context: unknown): void {
    this.h.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: import('node:stream').Duplex): void {
    this.h.onRequestUpgrade?.(controller, statusCode, headers as never, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (this.decision.responseHeaderOps.length > 0) {
      applyResponseHeaderMutations(this.decision, mutableHeadersFromRecord(headers as Record<string, string | string[]>), {
        upstreamRemoteAddress: this.hostKey,
      });
    }
    this.h.onResponseStart?.(controller, statusCode, headers as never, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.h.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: Record<string, string | string[] | undefined>): void {
    this.finish();
    this.h.onResponseEnd?.(controller, trailers as never);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.finish();
    this.h.onResponseError?.(controller, upstreamError(error, this.hostKey));
  }
}

/** undici's older handler style (onConnect/onHeaders/onData/onComplete/onError), which undici.request uses. */
interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
  onError?(err: Error): void;
  onUpgrade?(statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[] | null): void;
  onBodySent?(chunkSize: number, totalBytesSent: number): void;
}

function isNewStyle(h: Handler): boolean {
  return typeof h.onRequestStart === 'function' || typeof h.onResponseStart === 'function';
}

/**
 * The same as UpstreamHandler for a handler of the older style, without converting it
 * (undici passes such a handler to the connection unchanged): one wrapper, no more.
 */
class LegacyUpstreamHandler extends UpstreamAccounting<LegacyHandler> implements LegacyHandler {
  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.h.onConnect?.(abort, context);
  }

  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void {
    this.finish();
    this.h.onUpgrade?.(statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.h.onResponseStarted?.();
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    let raw = headers;
    if (statusCode >= 200 && this.decision.responseHeaderOps.length > 0) {
      const record: Record<string, string | string[]> = {};
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const name = raw[i]!.toString('latin1').toLowerCase();
        const value = raw[i + 1]!.toString('latin1');
        const prev = record[name];
        record[name] = prev === undefined ? value : typeof prev === 'string' ? [prev, value] : [...prev, value];
      }
      applyResponseHeaderMutations(this.decision, mutableHeadersFromRecord(record), { upstreamRemoteAddress: this.hostKey });
      raw = [];
      for (const [name, value] of Object.entries(record)) {
        for (const v of typeof value === 'string' ? [value] : value) raw.push(Buffer.from(name, 'latin1'), Buffer.from(v, 'latin1'));
      }
    }
    return this.h.onHeaders ? this.h.onHeaders(statusCode, raw, resume, statusText) : true;
  }

  onData(chunk: Buffer): boolean {
    return this.h.onData ? this.h.onData(chunk) : true;
  }

  onComplete(trailers: string[] | null): void {
    this.finish();
    this.h.onComplete?.(trailers);
  }

  onError(err: Error): void {
    this.finish();
    this.h.onError?.(upstreamError(err, this.hostKey));
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.h.onBodySent?.(chunkSize, totalBytesSent);
  }
}

const DISCARD: Handler = {
  onRequestStart() {},
  onResponseStart() {},
  onResponseData() {},
  onResponseEnd() {},
  onResponseError() {},
};

/** The listener's fault filter (the first envoy.filters.http.fault in its HCM), once per snapshot. */
const FAULT_FILTERS = new WeakMap<TargetSnapshot, HttpFilter | null>();
function faultFilterOf(snapshot: TargetSnapshot): HttpFilter | undefined {
  let f = FAULT_FILTERS.get(snapshot);
  if (f === undefined) {
    f = snapshot.config.listener.apiListener?.httpFilters.find((x) => x.typeUrl === FAULT_FILTER_TYPE_URL) ?? null;
    FAULT_FILTERS.set(snapshot, f);
  }
  return f ?? undefined;
}

/** The error a request ends with when its last attempt had no response (Envoy's local reply and flags). */
function finalError(o: UpstreamOutcome | TimeoutOutcome, flags: readonly RetryFlag[], attempts: number, cluster: string): Error {
  const cause = 'error' in o ? o.error : undefined;
  if (o.kind === 'timeout') {
    return new MeshletError('MESHLET_UPSTREAM_TIMEOUT', `upstream request timeout (cluster "${cluster}", ${attempts} attempt(s))`);
  }
  const host = 'host' in o ? o.host : undefined;
  if (o.kind === 'overflow' && cause !== undefined) return cause;
  const what = cause?.message ?? o.kind;
  if (flags.includes('URX')) {
    return new MeshletError('MESHLET_RETRY_LIMIT_EXCEEDED', `retries exhausted after ${attempts} attempts (cluster "${cluster}"); last: ${what}`, { cause });
  }
  if (flags.includes('UO')) {
    return new MeshletError('MESHLET_OVERFLOW', `retry refused by the circuit breaker of cluster "${cluster}"; last: ${what}`, { cause });
  }
  if (o.kind === 'connect_failure') {
    return new MeshletError('MESHLET_UPSTREAM_CONNECT_FAILURE', `upstream connect error to ${host ?? cluster}: ${what}`, { cause });
  }
  return cause ?? new MeshletError('MESHLET_UPSTREAM_RESET', `upstream reset (${o.kind})`);
}

/** Request headers the router consumes (timeouts, retries); not sent upstream, as Envoy strips them. */
const CONSUMED_REQUEST_HEADERS: readonly string[] = [...TIMEOUT_REQUEST_HEADERS, ...RETRY_REQUEST_HEADERS];

/** One compiled retry policy per RetryPolicy value (they are immutable values of a route table). */
const COMPILED_POLICIES = new WeakMap<object, CompiledRetryPolicy>();
const NO_POLICY = compileRetryPolicy(undefined);
function compiledRetryPolicy(policy: RetryPolicy | undefined): CompiledRetryPolicy {
  if (policy === undefined) return NO_POLICY;
  let c = COMPILED_POLICIES.get(policy);
  if (c === undefined) {
    c = compileRetryPolicy(policy);
    COMPILED_POLICIES.set(policy, c);
  }
  return c;
}

function copyHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in headers) {
    const v = headers[k]!;
    out[k] = typeof v === 'string' ? v : [...v];
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
  const ctx = tried === undefined || tried.size === 0 ? {} : { exclude: tried };
  return lb.pick(hash === undefined ? ctx : { ...ctx, hash });
}

/** Tell the cluster's outlier detector how an attempt ended (Envoy's external and local-origin results). */
function recordOutcome(outlier: OutlierDetector, o: UpstreamOutcome, cancelled: boolean): void {
  if (o.host === undefined) return;
  switch (o.kind) {
    case 'response':
      outlier.record(o.host, o.status);
      return;
    case 'connect_failure':
      outlier.record(o.host, 'connect_failure');
      return;
    case 'reset':
      // A local reset is the loop aborting the attempt: a timeout, unless the caller gave up.
      if (o.reason === 'local') {
        if (!cancelled) outlier.record(o.host, 'timeout');
      } else {
        outlier.record(o.host, 'reset');
      }
      return;
    case 'refused_stream':
      outlier.record(o.host, 'reset');
      return;
    default:
      return;
  }
}

/**
 * Whether a request needs the policy path: a retry policy that can retry, a timeout the
 * route sets, outlier detection on the cluster, or the fault filter on the listener.
 */
function needsPolicyPath(snapshot: TargetSnapshot, decision: ForwardDecision, cluster: ClusterSnapshot): boolean {
  const retry = decision.retryPolicy;
  if (retry !== undefined && retry.numRetries > 0 && retry.retryOn.length > 0) return true;
  if (decision.timeout !== undefined && decision.timeout > 0) return true;
  if (retry?.perTryTimeout !== undefined || decision.action.maxStreamDuration !== undefined) return true;
  if (cluster.outlier !== undefined) return true;
  return faultFilterOf(snapshot) !== undefined;
}

function overflowError(cluster: string, o: BreakerOverflow): MeshletError {
  return new MeshletError('MESHLET_OVERFLOW', `cluster "${cluster}": circuit breaker ${o.resource} limit ${o.limit} (priority ${o.priority}) reached`);
}

function meshError(code: MeshletErrorCode, message: string): MeshletError {
  return new MeshletError(code, message);
}

function invalid(option: string, reason: string): MeshletError {
  return new MeshletError('MESHLET_INVALID_OPTION', `MeshAgent option ${option}: ${reason}`);
}

class LocalController implements Controller {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  abort(reason: Error): void {
    this.aborted = true;
    this.reason = reason;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

function fail(handler: Handler, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  const h = new DecoratorHandler(handler) as Handler;
  const c = new LocalController();
  queueMicrotask(() => h.onResponseError?.(c, error));
}

/** A response made here (direct_response, redirect), delivered as an upstream one would be. */
function localReply(handler: Handler, status: number, headers: Record<string, string | string[]>, body: string | undefined): void {
  const h = new DecoratorHandler(handler) as Handler;
  const c = new LocalController();
  const bytes = body === undefined ? undefined : Buffer.from(body);
  if (bytes) headers['content-length'] = String(bytes.length);
  queueMicrotask(() => {
    h.onRequestStart?.(c, {});
    if (c.aborted) return h.onResponseError?.(c, c.reason ?? new Error('aborted'));
    h.onResponseStart?.(c, status, headers as never, '');
    if (bytes && bytes.length > 0 && !c.aborted) h.onResponseData?.(c, bytes);
    if (c.aborted) return h.onResponseError?.(c, c.reason ?? new Error('aborted'));
    h.onResponseEnd?.(c, {});
  });
}

/** undici accepts headers as a record, a flat [name, value, ...] array, or an iterable of pairs. */
function normalizeHeaders(input: Dispatcher.DispatchOptions['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (input == null) return out;
  if (Array.isArray(input)) {
    if (input.length > 0 && Array.isArray(input[0])) {
      for (const pair of input as unknown as [string, string][]) addHeader(out, pair[0], pair[1]);
    } else {
      for (let i = 0; i + 1 < input.length; i += 2) addHeader(out, String(input[i]), input[i + 1]);
    }
    return out;
  }
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of input as Iterable<[string, string]>) addHeader(out, k, v);
    return out;
  }
  // The common case, a plain record: one pass, no intermediate arrays.
  const record = input as Record<string, unknown>;
  for (const k in record) {
    const v = record[k];
    if (v === undefined || v === null) continue;
    const n = k.toLowerCase();
    if (typeof v === 'string' && out[n] === undefined) out[n] = v;
    else addHeader(out, n, v);
  }
  return out;
}

function addHeader(out: Record<string, string | string[]>, name: string, value: unknown): void {
  if (value === undefined || value === null) return;
  const n = name.toLowerCase();
  const values = Array.isArray(value) ? value.map(String) : [String(value)];
  const prev = out[n];
  if (prev === undefined) out[n] = values.length === 1 ? values[0]! : values;
  else out[n] = [...(typeof prev === 'string' ? [prev] : prev), ...values];
}

/** `scheme://host:port` of a picked host, made once per host and scheme (hosts live as long as their snapshot). */
const ORIGINS = { http: new WeakMap<object, string>(), https: new WeakMap<object, string>() };
function originOf(scheme: string, host: { readonly key: string }): string {
  const cache = scheme === 'https' ? ORIGINS.https : ORIGINS.http;
  let origin = cache.get(host);
  if (origin === undefined) {
    origin = `${scheme}://${host.key}`;
    cache.set(host, origin);
  }
  return origin;
}

function hostHeader(headers: Record<string, string | string[]>): string | undefined {
  const h = headers['host'];
  return typeof h === 'string' ? h : h?.[0];
}

function withQuery(path: string, query: Record<string, unknown> | undefined): string {
  if (!query) return path;
  const qs = new URLSearchParams(query as Record<string, string>).toString();
  if (!qs) return path;
  return `${path}${path.includes('?') ? '&' : '?'}${qs}`;
}

function isGrpc(contentType: string | string[] | undefined): boolean {
  const ct = typeof contentType === 'string' ? contentType : contentType?.[0];
  return ct !== undefined && ct.startsWith('application/grpc');
}
