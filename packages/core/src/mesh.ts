// The mesh runtime, shared by @meshlet/http and @meshlet/grpc: one xDS client, and per
// target authority an immutable snapshot (compiled route table, one load balancer per
// cluster) rebuilt whenever the target's xDS chain changes. The request path only reads
// `target.snapshot`; an update swaps the reference, so a request keeps the snapshot it
// started with.
import {
  listenerNamesResourceType,
  MeshletError,
  tracer,
  XdsClient,
  systemClock,
  type Bootstrap,
  type Clock,
  type ClusterResource,
  type EndpointsResource,
  type HttpFilter,
  type XdsClientOptions,
} from '@meshlet/xds-client';
import { CircuitBreakerRegistry, type ClusterCircuitBreaker } from './circuit-breaker.js';
import { OutlierDetectorRegistry, type OutlierDetector } from './outlier-detection.js';
import { ActiveFaults, compileFault, faultConfigForRoute, injectFault, FAULT_FILTER_TYPE_URL, type FaultContext, type InjectedFault } from './fault-injection.js';
import type { ForwardDecision } from './route-decision.js';
import { buildClusterLoadBalancer, hostKey, type ClusterLoadBalancer, type ClusterLoadBalancerOptions } from './lb-cluster.js';
import type { HostStats } from './lb-types.js';
import { systemRandom, type Random } from './random.js';
import { requestClock } from './retry-loop.js';
import { compileRouteTable, type RouteTable } from './route-table.js';
import { resolveTarget } from './target.js';
import { MeshTelemetry, type TelemetryOptions } from './telemetry/mesh-telemetry.js';
import { XdsDependencyManager, type XdsConfig } from './xds-dependency-manager.js';

const trace = tracer('mesh');

export interface ClusterSnapshot {
  readonly name: string;
  /** Undefined when the cluster could not be resolved; see `error`. */
  readonly cluster: ClusterResource | undefined;
  /**
   * The cluster's load balancer (for an aggregate cluster, over its leaf clusters' endpoints).
   * Built on first use, not with the snapshot: a route table naming 10,000 clusters costs one
   * balancer per cluster actually called.
   */
  readonly lb: ClusterLoadBalancer | undefined;
  /** Why the cluster has no load balancer: missing, NACKed with no last good value, a cycle... */
  readonly error: MeshletError | undefined;
  /**
   * The cluster's circuit breaker (Cluster.circuit_breakers), from the mesh's registry: its
   * counters outlive snapshots; undefined when the cluster could not be resolved.
   */
  readonly breaker: ClusterCircuitBreaker | undefined;
  /**
   * The cluster's outlier detector (Cluster.outlier_detection, Envoy's flavor), from the mesh's
   * registry, watching the balancer's hosts; undefined when the cluster configures none.
   */
  readonly outlier: OutlierDetector | undefined;
  /**
   * What `lb` was built from: the endpoints (an aggregate cluster's are its leaves' priorities,
   * gRFC A37) and the cluster whose policy balances them, so another transport can build its own
   * balancer with its own rules (@meshlet/grpc: gRPC's health and ring size rules).
   */
  readonly endpoints?: EndpointsResource | undefined;
  readonly lbCluster?: ClusterResource | undefined;
  /** Every endpoint's `host:port`, as the balancer names its hosts, known without building it. */
  readonly hostKeys: readonly string[];
}

export interface TargetSnapshot {
  readonly authority: string;
  readonly listenerName: string;
  readonly config: XdsConfig;
  readonly routeTable: RouteTable;
  readonly clusters: ReadonlyMap<string, ClusterSnapshot>;
  /** Every endpoint key (`host:port`) of every cluster, to close connection pools of endpoints that left. */
  readonly endpointKeys: ReadonlySet<string>;
  /** The Listener's fault filter (the first envoy.filters.http.fault of its HCM), if any. */
  readonly faultFilter: HttpFilter | undefined;
}

export type TargetState = 'pending' | 'ready' | 'not_found' | 'error';

export interface MeshOptions extends Pick<XdsClientOptions, 'env' | 'resourceDoesNotExistTimeoutMs'> {
  /** The bootstrap (a Bootstrap, its JSON object or text); else the environment's (gRFC A27 lookup). */
  readonly bootstrap?: Bootstrap | object | string;
  /** Use this xDS client instead of creating one (it is not closed with the mesh). */
  readonly xdsClient?: XdsClient;
  /** Randomness for routing and load balancing (seed it in tests). */
  readonly random?: Random;
  /**
   * The clock of the request path: timeouts, retry back-off, outlier ejection and fault
   * delays (inject one in tests). Intervals are measured on its now(), which should not go
   * back; its optional wallNow() gives the date where one is meant (rate-limit reset headers).
   * Default: a monotonic clock, so a wall-clock step moves no deadline, with timers that keep
   * the process alive.
   */
  readonly clock?: Clock;
  /**
   * Learn which hosts are in the mesh from a wildcard Listener subscription on a second ADS
   * stream, so a host with no Listener is known at once instead of after gRFC A57's
   * does-not-exist timer (15 s). Default true. istiod's grpc generator and meshlet's control
   * plane answer a wildcard LDS request with every outbound Listener. Only targets resolved
   * for HTTP consult it (and start it): gRPC channels learn that a Listener does not exist
   * the way gRFC A57 says, as grpc-js-xds does (`target(authority, { listenerCatalog: false })`).
   */
  readonly listenerCatalog?: boolean;
  /**
   * Istio metrics, tracing and access log (docs/telemetry.md). Metrics and traces go to the
   * global OpenTelemetry providers unless providers are given here; nothing is recorded while
   * none is registered. Change later with `mesh.telemetry.configure(...)`.
   */
  readonly telemetry?: TelemetryOptions;
  /**
   * Resolve the host names of LOGICAL_DNS clusters to IP addresses, in preference order
   * (inject one in tests). Default: the system resolver, `dns.lookup(host, { all: true })`.
   */
  readonly resolveDns?: (host: string) => Promise<string[]>;
}

/** How a target is resolved (Mesh.target). */
export interface TargetOptions {
  /** Consult the mesh's listener catalog (MeshOptions.listenerCatalog); default true. */
  readonly listenerCatalog?: boolean;
}

/** One target authority (host:port): its snapshot and what became of its resolution. */
export class MeshTarget {
  readonly authority: string;
  readonly listenerName: string;
  #state: TargetState = 'pending';
  #snapshot: TargetSnapshot | undefined;
  #error: MeshletError | undefined;
  #waiters: Array<{ resolve: (s: TargetSnapshot) => void; reject: (e: MeshletError) => void }> = [];
  readonly #listeners = new Set<(t: MeshTarget) => void>();
  #dm: XdsDependencyManager | undefined;

  constructor(authority: string, listenerName: string) {
    this.authority = authority;
    this.listenerName = listenerName;
  }

  get state(): TargetState {
    return this.#state;
  }

  /** The snapshot in force, or undefined before the first complete config. */
  get snapshot(): TargetSnapshot | undefined {
    return this.#snapshot;
  }

  /** Why the target has no usable config (state not_found or error). */
  get error(): MeshletError | undefined {
    return this.#error;
  }

  /**
   * The snapshot, waiting for the first one. Rejects when the Listener does not exist
   * (MESHLET_XDS_RESOURCE_DOES_NOT_EXIST) or the chain cannot be resolved. A target that
   * has a snapshot keeps it through later errors (the last good config stays in force).
   */
  ready(): Promise<TargetSnapshot> {
    if (this.#snapshot) return Promise.resolve(this.#snapshot);
    if (this.#state === 'not_found' || this.#state === 'error') return Promise.reject(this.#error!);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Called after every change of state or snapshot; returns the unsubscribe function. */
  onChange(listener: (t: MeshTarget) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal */
  attach(dm: XdsDependencyManager): void {
    this.#dm = dm;
  }

  /** @internal */
  update(snapshot: TargetSnapshot): void {
    this.#snapshot = snapshot;
    this.#state = 'ready';
    this.#error = undefined;
    for (const w of this.#waiters.splice(0)) w.resolve(snapshot);
    this.#emit();
  }

  /** @internal */
  fail(error: MeshletError): void {
    this.#error = error;
    // With a snapshot in force, an error changes nothing on the request path (A88).
    if (!this.#snapshot) {
      this.#state = error.code === 'MESHLET_XDS_RESOURCE_DOES_NOT_EXIST' && error.message.startsWith('Listener') ? 'not_found' : 'error';
      for (const w of this.#waiters.splice(0)) w.reject(error);
    }
    this.#emit();
  }

  /** @internal */
  close(): void {
    this.#dm?.close();
    this.#dm = undefined;
    const error = new MeshletError('MESHLET_XDS_UNAVAILABLE', `mesh closed while resolving ${this.authority}`);
    for (const w of this.#waiters.splice(0)) w.reject(error);
    this.#listeners.clear();
  }

  #emit(): void {
    for (const l of [...this.#listeners]) l(this);
  }
}

/**
 * One mesh: an xDS client and the targets resolved through it. Most applications use
 * the process-wide default (`@meshlet/http`'s `meshFetch` does); tests and applications
 * that need several create their own.
 */
export class Mesh {
  readonly client: XdsClient;
  readonly random: Random;
  readonly clock: Clock;
  /** Circuit breakers by cluster name, shared by every target of this mesh and kept across snapshots. */
  readonly breakers = new CircuitBreakerRegistry();
  /** Outlier detectors by cluster name (HTTP: Envoy's algorithm), host state kept across snapshots. */
  readonly outlierDetectors: OutlierDetectorRegistry;
  /** Metrics, traces and access log of the calls through this mesh (and of servers that report to it). */
  readonly telemetry: MeshTelemetry;
  /** max_active_faults gauges by fault filter (listener name and filter name), kept across snapshots. */
  readonly #activeFaults = new Map<string, ActiveFaults>();
  readonly #ownsClient: boolean;
  readonly #targets = new Map<string, MeshTarget>();
  /** Targets that do not consult the listener catalog (gRPC channels'). */
  readonly #withoutCatalog = new WeakSet<MeshTarget>();
  /** Live counters per endpoint key, kept across snapshots so least-request sees in-flight calls. */
  readonly #hostStats = new Map<string, HostStats>();
  readonly #catalogEnabled: boolean;
  readonly #resolveDns: ((host: string) => Promise<string[]>) | undefined;
  #catalogClient: XdsClient | undefined;
  /** Every Listener name the server has, from the last wildcard LDS response. */
  #catalog: ReadonlySet<string> | undefined;
  #closed = false;

  constructor(options: MeshOptions = {}) {
    this.random = options.random ?? systemRandom;
    this.clock = options.clock ?? requestClock;
    // The detectors' interval timers are background work: on the default clock they must not
    // keep the process alive (the xDS client's clock unrefs its timers).
    this.outlierDetectors = new OutlierDetectorRegistry({ flavor: 'envoy', clock: options.clock ?? systemClock, random: this.random });
    this.#catalogEnabled = options.listenerCatalog !== false;
    if (options.resolveDns !== undefined && typeof options.resolveDns !== 'function') {
      throw new MeshletError('MESHLET_INVALID_OPTION', `createMesh(): resolveDns: want a function (host) => Promise<string[]>, got ${options.resolveDns === null ? 'null' : typeof options.resolveDns}`);
    }
    this.#resolveDns = options.resolveDns;
    if (options.xdsClient) {
      this.client = options.xdsClient;
      this.#ownsClient = false;
    } else {
      this.client = new XdsClient({
        ...(options.bootstrap !== undefined ? { bootstrap: options.bootstrap } : {}),
        ...(options.env ? { env: options.env } : {}),
        ...(options.resourceDoesNotExistTimeoutMs !== undefined ? { resourceDoesNotExistTimeoutMs: options.resourceDoesNotExistTimeoutMs } : {}),
      });
      this.#ownsClient = true;
    }
    this.telemetry = new MeshTelemetry({ ...options.telemetry, node: this.client.bootstrap.node });
  }

  /** Every target resolved so far (read-only; for the admin view). */
  targets(): MeshTarget[] {
    return [...this.#targets.values()];
  }

  /** The mesh's xDS clients with the scope each serves (for CSDS and the admin view). */
  xdsClients(): Array<{ readonly client: XdsClient; readonly scope: string }> {
    const out = [{ client: this.client, scope: 'mesh' }];
    if (this.#catalogClient) out.push({ client: this.#catalogClient, scope: 'listener-catalog' });
    return out;
  }

  /**
   * The fault a forwarded request gets from the Listener's fault filter (its config overridden
   * per weighted cluster, route or virtual host, the most specific winning), with its
   * max_active_faults slot; undefined = send it as it is. HTTP and gRPC both ask here.
   */
  injectFault(snapshot: TargetSnapshot, d: ForwardDecision, ctx?: FaultContext): InjectedFault | undefined {
    const filter = snapshot.faultFilter;
    if (filter === undefined) return undefined;
    const config = faultConfigForRoute(filter.name, filter, [d.weightedCluster?.typedPerFilterConfig, d.route.typedPerFilterConfig, d.virtualHost.typedPerFilterConfig]);
    if (config === undefined) return undefined;
    return injectFault(compileFault(config), d.request, this.random, this.activeFaults(`${snapshot.listenerName}/${filter.name}`), ctx);
  }

  /** The active-fault gauge of one fault filter instance (its key is the caller's choice). */
  activeFaults(key: string): ActiveFaults {
    let a = this.#activeFaults.get(key);
    if (a === undefined) {
      a = new ActiveFaults();
      this.#activeFaults.set(key, a);
    }
    return a;
  }

  /** The counters of one endpoint (`host:port`), the same object for the mesh's lifetime. */
  hostStats(key: string): HostStats {
    let s = this.#hostStats.get(key);
    if (!s) {
      s = { activeRequests: 0 };
      this.#hostStats.set(key, s);
    }
    return s;
  }

  /**
   * The target for an authority (`host:port`, or anything parseTarget takes), resolving it
   * on first use. Synchronous: check `snapshot`, or await `ready()`. `listenerCatalog: false`
   * keeps the target out of the listener catalog (MeshOptions.listenerCatalog): the option of
   * the call that creates the target holds.
   */
  target(authority: string, options: TargetOptions = {}): MeshTarget {
    let t = this.#targets.get(authority);
    if (t) return t;
    if (this.#closed) throw new MeshletError('MESHLET_INVALID_OPTION', 'the mesh is closed');
    const resolved = resolveTarget(authority, this.client.bootstrap);
    const target = new MeshTarget(resolved.authority, resolved.listenerName);
    this.#targets.set(authority, target);
    if (options.listenerCatalog === false) this.#withoutCatalog.add(target);
    const dm = new XdsDependencyManager(
      this.client,
      { ...resolved, random: this.random, ...(this.#resolveDns ? { resolveDns: this.#resolveDns } : {}) },
      {
        onUpdate: (config) => {
          try {
            target.update(this.#buildSnapshot(target, config));
            // A config change is when the telemetry looks for providers registered since.
            this.telemetry.refresh();
          } catch (err) {
            target.fail(err instanceof MeshletError ? err : new MeshletError('MESHLET_XDS_RESOURCE_INVALID', String(err)));
          }
        },
        onError: (error) => target.fail(error),
      },
    );
    target.attach(dm);
    this.#consultCatalog(target);
    return target;
  }

  /** A target whose Listener the wildcard catalog does not list does not exist (yet). */
  #consultCatalog(target: MeshTarget): void {
    if (!this.#catalogEnabled || target.listenerName.startsWith('xdstp:') || this.#withoutCatalog.has(target)) return;
    if (!this.#catalogClient) this.#startCatalog();
    const catalog = this.#catalog;
    if (catalog && !target.snapshot && target.state === 'pending' && !catalog.has(target.listenerName)) {
      trace(() => `${target.authority}: Listener "${target.listenerName}" is not in the server's listener catalog`);
      target.fail(new MeshletError('MESHLET_XDS_RESOURCE_DOES_NOT_EXIST', `Listener "${target.listenerName}" does not exist`));
    }
  }

  #startCatalog(): void {
    // Its own client, hence its own ADS stream: the wildcard must go out as the legacy
    // empty name list, which a stream that also names listeners cannot send.
    this.#catalogClient = new XdsClient({ bootstrap: this.client.bootstrap });
    // Names only: the catalog never reads a Listener's content (listener-names.ts).
    this.#catalogClient.watch(listenerNamesResourceType, '*', {
      onChanged: () => {},
      onError: () => {},
      onDoesNotExist: () => {},
      onResourceNames: (names) => {
        this.#catalog = names;
        for (const t of this.#targets.values()) this.#consultCatalog(t);
      },
    });
  }

  /** Stop resolving; close the xDS client when the mesh created it. */
  close(): void {
    this.#closed = true;
    for (const t of this.#targets.values()) t.close();
    this.#targets.clear();
    this.#catalogClient?.close();
    this.outlierDetectors.retain([]);
    if (this.#ownsClient) this.client.close();
  }

  #buildSnapshot(target: MeshTarget, config: XdsConfig): TargetSnapshot {
    const previous = target.snapshot;
    // A route table is an immutable value from the xDS client: recompile only when it changed.
    const routeTable =
      previous && previous.config.routeConfig === config.routeConfig ? previous.routeTable : compileRouteTable(config.routeConfig);
    const clusters = new Map<string, ClusterSnapshot>();
    const options = { random: this.random, hostStats: (key: string) => this.hostStats(key) };
    for (const [name, cc] of config.clusters) {
      if (!cc.ok) {
        clusters.set(name, { name, cluster: undefined, lb: undefined, error: cc.error, breaker: undefined, outlier: undefined, hostKeys: [] });
        continue;
      }
      const endpoints = cc.leafClusters ? aggregateEndpoints(name, cc.leafClusters, config) : cc.endpoints?.endpoints;
      const lbCluster = cc.leafClusters ? firstLeafCluster(cc.leafClusters, config) ?? cc.cluster : cc.cluster;
      const prev = previous?.clusters.get(name);
      // Nothing this cluster depends on changed: keep its balancer (built or not) and its state.
      const cell =
        prev instanceof LazyCluster && prev.cluster === cc.cluster && sameEndpoints(prev, endpoints, cc.leafClusters, config, previous!)
          ? prev.cell
          : new BalancerCell(lbCluster, endpoints, options);
      const breaker = this.breakers.get(name, cc.cluster.circuitBreakers);
      const od = cc.cluster.outlierDetection;
      const outlier = od !== undefined || this.outlierDetectors.peek(name) !== undefined ? this.outlierDetectors.get(name, od, cell.hostKeys) : undefined;
      clusters.set(name, new LazyCluster(name, cc.cluster, cell, breaker, od === undefined ? undefined : outlier, endpoints, lbCluster));
    }
    trace(() => `${target.authority}: snapshot with ${clusters.size} cluster(s)`);
    const faultFilter = config.listener.apiListener?.httpFilters.find((f) => f.typeUrl === FAULT_FILTER_TYPE_URL);
    return new Snapshot(target.authority, target.listenerName, config, routeTable, clusters, faultFilter);
  }
}

/**
 * A TargetSnapshot as a class: every request reads its fields, and an object literal with a
 * getter (endpointKeys) is a dictionary-mode object to V8, whose every property read is a
 * generic lookup.
 */
class Snapshot implements TargetSnapshot {
  #endpointKeys: ReadonlySet<string> | undefined;
  constructor(
    readonly authority: string,
    readonly listenerName: string,
    readonly config: XdsConfig,
    readonly routeTable: RouteTable,
    readonly clusters: ReadonlyMap<string, ClusterSnapshot>,
    readonly faultFilter: HttpFilter | undefined,
  ) {}

  // Derived from the clusters' host keys when asked (nothing on the request path asks).
  get endpointKeys(): ReadonlySet<string> {
    this.#endpointKeys ??= new Set([...this.clusters.values()].flatMap((c) => c.hostKeys));
    return this.#endpointKeys;
  }
}

/**
 * A cluster's balancer, built on first use and shared by the snapshots whose cluster and
 * endpoints are the same values (so its state, e.g. round robin's position, carries over).
 */
class BalancerCell {
  #lb: ClusterLoadBalancer | undefined;
  #error: MeshletError | undefined;
  #built = false;
  #hostKeys: readonly string[] | undefined;

  constructor(
    readonly lbCluster: ClusterResource,
    readonly endpoints: EndpointsResource | undefined,
    readonly options: ClusterLoadBalancerOptions,
  ) {}

  get lb(): ClusterLoadBalancer | undefined {
    if (!this.#built) this.#build();
    return this.#lb;
  }

  get error(): MeshletError | undefined {
    if (!this.#built) this.#build();
    return this.#error;
  }

  /** Every endpoint's `host:port`, as the balancer names its hosts, without building it. */
  get hostKeys(): readonly string[] {
    if (this.#hostKeys === undefined) {
      const keys: string[] = [];
      for (const p of this.endpoints?.priorities ?? []) {
        for (const le of p) {
          for (const e of le.endpoints) {
            const a = e.addresses[0];
            if (a) keys.push(hostKey(a.host, a.port));
          }
        }
      }
      this.#hostKeys = keys;
    }
    return this.#hostKeys;
  }

  #build(): void {
    this.#built = true;
    if (!this.endpoints) return;
    try {
      this.#lb = buildClusterLoadBalancer(this.lbCluster, this.endpoints, this.options);
    } catch (err) {
      this.#error = err instanceof MeshletError ? err : new MeshletError('MESHLET_INVALID_OPTION', String(err));
    }
  }
}

/** A resolved cluster in a snapshot; its balancer is its cell's, built on first use. */
class LazyCluster implements ClusterSnapshot {
  constructor(
    readonly name: string,
    readonly cluster: ClusterResource,
    readonly cell: BalancerCell,
    readonly breaker: ClusterCircuitBreaker | undefined,
    readonly outlier: OutlierDetector | undefined,
    readonly endpoints: EndpointsResource | undefined,
    readonly lbCluster: ClusterResource | undefined,
  ) {}

  get lb(): ClusterLoadBalancer | undefined {
    return this.cell.lb;
  }

  get error(): MeshletError | undefined {
    return this.cell.error;
  }

  get hostKeys(): readonly string[] {
    return this.cell.hostKeys;
  }
}

/** gRFC A37 / Envoy: an aggregate cluster's endpoints are its leaf clusters' priorities, in order. */
function aggregateEndpoints(name: string, leaves: readonly string[], config: XdsConfig): EndpointsResource | undefined {
  const priorities: EndpointsResource['priorities'][number][] = [];
  for (const leaf of leaves) {
    const c = config.clusters.get(leaf);
    if (!c?.ok || !c.endpoints) continue;
    for (const p of c.endpoints.endpoints.priorities) priorities.push(p.map((l) => ({ ...l, priority: priorities.length })));
  }
  if (priorities.length === 0) return undefined;
  return { clusterName: name, priorities, dropOverloads: [], overprovisioningFactor: 140, weightedPriorityHealth: false };
}

/** The aggregate cluster balances with its first leaf cluster's policy (Envoy's CLUSTER_PROVIDED). */
function firstLeafCluster(leaves: readonly string[], config: XdsConfig): ClusterResource | undefined {
  for (const leaf of leaves) {
    const c = config.clusters.get(leaf);
    if (c?.ok) return c.cluster;
  }
  return undefined;
}

function sameEndpoints(
  prev: ClusterSnapshot,
  endpoints: EndpointsResource | undefined,
  leaves: readonly string[] | undefined,
  config: XdsConfig,
  previous: TargetSnapshot,
): boolean {
  if (!leaves) {
    const before = previous.config.clusters.get(prev.name);
    return !!before?.ok && before.endpoints?.endpoints === endpoints;
  }
  // Aggregates: every leaf's cluster and endpoints must be the very same values.
  return leaves.every((leaf) => {
    const a = previous.config.clusters.get(leaf);
    const b = config.clusters.get(leaf);
    return !!a?.ok && !!b?.ok && a.cluster === b.cluster && a.endpoints?.endpoints === b.endpoints?.endpoints;
  });
}
