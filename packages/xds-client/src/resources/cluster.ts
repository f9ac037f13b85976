// Cluster → ClusterResource (cluster.proto; gRFC A27 EDS, A37 aggregate and
// LOGICAL_DNS, A29 TLS, A32 circuit breaking, A42/A48/A52/A58 LB policies, A50
// outlier detection).
import type {
  envoy_config_cluster_v3_CircuitBreakers,
  envoy_config_cluster_v3_CircuitBreakers_Thresholds,
  envoy_config_cluster_v3_Cluster,
  envoy_config_cluster_v3_Cluster_CommonLbConfig,
  envoy_config_cluster_v3_OutlierDetection,
  envoy_extensions_clusters_aggregate_v3_ClusterConfig,
  envoy_extensions_upstreams_http_v3_HttpProtocolOptions,
} from '../generated/pb.js';
import { boolOf, durationMs, fail, metadata, percent, positiveDurationMs, structToJson, sub, u32, u32Opt } from './common.js';
import { parseClusterLoadAssignment } from './endpoints.js';
import { parseClusterLbPolicy } from './lb-policy.js';
import { parseTransportSocket } from './tls.js';
import { decodeBytes } from './typed-config.js';
import type {
  CircuitBreakerThresholds,
  CircuitBreakers,
  ClusterCommon,
  ClusterDiscovery,
  ClusterResource,
  CommonLbConfig,
  OutlierDetection,
  TransportSocketMatch,
  UpstreamHttpProtocolOptions,
} from './types.js';

const DISCOVERY = { STATIC: 0, STRICT_DNS: 1, LOGICAL_DNS: 2, EDS: 3, ORIGINAL_DST: 4 };
const AGGREGATE_URL = 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig';
const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_PROTOCOL_OPTIONS_URL = `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS_KEY}`;

export function parseCluster(c: envoy_config_cluster_v3_Cluster): ClusterResource {
  const discovery = clusterDiscovery(c);
  const upstreamHttpProtocolOptions = httpProtocolOptions(c);
  const common: ClusterCommon = {
    name: c.name,
    // An aggregate cluster balances through its children's policies (gRFC A37/A75);
    // Envoy requires lb_policy CLUSTER_PROVIDED on it, so its own policy is not read.
    lbPolicy: discovery.type === 'AGGREGATE' ? [] : parseClusterLbPolicy(c),
    circuitBreakers: circuitBreakers(c.circuit_breakers, 'circuit_breakers'),
    outlierDetection: c.outlier_detection ? outlierDetection(c.outlier_detection, 'outlier_detection') : undefined,
    // cluster.proto: connect_timeout gt 0, default 5 s.
    connectTimeout: positiveDurationMs(c.connect_timeout, 'connect_timeout') ?? 5_000,
    commonLbConfig: commonLbConfig(c.common_lb_config, 'common_lb_config'),
    transportSocket: parseTransportSocket(c.transport_socket, 'transport_socket', 'upstream'),
    transportSocketMatches: c.transport_socket_matches.map(
      (m, i): TransportSocketMatch => ({
        name: m.name,
        match: structToJson(m.match),
        transportSocket: parseTransportSocket(m.transport_socket, `transport_socket_matches[${i}].transport_socket`, 'upstream'),
      }),
    ),
    metadata: metadata(c.metadata),
    lrsServer: lrsServer(c),
    maxRequestsPerConnection: upstreamHttpProtocolOptions?.maxRequestsPerConnection ?? u32Opt(c.max_requests_per_connection),
    upstreamHttpProtocolOptions,
  };
  return { ...common, ...discovery };
}

function clusterDiscovery(c: envoy_config_cluster_v3_Cluster): ClusterDiscovery {
  if (c.cluster_discovery_type === 'cluster_type') {
    const ct = c.cluster_type!;
    const any = ct.typed_config;
    // gRFC A37: the aggregate cluster is identified by its config type.
    if (!any || any.type_url !== AGGREGATE_URL) {
      fail('cluster_type', `unsupported custom cluster type "${ct.name}"${any ? ` (${any.type_url})` : ''}`);
    }
    const cfg = decodeBytes<envoy_extensions_clusters_aggregate_v3_ClusterConfig>(
      'envoy.extensions.clusters.aggregate.v3.ClusterConfig',
      any.value,
      'cluster_type.typed_config',
    );
    if (cfg.clusters.length === 0) fail('cluster_type.typed_config.clusters', 'an aggregate cluster needs at least one cluster');
    return { type: 'AGGREGATE', aggregateClusters: cfg.clusters.slice() };
  }
  const type = c.cluster_discovery_type === 'type' ? c.type ?? DISCOVERY.STATIC : DISCOVERY.STATIC;
  switch (type) {
    case DISCOVERY.EDS: {
      const eds = c.eds_cluster_config;
      const cs = eds?.eds_config;
      // gRFC A27 (ads), A47 (self): EDS comes from the same control plane.
      if (!cs) fail('eds_cluster_config.eds_config', 'is required for an EDS cluster');
      if (cs.config_source_specifier !== 'ads' && cs.config_source_specifier !== 'self') {
        fail('eds_cluster_config.eds_config', `config source must be ads or self, not ${cs.config_source_specifier ?? 'unset'}`);
      }
      // gRFC A47: an xdstp: cluster name cannot double as the EDS resource name.
      if (c.name.startsWith('xdstp:') && !eds!.service_name) {
        fail('eds_cluster_config.service_name', 'is required when the cluster name is an xdstp: name');
      }
      return { type: 'EDS', edsServiceName: eds!.service_name || undefined };
    }
    case DISCOVERY.LOGICAL_DNS: {
      // gRFC A37: exactly one locality holding exactly one endpoint.
      const la = c.load_assignment;
      if (!la) fail('load_assignment', 'a LOGICAL_DNS cluster needs a load_assignment');
      if (la.endpoints.length !== 1) {
        fail('load_assignment.endpoints', `a LOGICAL_DNS cluster needs exactly one locality, got ${la.endpoints.length}`);
      }
      const lbs = la.endpoints[0]!.lb_endpoints;
      if (lbs.length !== 1) {
        fail('load_assignment.endpoints[0].lb_endpoints', `a LOGICAL_DNS cluster needs exactly one endpoint, got ${lbs.length}`);
      }
      const ep = lbs[0]!.endpoint;
      const sa = ep?.address?.socket_address;
      const p = 'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address';
      if (!sa) fail(p, 'is required');
      if (!sa.address) fail(sub(p, 'address'), 'must not be empty');
      if (sa.port_specifier !== 'port_value') fail(sub(p, 'port_value'), 'a numeric port_value is required');
      const port = sa.port_value!;
      if (port < 1 || port > 65535) fail(sub(p, 'port_value'), `port ${port} is out of range [1, 65535]`);
      return {
        type: 'LOGICAL_DNS',
        dnsHost: sa.address,
        dnsPort: port,
        // cluster.proto: dns_refresh_rate gt 1 ms, default 5000 ms.
        dnsRefreshRate: dnsRate(c.dns_refresh_rate, 'dns_refresh_rate') ?? 5_000,
        dnsFailureRefreshRate: dnsFailureRefreshRate(c),
        respectDnsTtl: c.respect_dns_ttl,
      };
    }
    case DISCOVERY.STATIC: {
      const la = c.load_assignment;
      const loadAssignment = la
        ? parseClusterLoadAssignment(la, 'load_assignment')
        : { clusterName: c.name, priorities: [], dropOverloads: [], overprovisioningFactor: 140, weightedPriorityHealth: false };
      return { type: 'STATIC', loadAssignment };
    }
    default:
      fail('type', `unsupported cluster discovery type ${Object.keys(DISCOVERY).find((k) => DISCOVERY[k as keyof typeof DISCOVERY] === type) ?? type}`);
  }
}

/** A DNS refresh interval: cluster.proto's rule for these is `gt {nanos: 1000000}` (> 1 ms). */
function dnsRate(d: Parameters<typeof durationMs>[0], path: string): number | undefined {
  const ms = durationMs(d, path);
  if (ms !== undefined && !(ms > 1)) fail(path, `must be greater than 1ms, got ${ms}ms`);
  return ms;
}

function dnsFailureRefreshRate(c: envoy_config_cluster_v3_Cluster): { baseInterval: number; maxInterval: number } | undefined {
  const r = c.dns_failure_refresh_rate;
  if (!r) return undefined;
  // cluster.proto RefreshRate: base_interval required, > 1 ms; max_interval > 1 ms, at least
  // base_interval, default 10 × base_interval.
  const baseInterval = dnsRate(r.base_interval, 'dns_failure_refresh_rate.base_interval');
  if (baseInterval === undefined) fail('dns_failure_refresh_rate.base_interval', 'is required');
  const maxInterval = dnsRate(r.max_interval, 'dns_failure_refresh_rate.max_interval') ?? 10 * baseInterval;
  if (maxInterval < baseInterval) {
    fail('dns_failure_refresh_rate.max_interval', `${maxInterval}ms is less than base_interval ${baseInterval}ms`);
  }
  return { baseInterval, maxInterval };
}

function thresholds(
  t: envoy_config_cluster_v3_CircuitBreakers_Thresholds | undefined,
  path: string,
): CircuitBreakerThresholds {
  // circuit_breaker.proto / Envoy's circuit breaking docs: 1024, 1024, 1024, 3.
  if (!t) return DEFAULT_THRESHOLDS;
  let retryBudget: CircuitBreakerThresholds['retryBudget'];
  if (t.retry_budget) {
    const rb = t.retry_budget;
    const budgetPercent = rb.budget_percent ? rb.budget_percent.value : 20;
    if (!(budgetPercent >= 0 && budgetPercent <= 100)) {
      fail(sub(path, 'retry_budget.budget_percent'), `percentage ${budgetPercent} outside [0, 100]`);
    }
    retryBudget = { budgetPercent, minRetryConcurrency: u32(rb.min_retry_concurrency, 3) };
  }
  return {
    maxConnections: u32(t.max_connections, 1024),
    maxPendingRequests: u32(t.max_pending_requests, 1024),
    maxRequests: u32(t.max_requests, 1024),
    maxRetries: u32(t.max_retries, 3),
    retryBudget,
    trackRemaining: t.track_remaining,
    maxConnectionPools: u32Opt(t.max_connection_pools),
  };
}

const DEFAULT_THRESHOLDS: CircuitBreakerThresholds = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  retryBudget: undefined,
  trackRemaining: false,
  maxConnectionPools: undefined,
});

function circuitBreakers(cb: envoy_config_cluster_v3_CircuitBreakers | null | undefined, path: string): CircuitBreakers {
  if (!cb) return { default: DEFAULT_THRESHOLDS, high: DEFAULT_THRESHOLDS };
  let def: envoy_config_cluster_v3_CircuitBreakers_Thresholds | undefined;
  let high: envoy_config_cluster_v3_CircuitBreakers_Thresholds | undefined;
  let defIndex = -1;
  let highIndex = -1;
  for (let i = 0; i < cb.thresholds.length; i++) {
    const t = cb.thresholds[i]!;
    // Envoy uses the first entry for each RoutingPriority.
    if (t.priority === 0 && !def) {
      def = t;
      defIndex = i;
    } else if (t.priority === 1 && !high) {
      high = t;
      highIndex = i;
    } else if (t.priority !== 0 && t.priority !== 1) {
      fail(`${path}.thresholds[${i}].priority`, `unknown routing priority ${t.priority}`);
    }
  }
  return {
    default: thresholds(def, `${path}.thresholds[${defIndex}]`),
    high: thresholds(high, `${path}.thresholds[${highIndex}]`),
  };
}

function outlierDetection(o: envoy_config_cluster_v3_OutlierDetection, path: string): OutlierDetection {
  const p = (f: string): string => sub(path, f);
  // Defaults from outlier_detection.proto; percentages limited to 100 (gRFC A50).
  const baseEjectionTime = positiveDurationMs(o.base_ejection_time, p('base_ejection_time')) ?? 30_000;
  const maxEjectionTime =
    positiveDurationMs(o.max_ejection_time, p('max_ejection_time')) ?? Math.max(300_000, baseEjectionTime);
  return {
    consecutive5xx: u32(o.consecutive_5xx, 5),
    interval: positiveDurationMs(o.interval, p('interval')) ?? 10_000,
    baseEjectionTime,
    maxEjectionTime,
    maxEjectionTimeJitter: durationMs(o.max_ejection_time_jitter, p('max_ejection_time_jitter')) ?? 0,
    maxEjectionPercent: percent(o.max_ejection_percent, 10, p('max_ejection_percent')),
    enforcingConsecutive5xx: percent(o.enforcing_consecutive_5xx, 100, p('enforcing_consecutive_5xx')),
    enforcingSuccessRate: percent(o.enforcing_success_rate, 100, p('enforcing_success_rate')),
    successRateMinimumHosts: u32(o.success_rate_minimum_hosts, 5),
    successRateRequestVolume: u32(o.success_rate_request_volume, 100),
    successRateStdevFactor: u32(o.success_rate_stdev_factor, 1900),
    consecutiveGatewayFailure: u32(o.consecutive_gateway_failure, 5),
    enforcingConsecutiveGatewayFailure: percent(
      o.enforcing_consecutive_gateway_failure,
      0,
      p('enforcing_consecutive_gateway_failure'),
    ),
    splitExternalLocalOriginErrors: o.split_external_local_origin_errors,
    consecutiveLocalOriginFailure: u32(o.consecutive_local_origin_failure, 5),
    enforcingConsecutiveLocalOriginFailure: percent(
      o.enforcing_consecutive_local_origin_failure,
      100,
      p('enforcing_consecutive_local_origin_failure'),
    ),
    enforcingLocalOriginSuccessRate: percent(o.enforcing_local_origin_success_rate, 100, p('enforcing_local_origin_success_rate')),
    failurePercentageThreshold: percent(o.failure_percentage_threshold, 85, p('failure_percentage_threshold')),
    enforcingFailurePercentage: percent(o.enforcing_failure_percentage, 0, p('enforcing_failure_percentage')),
    enforcingFailurePercentageLocalOrigin: percent(
      o.enforcing_failure_percentage_local_origin,
      0,
      p('enforcing_failure_percentage_local_origin'),
    ),
    failurePercentageMinimumHosts: u32(o.failure_percentage_minimum_hosts, 5),
    failurePercentageRequestVolume: u32(o.failure_percentage_request_volume, 50),
    successfulActiveHealthCheckUnejectHost: boolOf(o.successful_active_health_check_uneject_host, true),
    alwaysEjectOneHost: boolOf(o.always_eject_one_host, false),
  };
}

function commonLbConfig(c: envoy_config_cluster_v3_Cluster_CommonLbConfig | null | undefined, path: string): CommonLbConfig {
  if (!c) return DEFAULT_COMMON_LB;
  const threshold = c.healthy_panic_threshold ? c.healthy_panic_threshold.value : 50;
  if (!(threshold >= 0 && threshold <= 100)) fail(sub(path, 'healthy_panic_threshold'), `percentage ${threshold} outside [0, 100]`);
  const z = c.zone_aware_lb_config;
  return {
    healthyPanicThreshold: threshold,
    localityWeightedLbConfig: c.locality_config_specifier === 'locality_weighted_lb_config',
    zoneAwareLbConfig:
      c.locality_config_specifier === 'zone_aware_lb_config' && z
        ? {
            routingEnabled: z.routing_enabled ? z.routing_enabled.value : 100,
            minClusterSize: z.min_cluster_size ? z.min_cluster_size.value : 6,
            failTrafficOnPanic: z.fail_traffic_on_panic,
          }
        : undefined,
    ignoreNewHostsUntilFirstHc: c.ignore_new_hosts_until_first_hc,
    updateMergeWindow: durationMs(c.update_merge_window, sub(path, 'update_merge_window')) ?? 1_000,
  };
}

const DEFAULT_COMMON_LB: CommonLbConfig = Object.freeze({
  healthyPanicThreshold: 50,
  localityWeightedLbConfig: false,
  zoneAwareLbConfig: undefined,
  ignoreNewHostsUntilFirstHc: false,
  updateMergeWindow: 1_000,
});

function lrsServer(c: envoy_config_cluster_v3_Cluster): 'self' | undefined {
  const cs = c.lrs_server;
  if (!cs) return undefined;
  // gRFC A27: load reports go to the management server itself.
  if (cs.config_source_specifier !== 'self') fail('lrs_server', 'only a self config source is supported');
  return 'self';
}

function httpProtocolOptions(c: envoy_config_cluster_v3_Cluster): UpstreamHttpProtocolOptions | undefined {
  const any = c.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS_KEY];
  if (!any) return undefined;
  const path = `typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS_KEY}"]`;
  if (any.type_url !== HTTP_PROTOCOL_OPTIONS_URL) fail(path, `expected ${HTTP_PROTOCOL_OPTIONS_URL}, got ${any.type_url}`);
  const o = decodeBytes<envoy_extensions_upstreams_http_v3_HttpProtocolOptions>(HTTP_PROTOCOL_OPTIONS_KEY, any.value, path);
  const common = o.common_http_protocol_options;
  const cp = sub(path, 'common_http_protocol_options');
  let explicitHttpConfig: UpstreamHttpProtocolOptions['explicitHttpConfig'];
  if (o.upstream_protocol_options === 'explicit_http_config') {
    const e = o.explicit_http_config!;
    explicitHttpConfig =
      e.protocol_config === 'http2_protocol_options' ? 'http2' : e.protocol_config === 'http3_protocol_options' ? 'http3' : 'http1';
  }
  return {
    explicitHttpConfig,
    useDownstreamProtocol: o.upstream_protocol_options === 'use_downstream_protocol_config',
    autoConfig: o.upstream_protocol_options === 'auto_config',
    idleTimeout: common ? durationMs(common.idle_timeout, sub(cp, 'idle_timeout')) : undefined,
    maxConnectionDuration: common ? durationMs(common.max_connection_duration, sub(cp, 'max_connection_duration')) : undefined,
    maxStreamDuration: common ? durationMs(common.max_stream_duration, sub(cp, 'max_stream_duration')) : undefined,
    maxRequestsPerConnection: common ? u32Opt(common.max_requests_per_connection) : undefined,
  };
}
