import { describe, expect, it } from 'vitest';
import { clusterResourceType as C, registerLbPolicyParser } from '../src/resources/index.js';
import type { ClusterResource, OutlierDetection } from '../src/resources/index.js';
import { bad, ok, T } from './fixtures/resources.js';

const LB = 'type.googleapis.com/envoy.extensions.load_balancing_policies.';
const eds = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'c1',
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {} }, service_name: 'c1-eds' },
  ...extra,
});
const policy = (type: string, json: Record<string, unknown> = {}): Record<string, unknown> => ({
  typed_extension_config: { name: type, typed_config: { '@type': LB + type, ...json } },
});
const lbPolicy = (...policies: unknown[]): Record<string, unknown> => eds({ load_balancing_policy: { policies } });

const DEFAULT_THRESHOLDS = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  retryBudget: undefined,
  trackRemaining: false,
  maxConnectionPools: undefined,
};

describe('Cluster', () => {
  it('is required in SotW', () => {
    expect(C.allResourcesRequiredInSotW).toBe(true);
  });

  it('decodes an EDS cluster with every default', () => {
    expect(ok(C, T.cluster, eds())).toEqual<ClusterResource>({
      name: 'c1',
      type: 'EDS',
      edsServiceName: 'c1-eds',
      lbPolicy: [{ name: 'round_robin', config: {} }],
      circuitBreakers: { default: DEFAULT_THRESHOLDS, high: DEFAULT_THRESHOLDS },
      outlierDetection: undefined,
      connectTimeout: 5000,
      commonLbConfig: {
        healthyPanicThreshold: 50,
        localityWeightedLbConfig: false,
        zoneAwareLbConfig: undefined,
        ignoreNewHostsUntilFirstHc: false,
        updateMergeWindow: 1000,
      },
      transportSocket: undefined,
      transportSocketMatches: [],
      metadata: undefined,
      lrsServer: undefined,
      maxRequestsPerConnection: undefined,
      upstreamHttpProtocolOptions: undefined,
    });
    expect(ok(C, T.cluster, eds({ eds_cluster_config: { eds_config: { self: {} } } }))).toMatchObject({ edsServiceName: undefined });
  });

  it('decodes LOGICAL_DNS, STATIC and AGGREGATE clusters', () => {
    const dns = ok(C, T.cluster, {
      name: 'dns',
      type: 'LOGICAL_DNS',
      load_assignment: { cluster_name: 'dns', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'example.com', port_value: 443 } } } }] }] },
    });
    expect(dns).toMatchObject({ type: 'LOGICAL_DNS', dnsHost: 'example.com', dnsPort: 443 });
    // cluster.proto defaults: refresh every 5 s, failures at the same rate, no TTL.
    expect(dns).toMatchObject({ dnsRefreshRate: 5000, dnsFailureRefreshRate: undefined, respectDnsTtl: false });
    const tuned = ok(C, T.cluster, {
      name: 'dns',
      type: 'LOGICAL_DNS',
      load_assignment: { cluster_name: 'dns', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'example.com', port_value: 443 } } } }] }] },
      dns_refresh_rate: '0.25s',
      dns_failure_refresh_rate: { base_interval: '0.1s' },
      respect_dns_ttl: true,
    });
    // max_interval defaults to 10 × base_interval.
    expect(tuned).toMatchObject({ dnsRefreshRate: 250, dnsFailureRefreshRate: { baseInterval: 100, maxInterval: 1000 }, respectDnsTtl: true });
    const capped = ok(C, T.cluster, {
      name: 'dns',
      type: 'LOGICAL_DNS',
      load_assignment: { cluster_name: 'dns', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'example.com', port_value: 443 } } } }] }] },
      dns_failure_refresh_rate: { base_interval: '0.1s', max_interval: '0.1s' },
    });
    expect(capped).toMatchObject({ dnsRefreshRate: 5000, dnsFailureRefreshRate: { baseInterval: 100, maxInterval: 100 } });
    const st = ok(C, T.cluster, {
      name: 'st',
      type: 'STATIC',
      load_assignment: { cluster_name: 'st', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } } }] }] },
    });
    if (st.type !== 'STATIC') throw new Error();
    expect(st.loadAssignment.priorities[0]![0]!.endpoints[0]!.addresses).toEqual([{ host: '127.0.0.1', port: 8080 }]);
    const agg = ok(C, T.cluster, {
      name: 'agg',
      cluster_type: {
        name: 'envoy.clusters.aggregate',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig', clusters: ['primary', 'fallback'] },
      },
      lb_policy: 'CLUSTER_PROVIDED',
    });
    expect(agg).toMatchObject({ type: 'AGGREGATE', aggregateClusters: ['primary', 'fallback'], lbPolicy: [] });
  });

  it('converts the legacy lb_policy enum with its configs', () => {
    expect(ok(C, T.cluster, eds({ lb_policy: 'RING_HASH' })).lbPolicy).toEqual([
      { name: 'ring_hash', config: { minRingSize: 1024, maxRingSize: 8388608, hashFunction: 'XX_HASH' } },
    ]);
    expect(ok(C, T.cluster, eds({ lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: 10, maximum_ring_size: 20 } })).lbPolicy[0]!.config).toMatchObject({
      minRingSize: 10,
      maxRingSize: 20,
    });
    expect(ok(C, T.cluster, eds({ lb_policy: 'LEAST_REQUEST' })).lbPolicy).toEqual([{ name: 'least_request', config: { choiceCount: 2, activeRequestBias: 1 } }]);
    expect(
      ok(C, T.cluster, eds({ lb_policy: 'LEAST_REQUEST', least_request_lb_config: { choice_count: 3, active_request_bias: { default_value: 0.5, runtime_key: 'k' } } })).lbPolicy,
    ).toEqual([{ name: 'least_request', config: { choiceCount: 3, activeRequestBias: 0.5 } }]);
    expect(ok(C, T.cluster, eds({ lb_policy: 'MAGLEV' })).lbPolicy).toEqual([{ name: 'maglev', config: { tableSize: 65537 } }]);
    expect(ok(C, T.cluster, eds({ lb_policy: 'RANDOM' })).lbPolicy).toEqual([{ name: 'random', config: {} }]);
  });

  it('takes load_balancing_policy in order, skipping unsupported entries', () => {
    const c = ok(
      C,
      T.cluster,
      lbPolicy(
        { typed_extension_config: { name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } } },
        policy('wrr_locality.v3.WrrLocality', {
          endpoint_picking_policy: { policies: [policy('client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin')] },
        }),
        policy('pick_first.v3.PickFirst', { shuffle_address_list: true }),
        policy('ring_hash.v3.RingHash', { hash_function: 'XX_HASH', minimum_ring_size: 2048 }),
        policy('maglev.v3.Maglev', { table_size: 7 }),
        policy('least_request.v3.LeastRequest', { choice_count: 4 }),
        policy('random.v3.Random'),
        policy('round_robin.v3.RoundRobin'),
      ),
    );
    expect(c.lbPolicy).toEqual([
      {
        name: 'wrr_locality',
        config: {
          childPolicy: [
            {
              name: 'client_side_weighted_round_robin',
              config: {
                enableOobLoadReport: false,
                oobReportingPeriod: 10_000,
                blackoutPeriod: 10_000,
                weightExpirationPeriod: 180_000,
                weightUpdatePeriod: 1_000,
                errorUtilizationPenalty: 1,
              },
            },
          ],
        },
      },
      { name: 'pick_first', config: { shuffleAddressList: true } },
      { name: 'ring_hash', config: { minRingSize: 2048, maxRingSize: 8388608, hashFunction: 'XX_HASH' } },
      { name: 'maglev', config: { tableSize: 7 } },
      { name: 'least_request', config: { choiceCount: 4, activeRequestBias: 1 } },
      { name: 'random', config: {} },
      { name: 'round_robin', config: {} },
    ]);
  });

  it('reads A58 fields, clamps the weight update period, and accepts a user-registered policy', () => {
    const c = ok(
      C,
      T.cluster,
      lbPolicy(
        policy('client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin', {
          enable_oob_load_report: true,
          oob_reporting_period: '5s',
          blackout_period: '1s',
          weight_expiration_period: '60s',
          weight_update_period: '0.01s',
          error_utilization_penalty: 0.5,
        }),
      ),
    );
    expect(c.lbPolicy[0]!.config).toEqual({
      enableOobLoadReport: true,
      oobReportingPeriod: 5000,
      blackoutPeriod: 1000,
      weightExpirationPeriod: 60_000,
      weightUpdatePeriod: 100,
      errorUtilizationPenalty: 0.5,
    });
    registerLbPolicyParser('type.googleapis.com/test.custom_lb', (config) => ({ name: 'custom', config: config.json ?? null }));
    const custom = ok(
      C,
      T.cluster,
      lbPolicy({
        typed_extension_config: {
          name: 'custom',
          typed_config: { '@type': 'type.googleapis.com/xds.type.v3.TypedStruct', type_url: 'type.googleapis.com/test.custom_lb', value: { k: 1 } },
        },
      }),
    );
    expect(custom.lbPolicy).toEqual([{ name: 'custom', config: { k: 1 } }]);
  });

  it('decodes circuit breakers, outlier detection and common LB config', () => {
    const c = ok(
      C,
      T.cluster,
      eds({
        connect_timeout: '0.25s',
        circuit_breakers: {
          thresholds: [
            { max_connections: 10, max_requests: 20, retry_budget: {} },
            { priority: 'HIGH', max_retries: 7, retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 1 } },
          ],
        },
        outlier_detection: {},
        common_lb_config: { healthy_panic_threshold: { value: 0 }, locality_weighted_lb_config: {} },
        max_requests_per_connection: 100,
      }),
    );
    expect(c.connectTimeout).toBe(250);
    expect(c.circuitBreakers).toEqual({
      default: { ...DEFAULT_THRESHOLDS, maxConnections: 10, maxRequests: 20, retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } },
      high: { ...DEFAULT_THRESHOLDS, maxRetries: 7, retryBudget: { budgetPercent: 50, minRetryConcurrency: 1 } },
    });
    expect(c.outlierDetection).toEqual<OutlierDetection>({
      consecutive5xx: 5,
      interval: 10_000,
      baseEjectionTime: 30_000,
      maxEjectionTime: 300_000,
      maxEjectionTimeJitter: 0,
      maxEjectionPercent: 10,
      enforcingConsecutive5xx: 100,
      enforcingSuccessRate: 100,
      successRateMinimumHosts: 5,
      successRateRequestVolume: 100,
      successRateStdevFactor: 1900,
      consecutiveGatewayFailure: 5,
      enforcingConsecutiveGatewayFailure: 0,
      splitExternalLocalOriginErrors: false,
      consecutiveLocalOriginFailure: 5,
      enforcingConsecutiveLocalOriginFailure: 100,
      enforcingLocalOriginSuccessRate: 100,
      failurePercentageThreshold: 85,
      enforcingFailurePercentage: 0,
      enforcingFailurePercentageLocalOrigin: 0,
      failurePercentageMinimumHosts: 5,
      failurePercentageRequestVolume: 50,
      successfulActiveHealthCheckUnejectHost: true,
      alwaysEjectOneHost: false,
    });
    expect(c.commonLbConfig).toMatchObject({ healthyPanicThreshold: 0, localityWeightedLbConfig: true });
    expect(c.maxRequestsPerConnection).toBe(100);
    const od = ok(C, T.cluster, eds({ outlier_detection: { interval: '1s', base_ejection_time: '400s', max_ejection_percent: 100, enforcing_success_rate: 0 } }));
    expect(od.outlierDetection).toMatchObject({ interval: 1000, baseEjectionTime: 400_000, maxEjectionTime: 400_000, maxEjectionPercent: 100, enforcingSuccessRate: 0 });
  });

  it('decodes TLS (with the deprecated twin fields), raw_buffer, socket matches, metadata, LRS and HTTP protocol options', () => {
    const tls = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        sni: 'outbound_.80_._.svc',
        common_tls_context: {
          tls_certificate_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' },
          combined_validation_context: {
            default_validation_context: {
              match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/svc' }],
              match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }],
            },
            validation_context_certificate_provider_instance: { instance_name: 'default', certificate_name: 'ROOTCA' },
          },
          alpn_protocols: ['h2'],
        },
      },
    };
    const c = ok(
      C,
      T.cluster,
      eds({
        transport_socket: tls,
        transport_socket_matches: [
          { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: tls },
          { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } } },
        ],
        metadata: {
          filter_metadata: { istio: { services: [{ host: 'a.svc', port: 80 }], default_original_port: 80, on: true, nil: null } },
          typed_filter_metadata: { 'envoy.x': { '@type': 'type.googleapis.com/google.protobuf.Empty' } },
        },
        lrs_server: { self: {} },
        typed_extension_protocol_options: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicit_http_config: { http2_protocol_options: {} },
            common_http_protocol_options: { idle_timeout: '60s', max_requests_per_connection: 50 },
          },
        },
      }),
    );
    expect(c.transportSocket).toEqual({
      name: 'envoy.transport_sockets.tls',
      kind: 'tls',
      upstreamTls: {
        sni: 'outbound_.80_._.svc',
        allowRenegotiation: false,
        commonTlsContext: {
          tlsCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' },
          caCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' },
          useSystemRootCerts: false,
          matchSubjectAltNames: [
            { sanType: 'URI', matcher: { kind: 'prefix', value: 'spiffe://cluster.local/', ignoreCase: false }, oid: '' },
            { sanType: undefined, matcher: { kind: 'exact', value: 'spiffe://cluster.local/ns/default/sa/svc', ignoreCase: false }, oid: '' },
          ],
          alpnProtocols: ['h2'],
        },
      },
    });
    expect(c.transportSocketMatches.map((m) => [m.name, m.match, m.transportSocket?.kind])).toEqual([
      ['tlsMode-istio', { tlsMode: 'istio' }, 'tls'],
      ['tlsMode-disabled', {}, 'plaintext'],
    ]);
    expect(c.metadata).toEqual({
      filterMetadata: { istio: { services: [{ host: 'a.svc', port: 80 }], default_original_port: 80, on: true, nil: null } },
      typedFilterMetadata: { 'envoy.x': { typeUrl: 'type.googleapis.com/google.protobuf.Empty' } },
    });
    expect(c.lrsServer).toBe('self');
    expect(c.upstreamHttpProtocolOptions).toEqual({
      explicitHttpConfig: 'http2',
      useDownstreamProtocol: false,
      autoConfig: false,
      idleTimeout: 60_000,
      maxConnectionDuration: undefined,
      maxStreamDuration: undefined,
      maxRequestsPerConnection: 50,
    });
    expect(c.maxRequestsPerConnection).toBe(50);
  });

  describe('rejects', () => {
    it('an EDS cluster with a non-ADS eds config source', () => {
      bad(C, T.cluster, eds({ eds_cluster_config: { eds_config: { path: '/x' } } }), 'eds_cluster_config.eds_config', 'ads or self');
      bad(C, T.cluster, eds({ eds_cluster_config: {} }), 'eds_cluster_config.eds_config', 'required');
      bad(C, T.cluster, eds({ name: 'xdstp://a/envoy.config.cluster.v3.Cluster/c', eds_cluster_config: { eds_config: { ads: {} } } }), 'eds_cluster_config.service_name');
    });
    it('an aggregate cluster with an empty cluster list', () => {
      bad(
        C,
        T.cluster,
        { name: 'agg', cluster_type: { name: 'envoy.clusters.aggregate', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig' } } },
        'cluster_type.typed_config.clusters',
        'at least one cluster',
      );
    });
    it('LOGICAL_DNS refresh rates out of range', () => {
      const d = (extra: Record<string, unknown>): unknown => ({
        name: 'd',
        type: 'LOGICAL_DNS',
        load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'h', port_value: 1 } } } }] }] },
        ...extra,
      });
      bad(C, T.cluster, d({ dns_refresh_rate: '0.001s' }), 'dns_refresh_rate', 'greater than 1ms');
      bad(C, T.cluster, d({ dns_refresh_rate: '0s' }), 'dns_refresh_rate', 'greater than 1ms');
      bad(C, T.cluster, d({ dns_failure_refresh_rate: {} }), 'dns_failure_refresh_rate.base_interval', 'required');
      bad(C, T.cluster, d({ dns_failure_refresh_rate: { base_interval: '0.001s' } }), 'dns_failure_refresh_rate.base_interval', 'greater than 1ms');
      bad(C, T.cluster, d({ dns_failure_refresh_rate: { base_interval: '2s', max_interval: '1s' } }), 'dns_failure_refresh_rate.max_interval', 'less than base_interval');
    });
    it('LOGICAL_DNS with other than exactly one endpoint', () => {
      const ep = (port: number): unknown => ({ endpoint: { address: { socket_address: { address: 'h', port_value: port } } } });
      bad(C, T.cluster, { name: 'd', type: 'LOGICAL_DNS', load_assignment: { endpoints: [{ lb_endpoints: [ep(1), ep(2)] }] } }, 'load_assignment.endpoints[0].lb_endpoints', 'exactly one endpoint, got 2');
      bad(C, T.cluster, { name: 'd', type: 'LOGICAL_DNS', load_assignment: { endpoints: [{ lb_endpoints: [ep(1)] }, { lb_endpoints: [ep(2)] }] } }, 'load_assignment.endpoints', 'exactly one locality');
      bad(C, T.cluster, { name: 'd', type: 'LOGICAL_DNS' }, 'load_assignment');
    });
    it('an unsupported discovery type or lb_policy', () => {
      bad(C, T.cluster, { name: 'x', type: 'STRICT_DNS' }, 'type', 'STRICT_DNS');
      bad(C, T.cluster, eds({ lb_policy: 'CLUSTER_PROVIDED' }), 'lb_policy', 'unsupported');
    });
    it('load_balancing_policy with no supported entry', () => {
      bad(
        C,
        T.cluster,
        lbPolicy({ typed_extension_config: { name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } } }),
        'load_balancing_policy.policies',
        'no supported load balancing policy',
      );
      bad(C, T.cluster, lbPolicy(policy('wrr_locality.v3.WrrLocality', { endpoint_picking_policy: { policies: [] } })), 'endpoint_picking_policy.policies', 'no supported');
    });
    it('ring hash sizes out of order or above 8M, or a hash other than XX_HASH', () => {
      bad(C, T.cluster, eds({ lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: 100, maximum_ring_size: 10 } }), 'ring_hash_lb_config.minimum_ring_size', 'greater than maximum_ring_size');
      bad(C, T.cluster, eds({ lb_policy: 'RING_HASH', ring_hash_lb_config: { maximum_ring_size: 8388609 } }), 'ring_hash_lb_config.maximum_ring_size', 'exceeds 8388608');
      bad(C, T.cluster, eds({ lb_policy: 'RING_HASH', ring_hash_lb_config: { hash_function: 'MURMUR_HASH_2' } }), 'ring_hash_lb_config.hash_function', 'XX_HASH');
      bad(C, T.cluster, lbPolicy(policy('ring_hash.v3.RingHash', { minimum_ring_size: 9000000 })), 'load_balancing_policy.policies[0].typed_extension_config.typed_config.minimum_ring_size', 'exceeds');
    });
    it('least_request choice_count below 2 and a non-prime maglev table', () => {
      bad(C, T.cluster, lbPolicy(policy('least_request.v3.LeastRequest', { choice_count: 1 })), 'typed_config.choice_count', 'at least 2');
      bad(C, T.cluster, eds({ lb_policy: 'MAGLEV', maglev_lb_config: { table_size: 65536 } }), 'maglev_lb_config.table_size', 'not a prime');
    });
    it('outlier detection percentages above 100', () => {
      for (const field of ['max_ejection_percent', 'enforcing_consecutive_5xx', 'enforcing_success_rate', 'failure_percentage_threshold', 'enforcing_failure_percentage', 'enforcing_consecutive_gateway_failure']) {
        bad(C, T.cluster, eds({ outlier_detection: { [field]: 101 } }), `outlier_detection.${field}`, 'greater than 100');
      }
    });
    it('negative or zero durations where they must be positive', () => {
      bad(C, T.cluster, eds({ connect_timeout: '-1s' }), 'connect_timeout', 'outside');
      bad(C, T.cluster, eds({ connect_timeout: '0s' }), 'connect_timeout', 'greater than 0');
      bad(C, T.cluster, eds({ outlier_detection: { interval: '-0.5s' } }), 'outlier_detection.interval');
    });
    it('TLS without a CA, with SDS, or an unknown transport socket; LRS other than self', () => {
      const ctxWith = (common: Record<string, unknown>): Record<string, unknown> =>
        eds({
          transport_socket: {
            name: 'tls',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: common },
          },
        });
      bad(C, T.cluster, ctxWith({}), 'transport_socket.typed_config.common_tls_context', 'CA certificate provider');
      bad(C, T.cluster, ctxWith({ tls_certificate_sds_secret_configs: [{ name: 'default' }] }), 'tls_certificate_sds_secret_configs', 'SDS');
      bad(C, T.cluster, eds({ transport_socket: { name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } } }), 'transport_socket.typed_config', 'unsupported transport socket');
      bad(C, T.cluster, eds({ lrs_server: { ads: {} } }), 'lrs_server', 'self');
    });
  });
});
