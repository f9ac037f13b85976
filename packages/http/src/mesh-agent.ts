// MeshAgent: an undici Dispatcher that sends every request through the mesh. The
// request's origin (host:port) names a target; its snapshot routes the request to a
// cluster, the cluster's balancer picks an endpoint, and the endpoint's own pool sends
// it. Hosts the control plane does not serve follow the outbound traffic policy:
// ALLOW_ANY passes them through unchanged, REGISTRY_ONLY refuses them.
//
// Per request: one route(), one pick(), a header record, and a RoutedRequest that applies
// the route's and cluster's policies (routed-request.ts); everything else was built when
// the config changed (DESIGN.md, "The request path").
import {
  applyResponseHeaderMutations,
  getDefaultMesh,
  headersFromRecord,
  mutableHeadersFromRecord,
  type CallRecorder,
  type ForwardDecision,
  type Mesh,
  type MeshRequest,
  type MeshTarget,
  type RouteDecision,
  type TargetSnapshot,
} from '@meshlet/core';
import { MeshletError, tracer, type MeshletErrorCode } from '@meshlet/xds-client';
import { Agent, Dispatcher } from 'undici';
import { EndpointPools, poolKey, type PoolFactory } from './endpoint-pools.js';
import { asLegacy, deliverLocalResponse } from './legacy-handler.js';
import { deadlinesOf, RoutedRequest, type RequestContext } from './routed-request.js';
import { PASSTHROUGH_CLUSTER, RecordingHandler } from './passthrough-telemetry.js';

const BLACKHOLE_CLUSTER = 'BlackHoleCluster';

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
  #context: RequestContext | undefined;
  #lastOrigin = '';
  #lastInfo: OriginInfo | undefined;
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
    // The caller's handler is spoken to in undici's older style (legacy-handler.ts): as it is,
    // or adapted once when it is of the newer style.
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
    // The last origin again (the common case): a string comparison instead of hashing a string
    // undici made afresh for this request.
    if (key === this.#lastOrigin && this.#lastInfo !== undefined) return this.#lastInfo;
    let info = this.#origins.get(key);
    if (info) {
      this.#lastOrigin = key;
      this.#lastInfo = info;
      return info;
    }
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
      for (const [name, cluster] of target.snapshot?.clusters ?? []) {
        // hostKeys, not lb.hosts: a balancer is built on first use, and this runs for every cluster.
        for (const key of cluster.hostKeys) keep.add(poolKey(name, `${scheme}://${key}`));
      }
    }
    this.#pools.retain(keep);
  }

  #unknownHost(info: OriginInfo, opts: Dispatcher.DispatchOptions, h: Handler): void {
    const rec = this.mesh.telemetry.startCall({ reporter: 'source', protocol: 'http', method: opts.method, path: opts.path, authority: info.authority });
    if (this.#policy === 'REGISTRY_ONLY') {
      // Istio sends such a request to its BlackHoleCluster.
      rec?.route(BLACKHOLE_CLUSTER);
      fail(h, new MeshletError('MESHLET_REGISTRY_ONLY', `${info.authority} is not in the mesh and the outbound traffic policy is REGISTRY_ONLY`), rec);
      return;
    }
    trace(() => `${info.authority}: not in the mesh, passing through`);
    if (rec === undefined) {
      this.#passthrough.dispatch(opts, h);
      return;
    }
    rec.route(PASSTHROUGH_CLUSTER);
    rec.attempt(info.authority);
    this.#passthrough.dispatch(opts, new RecordingHandler(asLegacy(h), rec, opts.body) as unknown as Handler);
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
    // Telemetry (Istio's metrics, a span, an access log line) for a call that reached the mesh;
    // undefined, at the cost of one branch and no CallInfo, while nothing listens.
    const telemetry = this.mesh.telemetry;
    const rec = telemetry.wantsCalls()
      ? telemetry.startCall({
          reporter: 'source',
          protocol: req.grpc ? 'grpc' : 'http',
          method: req.method,
          path: req.path,
          authority: req.authority,
          headers: req.headers,
        })
      : undefined;
    switch (decision.kind) {
      case 'no_route':
        fail(h, meshError('MESHLET_NO_ROUTE', `no route for ${req.authority}${req.path}${decision.virtualHost ? ` in virtual host ${decision.virtualHost.name}` : ' (no virtual host matches)'}`), rec);
        return;
      case 'non_forwarding':
        fail(h, meshError('MESHLET_NO_ROUTE', `route "${decision.route.name}" is non-forwarding`), rec);
        return;
      case 'direct_response': {
        const out: Record<string, string | string[]> = {};
        if (decision.location) out['location'] = decision.location;
        if (decision.body !== undefined) out['content-type'] = 'text/plain';
        applyResponseHeaderMutations(decision, mutableHeadersFromRecord(out));
        rec?.end({ status: decision.status });
        localReply(h, decision.status, out, decision.body);
        return;
      }
      case 'redirect': {
        const out: Record<string, string | string[]> = { location: decision.location };
        applyResponseHeaderMutations(decision, mutableHeadersFromRecord(out));
        rec?.end({ status: decision.status });
        localReply(h, decision.status, out, undefined);
        return;
      }
      case 'forward':
        this.#forward(snapshot, info, opts, h, headers, decision, rec);
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
    rec: CallRecorder | undefined,
  ): void {
    if (decision.cluster === undefined) {
      fail(h, meshError('MESHLET_NO_CLUSTER', decision.clusterNotFound ? `no cluster: the route's cluster header is absent or empty` : `route "${decision.route.name}" names no cluster`), rec);
      return;
    }
    const cluster = snapshot.clusters.get(decision.cluster);
    if (!cluster) {
      fail(h, meshError('MESHLET_NO_CLUSTER', `cluster "${decision.cluster}" is not known`), rec);
      return;
    }
    if (!cluster.lb) {
      rec?.route(cluster.cluster ?? decision.cluster);
      fail(h, meshError('MESHLET_NO_HEALTHY_UPSTREAM', `cluster "${decision.cluster}": ${cluster.error?.message ?? 'no endpoints'}`), rec);
      return;
    }
    this.#context ??= { pools: this.#pools, mesh: this.mesh, deadlines: deadlinesOf(this.mesh.clock) };
    new RoutedRequest(this.#context, snapshot, info.scheme, opts, asLegacy(h), headers, decision, cluster, rec).start();
  }
}

function meshError(code: MeshletErrorCode, message: string): MeshletError {
  return new MeshletError(code, message);
}

function invalid(option: string, reason: string): MeshletError {
  return new MeshletError('MESHLET_INVALID_OPTION', `MeshAgent option ${option}: ${reason}`);
}

/** Fail a request (asynchronously, as a dispatcher does); its telemetry, if any, records Envoy's local reply. */
function fail(handler: Handler, err: unknown, rec?: CallRecorder): void {
  const error = err instanceof Error ? err : new Error(String(err));
  if (rec !== undefined) {
    const e = error as { status?: number; responseFlag?: string };
    rec.end(e.responseFlag ? { status: e.status ?? 0, flags: e.responseFlag } : { status: e.status ?? 0 });
  }
  const h = asLegacy(handler);
  queueMicrotask(() => h.onError?.(error));
}

/** A response made here (direct_response, redirect), delivered as an upstream one would be. */
function localReply(handler: Handler, status: number, headers: Record<string, string | string[]>, body: string | undefined): void {
  const h = asLegacy(handler);
  queueMicrotask(() => {
    let aborted: Error | undefined;
    h.onConnect?.((err) => (aborted ??= err ?? new Error('aborted')));
    if (aborted !== undefined) {
      h.onError?.(aborted);
      return;
    }
    deliverLocalResponse(h, status, headers, body, () => aborted);
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
