// The label sets calls are recorded under, looked up without building strings on the
// request path: a call's destination service and peer are objects cached per cluster and per
// endpoint, and under them a small group per (reporter, protocol) maps the outcome (status
// code and gRPC status, when there are no flags, principals or an explicit security policy)
// to its series by number. Each label set has exactly one series: the SDK's observable
// counters and the Prometheus text both need one cell per label set. Caches are bounded;
// past the bounds calls are recorded with unknown service and peer labels rather than grow.
import type { Attributes } from '@opentelemetry/api';
import type { ClusterResource, Metadata } from '@meshlet/xds-client';
import type { CountedSeries } from './istio-metrics.js';
import { decodePeerMetadata } from './peer-metadata.js';
import type { PrometheusData, PrometheusSource } from './prometheus-text.js';
import {
  endpointWorkload,
  isIstioSpecialCluster,
  istioLabels,
  serviceFromAuthority,
  serviceFromCluster,
  serviceOfCluster,
  UNKNOWN,
  type IstioLabels,
  type ServiceLabels,
  type WorkloadLabels,
} from './istio-labels.js';

/** Past these, new services, peers and label sets fold into unknown ones (memory stays bounded). */
export const MAX_SERVICES = 4096;
export const MAX_PEERS = 4096;
export const MAX_SERIES = 20000;

export class Series implements CountedSeries, PrometheusSource {
  readonly labels: IstioLabels;
  readonly attrs: Attributes;
  readonly grpc: boolean;
  otelRequests = 0;
  otelRequestMessages = 0;
  otelResponseMessages = 0;
  prom: PrometheusData | undefined;

  constructor(labels: IstioLabels, grpc: boolean) {
    this.labels = labels;
    this.attrs = labels as unknown as Attributes;
    this.grpc = grpc;
  }
}

class Group {
  /** Outcomes with no flags, principals or explicit security policy, by status*32+grpcStatus. */
  readonly common = new Map<number, Series>();
  readonly other = new Map<string, Series>();
}

/** A destination service, with the series of calls to it grouped by peer. */
export class ServiceEntry {
  readonly byPeer = new Map<PeerEntry | null, Group[]>();
  constructor(readonly labels: ServiceLabels) {}
}

export class PeerEntry {
  constructor(readonly labels: WorkloadLabels) {}
}

/** A finished call's outcome (a CallResult fits); its response flags are passed apart, '-' for none. */
export interface SeriesOutcome {
  readonly status: number;
  readonly grpcStatus?: number | undefined;
  readonly securityPolicy?: 'mutual_tls' | 'none' | 'unknown' | undefined;
  readonly localPrincipal?: string | undefined;
  readonly peerPrincipal?: string | undefined;
}

const OVERFLOW_SERVICE: ServiceLabels = Object.freeze({ service: UNKNOWN, name: UNKNOWN, namespace: undefined });

export class SeriesStore {
  readonly #local: WorkloadLabels;
  /** A cluster's service, or its name when the call's authority names the service. */
  readonly #servicesByCluster = new WeakMap<ClusterResource, ServiceEntry | string>();
  readonly #servicesByName = new Map<string, ServiceEntry>();
  /** Cluster names that name no service (calls to them are by authority). */
  readonly #unnamedClusters = new Set<string>();
  readonly #servicesByLabels = new Map<string, ServiceEntry>();
  readonly #overflowService = new ServiceEntry(OVERFLOW_SERVICE);
  /** #byName's entries for authorities, keyed by the authority alone (the same entries, bounded with them). */
  readonly #servicesByAuthority = new Map<string, ServiceEntry>();
  readonly #peers = new Map<string, PeerEntry>();
  readonly #exchangePeers = new Map<string, PeerEntry | null>();
  /** Every series, by its full label text: the one place that guarantees one series per label set. */
  readonly #byLabels = new Map<string, Series>();
  readonly #all: Series[] = [];
  #lastCluster: ClusterResource | string | undefined;
  #lastAuthority: string | undefined;
  #lastEntry: ServiceEntry | undefined;
  #lastService: ServiceEntry | undefined;
  #lastPeer: PeerEntry | null | undefined;
  #lastGroups: Group[] | undefined;

  constructor(local: WorkloadLabels) {
    this.#local = local;
  }

  get size(): number {
    return this.#all.length;
  }

  all(): readonly Series[] {
    return this.#all;
  }

  /**
   * The destination service of a call routed to `cluster` (or, without one, to `authority`).
   * A cluster that names its service is looked up by itself; one that does not (no Istio
   * metadata or name) stands for whatever authority the call was for.
   */
  service(cluster: ClusterResource | string | undefined, authority: string): ServiceEntry {
    // Calls in a row mostly go to one cluster for one authority. (This holds the last
    // cluster object after a config change replaced it, until the next call: one object.)
    if (cluster === this.#lastCluster && authority === this.#lastAuthority) return this.#lastEntry!;
    const s = this.#service(cluster, authority);
    this.#lastCluster = cluster;
    this.#lastAuthority = authority;
    this.#lastEntry = s;
    return s;
  }

  #service(cluster: ClusterResource | string | undefined, authority: string): ServiceEntry {
    if (cluster === undefined) return this.#byAuthority(authority);
    if (typeof cluster !== 'string') {
      let s = this.#servicesByCluster.get(cluster);
      if (s === undefined) {
        const labels = isIstioSpecialCluster(cluster.name) ? undefined : serviceOfCluster(cluster);
        s = labels ? this.#dedupe(labels) : cluster.name;
        // Snapshots replace cluster objects on every change: the WeakMap lets old ones go.
        this.#servicesByCluster.set(cluster, s);
      }
      return typeof s === 'string' ? this.#byClusterName(s, authority) : s;
    }
    return this.#byClusterName(cluster, authority);
  }

  #byClusterName(name: string, authority: string): ServiceEntry {
    if (isIstioSpecialCluster(name)) return this.#byName(`${name}\u0001${authority}`, () => serviceFromCluster(name, authority));
    let s = this.#servicesByName.get(name);
    if (s === undefined) {
      if (this.#unnamedClusters.has(name)) return this.#byAuthority(authority);
      const labels = serviceOfCluster(name);
      if (!labels) {
        // A cluster name that names no service: remembered, so it is parsed once.
        if (this.#unnamedClusters.size < MAX_SERVICES) this.#unnamedClusters.add(name);
        return this.#byAuthority(authority);
      }
      s = this.#byName(name, () => labels);
    }
    return s;
  }

  #byAuthority(authority: string): ServiceEntry {
    // Every call to a cluster without Istio metadata lands here: a lookup by the authority
    // itself, with no key built and no closure made per call.
    const s = this.#servicesByAuthority.get(authority);
    if (s !== undefined) return s;
    const made = this.#byName(`\u0000${authority}`, () => serviceFromAuthority(authority));
    if (made !== this.#overflowService) this.#servicesByAuthority.set(authority, made);
    return made;
  }

  #byName(key: string, labels: () => ServiceLabels): ServiceEntry {
    let s = this.#servicesByName.get(key);
    if (!s) {
      if (this.#servicesByName.size >= MAX_SERVICES) return this.#overflowService;
      s = this.#dedupe(labels());
      this.#servicesByName.set(key, s);
    }
    return s;
  }

  #dedupe(labels: ServiceLabels): ServiceEntry {
    const key = `${labels.service}\u0001${labels.name}\u0001${labels.namespace ?? ''}`;
    let s = this.#servicesByLabels.get(key);
    if (!s) {
      if (this.#servicesByLabels.size >= MAX_SERVICES) return this.#overflowService;
      s = new ServiceEntry(labels);
      this.#servicesByLabels.set(key, s);
    }
    return s;
  }

  /** The peer named by Istio endpoint metadata (`filter_metadata.istio.workload`), or null. */
  peer(metadata: Metadata | undefined): PeerEntry | null {
    const encoded = metadata?.filterMetadata['istio']?.['workload'];
    if (typeof encoded !== 'string') return null;
    let p = this.#peers.get(encoded);
    if (!p) {
      const w = endpointWorkload(metadata);
      if (!w || this.#peers.size >= MAX_PEERS) return null;
      p = new PeerEntry(w);
      this.#peers.set(encoded, p);
    }
    return p;
  }

  /** The peer named by an Istio metadata exchange header value, or null when it does not parse. */
  peerFromExchange(value: string): PeerEntry | null {
    let p = this.#exchangePeers.get(value);
    if (p === undefined) {
      const w = decodePeerMetadata(value);
      p = w ? new PeerEntry(w) : null;
      if (this.#exchangePeers.size < MAX_PEERS) this.#exchangePeers.set(value, p);
    }
    return p;
  }

  /** The series of one finished call. */
  series(
    reporter: 'source' | 'destination',
    protocol: 'http' | 'grpc',
    service: ServiceEntry,
    peer: PeerEntry | null,
    o: SeriesOutcome,
    flags: string,
  ): Series {
    if (this.#all.length >= MAX_SERIES) {
      service = this.#overflowService;
      peer = null;
    }
    let groups: Group[] | undefined;
    // Calls in a row mostly go to one service and peer: remember the last pair's groups.
    if (service === this.#lastService && peer === this.#lastPeer) groups = this.#lastGroups!;
    else {
      groups = service.byPeer.get(peer);
      if (!groups) {
        groups = [];
        service.byPeer.set(peer, groups);
      }
      this.#lastService = service;
      this.#lastPeer = peer;
      this.#lastGroups = groups;
    }
    const gi = (reporter === 'source' ? 0 : 2) + (protocol === 'grpc' ? 1 : 0);
    const group = (groups[gi] ??= new Group());
    const grpcStatus = protocol === 'grpc' ? o.grpcStatus : undefined;
    const common =
      flags === '-' &&
      o.securityPolicy === undefined &&
      o.localPrincipal === undefined &&
      o.peerPrincipal === undefined &&
      Number.isInteger(o.status) &&
      o.status >= 0 &&
      o.status < 1000 &&
      (grpcStatus === undefined || (Number.isInteger(grpcStatus) && grpcStatus >= 0 && grpcStatus < 31));
    if (common) {
      const k = o.status * 32 + (grpcStatus ?? 31);
      let s = group.common.get(k);
      if (!s) {
        s = this.#create(reporter, protocol, service, peer, o, flags, grpcStatus);
        group.common.set(k, s);
      }
      return s;
    }
    const k = `${o.status}|${grpcStatus ?? ''}|${flags}|${o.securityPolicy ?? ''}|${o.localPrincipal ?? ''}|${o.peerPrincipal ?? ''}`;
    let s = group.other.get(k);
    if (!s) {
      s = this.#create(reporter, protocol, service, peer, o, flags, grpcStatus);
      group.other.set(k, s);
    }
    return s;
  }

  #create(
    reporter: 'source' | 'destination',
    protocol: 'http' | 'grpc',
    service: ServiceEntry,
    peer: PeerEntry | null,
    o: SeriesOutcome,
    flags: string,
    grpcStatus: number | undefined,
  ): Series {
    const labels = Object.freeze(
      istioLabels({
        reporter,
        local: this.#local,
        peer: peer?.labels,
        service: service.labels,
        localPrincipal: o.localPrincipal,
        peerPrincipal: o.peerPrincipal,
        protocol,
        responseCode: String(o.status),
        grpcStatus: grpcStatus === undefined ? '' : String(grpcStatus),
        flags,
        // Istio's client side cannot tell and says unknown; a server without TLS says none.
        securityPolicy: o.securityPolicy ?? (reporter === 'source' ? 'unknown' : 'none'),
      }),
    );
    const key = Object.values(labels).join('\u0000');
    let s = this.#byLabels.get(key);
    if (!s) {
      s = new Series(labels, protocol === 'grpc');
      this.#byLabels.set(key, s);
      this.#all.push(s);
    }
    return s;
  }
}
