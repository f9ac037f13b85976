// Istio's standard metric labels, computed the way istio/proxy's stats filter computes them
// (source/extensions/filters/http/istio_stats): the local workload from the bootstrap node,
// the peer from what the call learned (endpoint metadata, the peer's SPIFFE id), the
// destination service from the cluster's `filter_metadata.istio` (else the Istio cluster name,
// else the authority). Everything here runs once per cluster, endpoint or node, never per call:
// the results are cached by the caller.
import type { ClusterResource, Metadata, NodeConfig } from '@meshlet/xds-client';

export const UNKNOWN = 'unknown';
/** Istio reports an unknown canonical revision as "latest", not "unknown". */
export const LATEST = 'latest';

/** One side of a call, as Istio's workload metadata describes it. */
export interface WorkloadLabels {
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

/** The destination service of a call (destination_service, _name, _namespace). */
export interface ServiceLabels {
  readonly service: string;
  readonly name: string;
  /** Undefined when neither the cluster nor the name says; the peer's namespace is used then. */
  readonly namespace: string | undefined;
}

export const UNKNOWN_WORKLOAD: WorkloadLabels = Object.freeze({
  workload: UNKNOWN,
  namespace: UNKNOWN,
  app: UNKNOWN,
  version: UNKNOWN,
  canonicalService: UNKNOWN,
  canonicalRevision: LATEST,
  cluster: UNKNOWN,
});

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The process's own workload from the bootstrap node. Istio's agent puts NAMESPACE,
 * WORKLOAD_NAME, LABELS, CLUSTER_ID (and OWNER) in the node metadata; a hand-written gRPC
 * bootstrap often has only the id `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, so the
 * namespace falls back to the id. Canonical service and revision follow Istio's label
 * fallbacks (service.istio.io/canonical-name, app.kubernetes.io/name, app, workload name;
 * revision: canonical-revision, app.kubernetes.io/version, version, "latest").
 */
export function localWorkload(node: NodeConfig | undefined): WorkloadLabels {
  if (!node) return UNKNOWN_WORKLOAD;
  const md = node.metadata ?? {};
  const rawLabels = md['LABELS'];
  const labels: Record<string, unknown> = rawLabels && typeof rawLabels === 'object' && !Array.isArray(rawLabels) ? (rawLabels as Record<string, unknown>) : {};
  const idNamespace = namespaceFromNodeId(node.id);
  const owner = str(md['OWNER']);
  const workload = str(md['WORKLOAD_NAME']) ?? (owner ? owner.slice(owner.lastIndexOf('/') + 1) || undefined : undefined);
  const app = str(labels['app']) ?? str(labels['app.kubernetes.io/name']);
  const version = str(labels['version']) ?? str(labels['app.kubernetes.io/version']);
  return Object.freeze({
    workload: workload ?? UNKNOWN,
    namespace: str(md['NAMESPACE']) ?? idNamespace ?? UNKNOWN,
    app: app ?? UNKNOWN,
    version: version ?? UNKNOWN,
    canonicalService: str(labels['service.istio.io/canonical-name']) ?? app ?? workload ?? UNKNOWN,
    canonicalRevision: str(labels['service.istio.io/canonical-revision']) ?? version ?? LATEST,
    cluster: str(md['CLUSTER_ID']) ?? UNKNOWN,
  });
}

/** `sidecar~10.0.0.1~pod-abc.ns~ns.svc.cluster.local` → `ns`. */
export function namespaceFromNodeId(id: string): string | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const podDotNs = parts[2]!;
  const dot = podDotNs.indexOf('.');
  if (dot > 0 && dot < podDotNs.length - 1) return podDotNs.slice(dot + 1);
  const domain = parts[3]!;
  const d = domain.indexOf('.');
  return d > 0 ? domain.slice(0, d) : undefined;
}

/**
 * The peer's workload from Istio's endpoint metadata, `filter_metadata.istio.workload`:
 * `name;namespace;canonical-service;canonical-revision;cluster-id` (app and version are not
 * in the encoding). Undefined when the endpoint carries none.
 */
export function endpointWorkload(metadata: Metadata | undefined): WorkloadLabels | undefined {
  const encoded = metadata?.filterMetadata['istio']?.['workload'];
  if (typeof encoded !== 'string') return undefined;
  const parts = encoded.split(';');
  if (parts.length < 5) return undefined;
  return Object.freeze({
    workload: parts[0] || UNKNOWN,
    namespace: parts[1] || UNKNOWN,
    app: UNKNOWN,
    version: UNKNOWN,
    canonicalService: parts[2] || UNKNOWN,
    canonicalRevision: parts[3] || LATEST,
    cluster: parts[4] || UNKNOWN,
  });
}

/** `spiffe://td/ns/<ns>/sa/<sa>` → `<ns>` (Istio's principal namespace rule). */
export function namespaceFromPrincipal(principal: string | undefined): string | undefined {
  if (!principal) return undefined;
  const i = principal.indexOf('/ns/');
  if (i < 0) return undefined;
  const start = i + 4;
  const end = principal.indexOf('/', start);
  const ns = end < 0 ? principal.slice(start) : principal.slice(start, end);
  return ns || undefined;
}

/**
 * The destination service of a cluster. Istio's cluster metadata names it
 * (`filter_metadata.istio.services[0]` with host, name, namespace); istiod's gRPC generator
 * names clusters `outbound|<port>|<subset>|<fqdn>`; otherwise the authority the call was
 * made to stands for it, as Envoy's Host-header fallback does.
 */
export function serviceFromCluster(cluster: ClusterResource | string | undefined, authority: string): ServiceLabels {
  if (cluster === undefined) return serviceFromAuthority(authority);
  const name = typeof cluster === 'string' ? cluster : cluster.name;
  if (ISTIO_SPECIAL_CLUSTERS.has(name)) {
    // Istio names these by the cluster: destination_service_name="PassthroughCluster" and
    // the service by the host the call was for.
    return Object.freeze({ service: serviceFromAuthority(authority).service, name, namespace: undefined });
  }
  return serviceOfCluster(cluster) ?? serviceFromAuthority(authority);
}

/**
 * The service a cluster itself names (its Istio metadata, else its Istio name), or undefined
 * when only the call's authority can say (and for Istio's special clusters).
 */
export function serviceOfCluster(cluster: ClusterResource | string): ServiceLabels | undefined {
  const name = typeof cluster === 'string' ? cluster : cluster.name;
  if (ISTIO_SPECIAL_CLUSTERS.has(name)) return undefined;
  if (typeof cluster !== 'string') {
    const fromMeta = serviceFromMetadata(cluster.metadata);
    if (fromMeta) return fromMeta;
  }
  return serviceFromClusterName(name);
}

export function isIstioSpecialCluster(name: string): boolean {
  return ISTIO_SPECIAL_CLUSTERS.has(name);
}

/** Clusters Istio's stats name by themselves (istio_stats.cc). */
const ISTIO_SPECIAL_CLUSTERS: ReadonlySet<string> = new Set([
  'BlackHoleCluster',
  'PassthroughCluster',
  'InboundPassthroughCluster',
  'InboundPassthroughClusterIpv4',
  'InboundPassthroughClusterIpv6',
]);

function serviceFromMetadata(metadata: Metadata | undefined): ServiceLabels | undefined {
  const services = metadata?.filterMetadata['istio']?.['services'];
  if (!Array.isArray(services) || services.length === 0) return undefined;
  const first = services[0];
  if (!first || typeof first !== 'object' || Array.isArray(first)) return undefined;
  const host = str(first['host']);
  if (!host) return undefined;
  const dot = host.indexOf('.');
  return Object.freeze({
    service: host,
    name: str(first['name']) ?? (dot > 0 ? host.slice(0, dot) : host),
    namespace: str(first['namespace']) ?? kubernetesNamespace(host),
  });
}

/** `outbound|8080|v1|reviews.default.svc.cluster.local` (also inbound|...) → reviews.default.svc.cluster.local. */
export function serviceFromClusterName(name: string): ServiceLabels | undefined {
  if (!name.startsWith('outbound|') && !name.startsWith('inbound|')) return undefined;
  const parts = name.split('|');
  if (parts.length !== 4 || !parts[3]) return undefined;
  const fqdn = parts[3];
  const dot = fqdn.indexOf('.');
  return Object.freeze({ service: fqdn, name: dot > 0 ? fqdn.slice(0, dot) : fqdn, namespace: kubernetesNamespace(fqdn) });
}

/** The authority without its port stands for the service (name = the whole host, as Envoy's fallback). */
export function serviceFromAuthority(authority: string): ServiceLabels {
  const host = stripPort(authority) || UNKNOWN;
  return Object.freeze({ service: host, name: host, namespace: kubernetesNamespace(host) });
}

/** `name.ns.svc[.cluster.local]` → `ns`; anything else has no namespace we can trust. */
function kubernetesNamespace(host: string): string | undefined {
  const labels = host.split('.');
  return labels.length >= 3 && labels[2] === 'svc' && labels[1] ? labels[1] : undefined;
}

function stripPort(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(0, end + 1) : authority;
  }
  const colon = authority.lastIndexOf(':');
  return colon >= 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}

/** Istio's standard label names, in the order its stats filter emits them. */
export const ISTIO_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

export type IstioLabelName = (typeof ISTIO_LABEL_NAMES)[number];
export type IstioLabels = { readonly [K in IstioLabelName]: string };

export interface CallLabelInput {
  readonly reporter: 'source' | 'destination';
  /** This process's workload. */
  readonly local: WorkloadLabels;
  /** The other side, when known (endpoint metadata for a client; nothing yet for a server). */
  readonly peer: WorkloadLabels | undefined;
  readonly service: ServiceLabels;
  readonly localPrincipal: string | undefined;
  readonly peerPrincipal: string | undefined;
  readonly protocol: 'http' | 'grpc';
  readonly responseCode: string;
  readonly grpcStatus: string;
  readonly flags: string;
  readonly securityPolicy: string;
}

/**
 * One call's label set. A client (reporter="source") is the source and its peer the
 * destination; a server the reverse. The rules for what is unknown follow istio_stats.cc:
 * the peer's namespace comes from its SPIFFE id first, then its metadata.
 */
export function istioLabels(i: CallLabelInput): IstioLabels {
  const peer = i.peer;
  const peerNs = namespaceFromPrincipal(i.peerPrincipal) ?? (peer && peer.namespace !== UNKNOWN ? peer.namespace : undefined);
  const p = peer ?? UNKNOWN_WORKLOAD;
  const local = i.local;
  if (i.reporter === 'source') {
    return {
      reporter: 'source',
      source_workload: local.workload,
      source_canonical_service: local.canonicalService,
      source_canonical_revision: local.canonicalRevision,
      source_workload_namespace: local.namespace,
      source_principal: i.localPrincipal ?? UNKNOWN,
      source_app: local.app,
      source_version: local.version,
      source_cluster: local.cluster,
      destination_workload: p.workload,
      destination_workload_namespace: peerNs ?? UNKNOWN,
      destination_principal: i.peerPrincipal ?? UNKNOWN,
      destination_app: p.app,
      destination_version: p.version,
      destination_service: i.service.service,
      destination_canonical_service: p.canonicalService,
      destination_canonical_revision: p.canonicalRevision,
      destination_service_name: i.service.name,
      destination_service_namespace: i.service.namespace ?? peerNs ?? UNKNOWN,
      destination_cluster: p.cluster,
      request_protocol: i.protocol,
      response_code: i.responseCode,
      grpc_response_status: i.grpcStatus,
      response_flags: i.flags,
      connection_security_policy: i.securityPolicy,
    };
  }
  return {
    reporter: 'destination',
    source_workload: p.workload,
    source_canonical_service: p.canonicalService,
    source_canonical_revision: p.canonicalRevision,
    source_workload_namespace: peerNs ?? UNKNOWN,
    source_principal: i.peerPrincipal ?? UNKNOWN,
    source_app: p.app,
    source_version: p.version,
    source_cluster: p.cluster,
    destination_workload: local.workload,
    destination_workload_namespace: local.namespace,
    destination_principal: i.localPrincipal ?? UNKNOWN,
    destination_app: local.app,
    destination_version: local.version,
    destination_service: i.service.service,
    destination_canonical_service: local.canonicalService,
    destination_canonical_revision: local.canonicalRevision,
    destination_service_name: i.service.name,
    destination_service_namespace: local.namespace,
    destination_cluster: local.cluster,
    request_protocol: i.protocol,
    response_code: i.responseCode,
    grpc_response_status: i.grpcStatus,
    response_flags: i.flags,
    connection_security_policy: i.securityPolicy,
  };
}
