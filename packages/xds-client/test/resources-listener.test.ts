import { describe, expect, it } from 'vitest';
import { listenerResourceType, registerHttpFilter, registerResourceType, resourceTypeForUrl } from '../src/resources/index.js';
import type { FaultFilterConfig, ListenerResource, RbacFilterConfig } from '../src/resources/index.js';
import { TYPE_URLS } from '../src/proto.js';
import { bad, clientListener, ctx, hcm, ok, routerFilter, T, url } from './fixtures/resources.js';

const L = listenerResourceType;

describe('Listener', () => {
  it('registry and SotW flags', () => {
    expect(resourceTypeForUrl(TYPE_URLS.listener)).toBe(L);
    expect(resourceTypeForUrl('type.googleapis.com/test.Thing')).toBeUndefined();
    const thing = { typeUrl: 'type.googleapis.com/test.Thing', shortName: 'Thing', allResourcesRequiredInSotW: false, decode: () => ({ error: 'x' }) };
    registerResourceType(thing);
    expect(resourceTypeForUrl(thing.typeUrl)).toBe(thing);
    expect(L.allResourcesRequiredInSotW).toBe(true);
    expect(L.shortName).toBe('Listener');
  });

  it('decodes a client listener with RDS over ADS', () => {
    const l = ok(L, T.listener, clientListener(hcm({ common_http_protocol_options: { max_stream_duration: '2.5s' } })));
    expect(l).toEqual<ListenerResource>({
      name: 'svc:80',
      apiListener: {
        routeConfigName: 'rc',
        routeConfig: undefined,
        httpFilters: [
          {
            name: 'envoy.filters.http.router',
            typeUrl: url(T.router),
            config: { suppressEnvoyHeaders: false },
            isOptional: false,
            disabled: false,
          },
        ],
        maxStreamDuration: 2500,
        streamIdleTimeout: undefined,
        requestTimeout: undefined,
      },
      address: undefined,
      filterChains: [],
      defaultFilterChain: undefined,
      trafficDirection: 'UNSPECIFIED',
    });
  });

  it('accepts rds with a self config source', () => {
    const l = ok(L, T.listener, clientListener(hcm({ rds: { route_config_name: 'r', config_source: { self: {} } } })));
    expect(l.apiListener?.routeConfigName).toBe('r');
  });

  it('decodes an inline route_config', () => {
    const l = ok(
      L,
      T.listener,
      clientListener(
        hcm({
          rds: undefined,
          route_config: {
            name: 'inline',
            virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster: 'c' } }] }],
          },
        }),
      ),
    );
    expect(l.apiListener?.routeConfigName).toBeUndefined();
    expect(l.apiListener?.routeConfig?.name).toBe('inline');
    expect(l.apiListener?.routeConfig?.virtualHosts[0]?.routes[0]?.action).toMatchObject({ kind: 'route', cluster: { kind: 'cluster', name: 'c' } });
  });

  it('parses the fault filter fully', () => {
    const l = ok(
      L,
      T.listener,
      clientListener(
        hcm({
          http_filters: [
            {
              name: 'fault',
              typed_config: {
                '@type': url(T.fault),
                delay: { fixed_delay: '0.2s', percentage: { numerator: 50, denominator: 'HUNDRED' } },
                abort: { http_status: 503, percentage: { numerator: 25, denominator: 'TEN_THOUSAND' } },
                max_active_faults: 7,
                headers: [{ name: 'x-fault', present_match: true }],
                downstream_nodes: ['n1'],
              },
            },
            routerFilter,
          ],
        }),
      ),
    );
    const f = l.apiListener!.httpFilters[0]!;
    expect(f.name).toBe('fault');
    expect(f.config).toEqual<FaultFilterConfig>({
      delay: { kind: 'fixed', fixedDelay: 200, percentage: { numerator: 50, denominator: 'HUNDRED', perMillion: 500_000 } },
      abort: {
        kind: 'http_status',
        httpStatus: 503,
        grpcStatus: undefined,
        percentage: { numerator: 25, denominator: 'TEN_THOUSAND', perMillion: 2_500 },
      },
      maxActiveFaults: 7,
      headers: [{ name: 'x-fault', match: { kind: 'present', present: true }, invertMatch: false, treatMissingHeaderAsEmpty: false }],
      downstreamNodes: ['n1'],
      upstreamCluster: '',
    });
  });

  it('parses header-controlled and gRPC fault variants', () => {
    const l = ok(
      L,
      T.listener,
      clientListener(
        hcm({
          http_filters: [
            {
              name: 'fault',
              typed_config: {
                '@type': url(T.fault),
                delay: { header_delay: {}, percentage: { numerator: 1, denominator: 'MILLION' } },
                abort: { grpc_status: 14 },
              },
            },
            routerFilter,
          ],
        }),
      ),
    );
    const cfg = l.apiListener!.httpFilters[0]!.config as FaultFilterConfig;
    expect(cfg.delay).toEqual({ kind: 'header', fixedDelay: undefined, percentage: { numerator: 1, denominator: 'MILLION', perMillion: 1 } });
    expect(cfg.abort).toMatchObject({ kind: 'grpc_status', grpcStatus: 14, percentage: { perMillion: 0 } });
    expect(cfg.maxActiveFaults).toBeUndefined();
  });

  it('parses RBAC shallowly and a TypedStruct-wrapped filter', () => {
    const l = ok(
      L,
      T.listener,
      clientListener(
        hcm({
          http_filters: [
            {
              name: 'rbac',
              typed_config: {
                '@type': url(T.rbac),
                rules: {
                  action: 'DENY',
                  policies: { p1: { permissions: [{ any: true }], principals: [{ any: true }] } },
                },
              },
            },
            {
              name: 'fault-ts',
              typed_config: {
                '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
                type_url: url(T.fault),
                value: { abort: { http_status: 418, percentage: { numerator: 100 } } },
              },
            },
            {
              name: 'fault-udpa',
              typed_config: {
                '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct',
                type_url: url(T.fault),
                value: { delay: { fixed_delay: '1s' } },
              },
            },
            routerFilter,
          ],
        }),
      ),
    );
    const [rbac, ts, udpa] = l.apiListener!.httpFilters;
    const rc = rbac!.config as RbacFilterConfig;
    expect(rc.rules?.action).toBe('DENY');
    expect(rc.rules?.policies.p1).toMatchObject({ permissions: [{ any: true }], principals: [{ any: true }] });
    expect(rc.shadowRules).toBeUndefined();
    expect(ts!.typeUrl).toBe(url(T.fault));
    expect((ts!.config as FaultFilterConfig).abort).toMatchObject({ kind: 'http_status', httpStatus: 418, percentage: { perMillion: 1_000_000 } });
    expect((udpa!.config as FaultFilterConfig).delay).toMatchObject({ kind: 'fixed', fixedDelay: 1000 });
  });

  it('skips an unknown optional filter and uses a registered custom one', () => {
    registerHttpFilter('type.googleapis.com/google.protobuf.StringValue', {
      parseTopLevel: (c) => ({ custom: c.bytes?.length ?? -1 }),
    });
    const l = ok(
      L,
      T.listener,
      clientListener(
        hcm({
          http_filters: [
            { name: 'opt', is_optional: true, typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } },
            { name: 'custom', typed_config: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'ab' } },
            routerFilter,
          ],
        }),
      ),
    );
    expect(l.apiListener!.httpFilters.map((f) => f.name)).toEqual(['custom', 'envoy.filters.http.router']);
    expect(l.apiListener!.httpFilters[0]!.config).toEqual({ custom: 4 });
  });

  it('parses the stateful session filter (gRFC A55) as Istio sends it, with a per-route override', () => {
    const ss = 'type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession';
    const l = ok(
      L,
      T.listener,
      clientListener(
        hcm({
          http_filters: [
            {
              name: 'envoy.filters.http.stateful_session',
              is_optional: true,
              typed_config: {
                '@type': ss,
                session_state: {
                  name: 'envoy.http.stateful_session.cookie',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState',
                    cookie: { name: 'session', ttl: '60s', path: '/' },
                  },
                },
              },
            },
            routerFilter,
          ],
          rds: undefined,
          route_config: {
            name: 'inline',
            virtual_hosts: [
              {
                name: 'vh',
                domains: ['*'],
                typed_per_filter_config: {
                  'envoy.filters.http.stateful_session': {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute',
                    disabled: true,
                  },
                },
              },
            ],
          },
        }),
      ),
    );
    expect(l.apiListener!.httpFilters[0]).toMatchObject({
      typeUrl: ss,
      isOptional: true,
      config: { cookie: { name: 'session', ttl: 60_000, path: '/' }, strict: false },
    });
    expect(l.apiListener!.routeConfig!.virtualHosts[0]!.typedPerFilterConfig['envoy.filters.http.stateful_session']?.config).toEqual({
      disabled: true,
      statefulSession: undefined,
    });
  });

  it('decodes a server listener with address and filter chains', () => {
    const l = ok(L, T.listener, {
      name: 'inbound|8080',
      address: { socket_address: { address: '0.0.0.0', port_value: 8080 } },
      traffic_direction: 'INBOUND',
      filter_chains: [
        {
          name: 'chain1',
          filter_chain_match: { destination_port: 8080, prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: 8 }], source_type: 'SAME_IP_OR_LOOPBACK' },
          filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm() }],
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
              require_client_certificate: true,
              common_tls_context: {
                tls_certificate_provider_instance: { instance_name: 'default', certificate_name: 'default' },
                validation_context: { ca_certificate_provider_instance: { instance_name: 'default', certificate_name: 'ROOTCA' } },
              },
            },
          },
        },
      ],
    });
    expect(l.apiListener).toBeUndefined();
    expect(l.address).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(l.trafficDirection).toBe('INBOUND');
    const fc = l.filterChains[0]!;
    expect(fc.match).toEqual({
      destinationPort: 8080,
      prefixRanges: [{ addressPrefix: '10.0.0.0', prefixLen: 8 }],
      sourceType: 'SAME_IP_OR_LOOPBACK',
      sourcePrefixRanges: [],
      sourcePorts: [],
      serverNames: [],
      transportProtocol: '',
      applicationProtocols: [],
    });
    expect(fc.httpConnectionManager?.routeConfigName).toBe('rc');
    expect(fc.transportSocket).toMatchObject({
      kind: 'downstream_tls',
      downstreamTls: {
        requireClientCertificate: true,
        commonTlsContext: {
          tlsCertificateProviderInstance: { instanceName: 'default', certificateName: 'default' },
          caCertificateProviderInstance: { instanceName: 'default', certificateName: 'ROOTCA' },
        },
      },
    });
  });

  describe('rejects', () => {
    it('a listener with neither api_listener nor address', () => {
      bad(L, T.listener, { name: 'x' }, 'neither api_listener', 'nor address');
    });
    it('a server listener without filter chains', () => {
      bad(L, T.listener, { name: 'in', address: { socket_address: { address: '0.0.0.0', port_value: 1 } } }, 'filter_chains', 'at least one filter chain');
    });
    it('an HCM with neither rds nor route_config', () => {
      bad(L, T.listener, clientListener(hcm({ rds: undefined })), 'api_listener', 'neither rds nor route_config');
    });
    it('rds with a non-ADS config source', () => {
      bad(
        L,
        T.listener,
        clientListener(hcm({ rds: { route_config_name: 'r', config_source: { path: '/etc/r.yaml' } } })),
        'api_listener.rds.config_source',
        'ads or self',
      );
    });
    it('a filter chain without the router', () => {
      bad(L, T.listener, clientListener(hcm({ http_filters: [] })), 'api_listener.http_filters', 'terminal');
      bad(
        L,
        T.listener,
        clientListener(hcm({ http_filters: [{ name: 'f', typed_config: { '@type': url(T.fault), abort: { http_status: 500 } } }] })),
        'last HTTP filter must be a terminal filter',
      );
    });
    it('a router that is not last', () => {
      bad(
        L,
        T.listener,
        clientListener(
          hcm({ http_filters: [routerFilter, { name: 'f', typed_config: { '@type': url(T.fault), abort: { http_status: 500 } } }] }),
        ),
        'api_listener.http_filters[0]',
        'must be the last',
      );
    });
    it('an unknown required filter', () => {
      bad(
        L,
        T.listener,
        clientListener(hcm({ http_filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } }, routerFilter] })),
        'api_listener.http_filters[0].typed_config',
        'unsupported HTTP filter type type.googleapis.com/google.protobuf.Empty',
      );
    });
    it('a duplicate filter name', () => {
      bad(
        L,
        T.listener,
        clientListener(
          hcm({
            http_filters: [
              { name: 'dup', typed_config: { '@type': url(T.fault), abort: { http_status: 500 } } },
              { name: 'dup', typed_config: { '@type': url(T.fault), abort: { http_status: 500 } } },
              routerFilter,
            ],
          }),
        ),
        'http_filters[1].name',
        'duplicate HTTP filter name "dup"',
      );
    });
    it('an invalid fault config', () => {
      bad(
        L,
        T.listener,
        clientListener(hcm({ http_filters: [{ name: 'f', typed_config: { '@type': url(T.fault), abort: { http_status: 700 } } }, routerFilter] })),
        'http_filters[0].typed_config.abort.http_status',
        '[200, 600)',
      );
    });
    it('an RBAC policy without principals', () => {
      bad(
        L,
        T.listener,
        clientListener(
          hcm({
            http_filters: [
              { name: 'r', typed_config: { '@type': url(T.rbac), rules: { policies: { p: { permissions: [{ any: true }] } } } } },
              routerFilter,
            ],
          }),
        ),
        'rules.policies["p"].principals',
      );
    });
    it('an api_listener that is not an HCM', () => {
      bad(L, T.listener, { name: 'x', api_listener: { api_listener: { '@type': 'type.googleapis.com/google.protobuf.Empty' } } }, 'api_listener.api_listener', 'unsupported');
    });
    it('a negative duration', () => {
      bad(L, T.listener, clientListener(hcm({ common_http_protocol_options: { max_stream_duration: '-1s' } })), 'common_http_protocol_options.max_stream_duration', 'outside');
    });
    it('undecodable bytes, without a name', () => {
      const r = L.decode(ctx, { type_url: TYPE_URLS.listener, value: new Uint8Array([0x0a, 0xff, 0xff, 0xff]) });
      expect(r.error).toMatch(/cannot decode Listener/);
      expect(r.name).toBeUndefined();
    });
    it('a resource of another type, without a name', () => {
      const r = L.decode(ctx, { type_url: TYPE_URLS.cluster, value: new Uint8Array() });
      expect(r.error).toMatch(/expected a Listener/);
      expect(r.name).toBeUndefined();
    });
  });
});
