// Builders for xDS resources in proto3 JSON, shaped the way istiod's grpc generator
// shapes them (Listener named host:port with an HCM over RDS, EDS clusters), for tests.
import { TYPE_URLS } from '@meshlet/xds-client';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

export function listener(name: string, routeConfigName: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.listener,
    name,
    api_listener: {
      api_listener: {
        '@type': HCM,
        rds: { route_config_name: routeConfigName, config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
        ...extra,
      },
    },
  };
}

export interface RouteSpec {
  prefix?: string;
  path?: string;
  headers?: unknown[];
  cluster?: string;
  weighted?: Array<[cluster: string, weight: number]>;
  extra?: Record<string, unknown>;
}

export function route(spec: RouteSpec): Record<string, unknown> {
  const match: Record<string, unknown> = spec.path !== undefined ? { path: spec.path } : { prefix: spec.prefix ?? '' };
  if (spec.headers) match['headers'] = spec.headers;
  const action: Record<string, unknown> = spec.weighted
    ? { weighted_clusters: { clusters: spec.weighted.map(([name, weight]) => ({ name, weight })) } }
    : { cluster: spec.cluster };
  return { match, route: { ...action, ...(spec.extra ?? {}) } };
}

export function routeConfig(name: string, virtualHosts: Array<{ name?: string; domains: string[]; routes: RouteSpec[] }>): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.routeConfiguration,
    name,
    virtual_hosts: virtualHosts.map((vh, i) => ({ name: vh.name ?? `vh${i}`, domains: vh.domains, routes: vh.routes.map(route) })),
  };
}

export function edsCluster(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.cluster,
    name,
    type: 'EDS',
    eds_cluster_config: { service_name: name, eds_config: { ads: {}, resource_api_version: 'V3' } },
    lb_policy: 'ROUND_ROBIN',
    ...extra,
  };
}

export function endpoints(
  clusterName: string,
  addresses: Array<[host: string, port: number]>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.clusterLoadAssignment,
    cluster_name: clusterName,
    endpoints: [
      {
        locality: { region: 'r1', zone: 'z1' },
        load_balancing_weight: 1,
        lb_endpoints: addresses.map(([address, port]) => ({
          endpoint: { address: { socket_address: { address, port_value: port } } },
          health_status: 'HEALTHY',
        })),
      },
    ],
    ...extra,
  };
}

/** A gRPC-format bootstrap pointing at one insecure xDS server. */
export function bootstrapFor(serverUri: string, nodeId = 'sidecar~127.0.0.1~test.default~default.svc.cluster.local'): Record<string, unknown> {
  return {
    xds_servers: [{ server_uri: serverUri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, cluster: 'test', locality: { region: 'r1', zone: 'z1' }, metadata: { NAMESPACE: 'default', GENERATOR: 'grpc' } },
  };
}

/** A route chosen by the call's `x-case` header (a test file's cases side by side on one route table). */
export function caseRoute(name: string, cluster: string, action: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, match: { prefix: '', headers: [{ name: 'x-case', string_match: { exact: name } }] }, route: { cluster, ...action } };
}
