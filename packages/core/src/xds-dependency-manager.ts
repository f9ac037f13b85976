// Follows one target's chain of xDS resources, Listener → RouteConfiguration →
// Clusters (through aggregate clusters) → endpoints, and reports the whole chain
// once every part of it has arrived (gRFC A74, "xDS Config Tears"): a consumer never
// sees a route table whose clusters are not known yet.
//
// Errors follow A74: a Listener or RouteConfiguration that is missing, NACKed with no
// last good value, or whose virtual hosts do not match the authority is an error of the
// whole target; a cluster's own problem (missing, NACKed, a cycle, no endpoints) is
// reported inside the config for that cluster only, so the other clusters keep working.
import { lookup } from 'node:dns/promises';
// node:timers' own functions, not the globals: an application's fake timers must not hold or
// fire the mesh's DNS refreshes.
import { clearTimeout as clearTimer, setTimeout as setTimer } from 'node:timers';
import {
  clusterResourceType,
  endpointResourceType,
  listenerResourceType,
  MeshletError,
  routeConfigurationResourceType,
  tracer,
  type ClusterResource,
  type EndpointsResource,
  type ListenerResource,
  type RouteConfigurationResource,
  type VirtualHost,
  type XdsClient,
  type XdsResourceType,
  type XdsWatcher,
} from '@meshlet/xds-client';
import { compileDomainMatcher } from './vhost-match.js';
import { systemRandom, type Random } from './random.js';

const trace = tracer('xds_resolver');

/** gRFC A37: aggregate clusters nest at most this deep. */
export const MAX_AGGREGATE_DEPTH = 16;

export interface ResolvedEndpoints {
  readonly kind: 'eds' | 'dns' | 'static';
  readonly endpoints: EndpointsResource;
}

export type ClusterConfig =
  | {
      readonly ok: true;
      readonly cluster: ClusterResource;
      /** For EDS, LOGICAL_DNS and STATIC clusters. */
      readonly endpoints: ResolvedEndpoints | undefined;
      /** For aggregate clusters: the leaf clusters, in priority order (gRFC A37). */
      readonly leafClusters: readonly string[] | undefined;
    }
  | { readonly ok: false; readonly error: MeshletError };

export interface XdsConfig {
  readonly listener: ListenerResource;
  readonly routeConfig: RouteConfigurationResource;
  readonly virtualHost: VirtualHost;
  /** Every cluster the virtual host's routes name, and every cluster below an aggregate one. */
  readonly clusters: ReadonlyMap<string, ClusterConfig>;
}

export interface DependencyWatcher {
  /** A complete, consistent chain. Called again on every change. */
  onUpdate(config: XdsConfig): void;
  /** The target cannot be resolved (Listener or RouteConfiguration problem, or no matching virtual host). */
  onError(error: MeshletError): void;
}

export interface DependencyManagerOptions {
  /** The Listener resource name (after the bootstrap's listener name template). */
  listenerName: string;
  /** The authority the data plane matches virtual hosts with (host:port of the target). */
  authority: string;
  /** Resolve LOGICAL_DNS hostnames; defaults to the system resolver. */
  resolveDns?: (host: string) => Promise<string[]>;
  /** Draws the jitter of dns_failure_refresh_rate's backoff; defaults to Math.random. */
  random?: Random;
}

/** One resource the manager follows; a class rather than closures, as there may be 20,000. */
class Watched<T> implements XdsWatcher<T> {
  value: T | undefined;
  error: MeshletError | undefined;
  readonly cancel: () => void;
  readonly #owner: XdsDependencyManager;
  readonly #type: XdsResourceType<T>;
  readonly #name: string;

  constructor(owner: XdsDependencyManager, client: XdsClient, type: XdsResourceType<T>, name: string) {
    this.#owner = owner;
    this.#type = type;
    this.#name = name;
    this.cancel = client.watch(type, name, this);
  }

  onChanged(value: T): void {
    this.value = value;
    this.error = undefined;
    this.#owner.schedule();
  }

  onError(error: MeshletError): void {
    // A NACK or a stream error keeps the last good value in force (gRFC A88).
    if (this.value === undefined) this.error = error;
    this.#owner.schedule();
  }

  onDoesNotExist(): void {
    this.value = undefined;
    this.error = resourceError(this.#type.shortName, this.#name, 'does not exist');
    this.#owner.schedule();
  }
}

async function systemResolve(host: string): Promise<string[]> {
  const results = await lookup(host, { all: true });
  return results.map((r) => r.address);
}

/** What the clusters sharing one host:port ask of its resolution: the smallest rates win. */
interface DnsRates {
  refreshMs: number;
  failure: { baseInterval: number; maxInterval: number } | undefined;
}

/** One LOGICAL_DNS host:port, resolved again and again while some cluster names it. */
interface DnsEntry {
  readonly host: string;
  readonly port: number;
  readonly clusterName: string;
  rates: DnsRates;
  /** The last good answer, in the resolver's order. */
  addrs?: readonly string[];
  value?: EndpointsResource;
  /** Set only while there has never been a good answer. */
  error?: MeshletError;
  /** Failed resolutions in a row, for dns_failure_refresh_rate's backoff. */
  failures: number;
  timer?: ReturnType<typeof setTimer>;
}

function mergeRates(a: DnsRates | undefined, b: DnsRates): DnsRates {
  if (!a) return b;
  const failure =
    a.failure && b.failure
      ? { baseInterval: Math.min(a.failure.baseInterval, b.failure.baseInterval), maxInterval: Math.min(a.failure.maxInterval, b.failure.maxInterval) }
      : a.failure ?? b.failure;
  return { refreshMs: Math.min(a.refreshMs, b.refreshMs), failure };
}

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

function resourceError(kind: string, name: string, what: 'does not exist' | string): MeshletError {
  return what === 'does not exist'
    ? new MeshletError('MESHLET_XDS_RESOURCE_DOES_NOT_EXIST', `${kind} "${name}" does not exist`)
    : new MeshletError('MESHLET_XDS_RESOURCE_INVALID', `${kind} "${name}": ${what}`);
}

export class XdsDependencyManager {
  private readonly client: XdsClient;
  private readonly opts: Required<DependencyManagerOptions>;
  private readonly watcher: DependencyWatcher;
  private listener: Watched<ListenerResource> | undefined;
  private routeName: string | undefined;
  private route: Watched<RouteConfigurationResource> | undefined;
  private readonly clusters = new Map<string, Watched<ClusterResource>>();
  private readonly endpoints = new Map<string, Watched<EndpointsResource>>();
  private readonly dns = new Map<string, DnsEntry>();
  private closed = false;
  private scheduled = false;
  private vhostFor: { routeConfig: RouteConfigurationResource; vhost: VirtualHost | undefined } | undefined;

  constructor(client: XdsClient, options: DependencyManagerOptions, watcher: DependencyWatcher) {
    this.client = client;
    this.opts = { resolveDns: systemResolve, random: systemRandom, ...options };
    this.watcher = watcher;
    this.listener = this.watchResource(listenerResourceType, options.listenerName);
  }

  close(): void {
    this.closed = true;
    this.listener?.cancel();
    this.route?.cancel();
    for (const w of this.clusters.values()) w.cancel();
    for (const w of this.endpoints.values()) w.cancel();
    this.clusters.clear();
    this.endpoints.clear();
    for (const d of this.dns.values()) if (d.timer) clearTimer(d.timer);
    this.dns.clear();
  }

  private watchResource<T>(type: XdsResourceType<T>, name: string): Watched<T> {
    return new Watched(this, this.client, type, name);
  }

  /** Coalesce the callbacks of one response into one evaluation. @internal */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (!this.closed) this.evaluate();
    });
  }

  private evaluate(): void {
    const listener = this.listener!;
    if (listener.error) return this.fail(listener.error);
    if (!listener.value) return;
    const hcm = listener.value.apiListener;
    if (!hcm) {
      return this.fail(resourceError('Listener', this.opts.listenerName, 'not a client listener (no api_listener)'));
    }

    // Route configuration: inline, or over RDS.
    let routeConfig: RouteConfigurationResource | undefined = hcm.routeConfig;
    if (routeConfig) {
      this.setRouteWatch(undefined);
    } else {
      const name = hcm.routeConfigName!;
      this.setRouteWatch(name);
      const rds = this.route!;
      if (rds.error) return this.fail(rds.error);
      routeConfig = rds.value;
      if (!routeConfig) return;
    }

    // Route tables are immutable values: select the virtual host once per table.
    if (this.vhostFor?.routeConfig !== routeConfig) {
      const matcher = compileDomainMatcher(
        routeConfig.virtualHosts.map((v) => ({ value: v, domains: v.domains })),
        { ignorePort: routeConfig.ignorePortInHostMatching },
      );
      this.vhostFor = { routeConfig, vhost: matcher.match(this.opts.authority) };
    }
    const vhost = this.vhostFor.vhost;
    if (!vhost) {
      return this.fail(
        resourceError('RouteConfiguration', routeConfig.name, `no virtual host matches authority "${this.opts.authority}"`),
      );
    }

    // Clusters the virtual host's routes name, then everything below aggregates.
    // Mirror targets too: a request must find their balancers in the same snapshot.
    const roots = new Set<string>();
    const addMirrors = (policies: readonly { cluster: string }[]): void => {
      for (const p of policies) if (p.cluster) roots.add(p.cluster);
    };
    addMirrors(routeConfig.requestMirrorPolicies);
    addMirrors(vhost.requestMirrorPolicies);
    for (const r of vhost.routes) {
      if (r.action.kind !== 'route') continue;
      const c = r.action.cluster;
      if (c.kind === 'cluster') roots.add(c.name);
      else if (c.kind === 'weighted_clusters') for (const wc of c.clusters) roots.add(wc.name);
      addMirrors(r.action.requestMirrorPolicies);
    }
    const configs = new Map<string, ClusterConfig>();
    const wantedClusters = new Set<string>();
    const wantedEds = new Set<string>();
    const wantedDns = new Map<string, DnsRates>();
    let complete = true;
    for (const root of roots) {
      if (!this.resolveCluster(root, 0, [], configs, wantedClusters, wantedEds, wantedDns)) complete = false;
    }
    this.prune(wantedClusters, wantedEds, wantedDns);
    if (!complete) return;
    trace(() => `${this.opts.listenerName}: complete, ${configs.size} cluster(s)`);
    this.watcher.onUpdate({ listener: listener.value, routeConfig, virtualHost: vhost, clusters: configs });
  }

  private setRouteWatch(name: string | undefined): void {
    if (name === this.routeName) return;
    this.route?.cancel();
    this.route = undefined;
    this.routeName = name;
    if (name !== undefined) this.route = this.watchResource(routeConfigurationResourceType, name);
  }

  /** Returns false while something this cluster needs has not arrived. */
  private resolveCluster(
    name: string,
    depth: number,
    path: string[],
    configs: Map<string, ClusterConfig>,
    wantedClusters: Set<string>,
    wantedEds: Set<string>,
    wantedDns: Map<string, DnsRates>,
  ): boolean {
    if (configs.has(name)) return true;
    wantedClusters.add(name);
    let w = this.clusters.get(name);
    if (!w) {
      w = this.watchResource(clusterResourceType, name);
      this.clusters.set(name, w);
    }
    if (w.error) {
      configs.set(name, { ok: false, error: w.error });
      return true;
    }
    const cluster = w.value;
    if (!cluster) return false;
    switch (cluster.type) {
      case 'EDS': {
        const edsName = cluster.edsServiceName ?? cluster.name;
        wantedEds.add(edsName);
        let e = this.endpoints.get(edsName);
        if (!e) {
          e = this.watchResource(endpointResourceType, edsName);
          this.endpoints.set(edsName, e);
        }
        if (e.error) configs.set(name, { ok: false, error: e.error });
        else if (e.value) configs.set(name, { ok: true, cluster, endpoints: { kind: 'eds', endpoints: e.value }, leafClusters: undefined });
        else return false;
        return true;
      }
      case 'STATIC':
        configs.set(name, { ok: true, cluster, endpoints: { kind: 'static', endpoints: cluster.loadAssignment }, leafClusters: undefined });
        return true;
      case 'LOGICAL_DNS': {
        const key = `${cluster.dnsHost}:${cluster.dnsPort}`;
        const rates = mergeRates(wantedDns.get(key), { refreshMs: cluster.dnsRefreshRate, failure: cluster.dnsFailureRefreshRate });
        wantedDns.set(key, rates);
        const d = this.startDns(key, cluster.dnsHost, cluster.dnsPort, cluster.name, rates);
        if (d.error) configs.set(name, { ok: false, error: d.error });
        else if (d.value) configs.set(name, { ok: true, cluster, endpoints: { kind: 'dns', endpoints: d.value }, leafClusters: undefined });
        else return false;
        return true;
      }
      case 'AGGREGATE': {
        if (depth >= MAX_AGGREGATE_DEPTH) {
          configs.set(name, { ok: false, error: resourceError('Cluster', name, `aggregate clusters nest deeper than ${MAX_AGGREGATE_DEPTH}`) });
          return true;
        }
        if (path.includes(name)) {
          configs.set(name, { ok: false, error: resourceError('Cluster', name, `aggregate cluster cycle: ${[...path, name].join(' -> ')}`) });
          return true;
        }
        let complete = true;
        const leaves: string[] = [];
        for (const child of cluster.aggregateClusters) {
          if (!this.resolveCluster(child, depth + 1, [...path, name], configs, wantedClusters, wantedEds, wantedDns)) {
            complete = false;
            continue;
          }
          const cc = configs.get(child);
          if (cc?.ok && cc.leafClusters) {
            for (const leaf of cc.leafClusters) if (!leaves.includes(leaf)) leaves.push(leaf);
          } else if (cc?.ok && !leaves.includes(child)) {
            leaves.push(child);
          }
        }
        if (!complete) return false;
        if (leaves.length === 0) {
          configs.set(name, { ok: false, error: resourceError('Cluster', name, 'aggregate cluster has no usable leaf cluster') });
        } else {
          configs.set(name, { ok: true, cluster, endpoints: undefined, leafClusters: leaves });
        }
        return true;
      }
    }
  }

  private startDns(key: string, host: string, port: number, clusterName: string, rates: DnsRates): DnsEntry {
    let d = this.dns.get(key);
    if (!d) {
      d = { host, port, clusterName, rates, failures: 0 };
      this.dns.set(key, d);
      this.resolveDnsEntry(key, d);
    }
    return d;
  }

  /**
   * One resolution, then the next one on a timer, as Envoy's logical DNS cluster does: after a
   * success at dns_refresh_rate, after a failure at dns_failure_refresh_rate's backoff (or
   * dns_refresh_rate when unset). A failure keeps the last good addresses (Envoy keeps its
   * logical host); a new config is published only when the answer changed.
   */
  private resolveDnsEntry(key: string, entry: DnsEntry): void {
    const current = (): boolean => !this.closed && this.dns.get(key) === entry;
    const onFailure = (message: string): void => {
      if (!current()) return;
      entry.failures++;
      if (entry.value === undefined) {
        const first = entry.error === undefined;
        entry.error = new MeshletError('MESHLET_NO_HEALTHY_UPSTREAM', `Cluster "${entry.clusterName}": DNS resolution of ${entry.host} failed: ${message}`);
        if (first) this.schedule();
      }
      this.armDns(key, entry, this.failureDelay(entry));
    };
    let answer: Promise<string[]>;
    try {
      answer = this.opts.resolveDns(entry.host);
    } catch (err) {
      // A resolver that throws rather than rejecting fails this resolution, not the timer's callback.
      answer = Promise.reject(err);
    }
    answer.then(
      (addrs) => {
        if (!current()) return;
        // Envoy treats an empty answer as a failed resolution.
        if (addrs.length === 0) return onFailure('no addresses');
        entry.failures = 0;
        if (!sameList(entry.addrs, addrs) || entry.error !== undefined) {
          entry.addrs = addrs.slice();
          entry.value = dnsEndpoints(entry.clusterName, entry.host, entry.port, addrs);
          entry.error = undefined;
          this.schedule();
        }
        this.armDns(key, entry, entry.rates.refreshMs);
      },
      (err: unknown) => onFailure((err as Error)?.message ?? String(err)),
    );
  }

  /**
   * dns_failure_refresh_rate, as Envoy's JitteredExponentialBackOffStrategy: a delay drawn
   * uniformly below a bound that starts at base_interval and doubles, up to max_interval, with
   * each failure in a row.
   */
  private failureDelay(entry: DnsEntry): number {
    const f = entry.rates.failure;
    if (!f) return entry.rates.refreshMs;
    const bound = Math.min(f.baseInterval * 2 ** Math.min(entry.failures - 1, 30), f.maxInterval);
    return Math.floor(this.opts.random.next() * bound);
  }

  private armDns(key: string, entry: DnsEntry, ms: number): void {
    if (entry.timer) clearTimer(entry.timer);
    entry.timer = setTimer(() => {
      entry.timer = undefined;
      if (!this.closed && this.dns.get(key) === entry) this.resolveDnsEntry(key, entry);
    }, Math.max(1, ms));
    // A refresh never keeps the process alive on its own.
    entry.timer.unref();
  }

  private prune(clusters: Set<string>, eds: Set<string>, dns: ReadonlyMap<string, DnsRates>): void {
    for (const [name, w] of this.clusters) {
      if (!clusters.has(name)) {
        w.cancel();
        this.clusters.delete(name);
      }
    }
    for (const [name, w] of this.endpoints) {
      if (!eds.has(name)) {
        w.cancel();
        this.endpoints.delete(name);
      }
    }
    for (const [key, d] of this.dns) {
      const rates = dns.get(key);
      if (rates) {
        const sooner = rates.refreshMs < d.rates.refreshMs;
        d.rates = rates;
        // A shorter dns_refresh_rate applies now, not after the longer wait already armed.
        if (sooner && d.timer !== undefined && d.failures === 0) this.armDns(key, d, rates.refreshMs);
        continue;
      }
      if (d.timer) clearTimer(d.timer);
      this.dns.delete(key);
    }
  }

  private fail(error: MeshletError): void {
    trace(() => `${this.opts.listenerName}: ${error.message}`);
    this.watcher.onError(error);
  }
}

/** A LOGICAL_DNS cluster's endpoints: one priority, one locality (gRFC A37). */
function dnsEndpoints(clusterName: string, host: string, port: number, addrs: readonly string[]): EndpointsResource {
  return {
    clusterName,
    priorities: [
      [
        {
          locality: { region: '', zone: '', subZone: '' },
          weight: 1,
          priority: 0,
          // One endpoint, Envoy's logical host, which connects to the first address the resolver
          // returns; core's balancers and the HTTP path read addresses[0] only. Every resolved
          // address rides along, in the resolver's order, for gRPC, whose logical DNS reports
          // them all under pick_first (gRFC A37; @meshlet/grpc's cluster-pool.ts).
          endpoints: [
            {
              addresses: addrs.map((a) => ({ host: a, port })),
              hostname: host,
              healthStatus: 'UNKNOWN' as const,
              weight: 1,
              metadata: undefined,
            },
          ],
          metadata: undefined,
        },
      ],
    ],
    dropOverloads: [],
    overprovisioningFactor: 140,
    weightedPriorityHealth: false,
  };
}
