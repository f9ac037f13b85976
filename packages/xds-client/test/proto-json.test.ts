import { describe, expect, it } from 'vitest';
import { anyFromProto3Json, encodeProto3Json, fromProto3Json, ProtoJsonError, toProto3Json } from '../src/proto-json.js';
import { decodeMessage, TYPE_URLS } from '../src/proto.js';
import type { envoy_config_cluster_v3_Cluster, envoy_config_route_v3_RouteConfiguration, envoy_extensions_filters_network_http_connection_manager_v3_HttpConnectionManager, envoy_config_listener_v3_Listener } from '../src/generated/pb.js';

describe('proto3 JSON', () => {
  it('reads durations, wrappers, enums, camelCase names and Structs', () => {
    const bytes = encodeProto3Json('envoy.config.cluster.v3.Cluster', {
      name: 'c1',
      type: 'EDS',
      connectTimeout: '1.25s',
      lb_policy: 'RING_HASH',
      per_connection_buffer_limit_bytes: 1024,
      metadata: { filter_metadata: { istio: { services: [{ host: 'a.b.svc', name: 'a' }], n: 1 } } },
    });
    const c = decodeMessage<envoy_config_cluster_v3_Cluster>('envoy.config.cluster.v3.Cluster', bytes);
    expect(c.name).toBe('c1');
    expect(c.connect_timeout).toMatchObject({ seconds: 1, nanos: 250_000_000 });
    expect(c.per_connection_buffer_limit_bytes?.value).toBe(1024);
    expect(toProto3Json('envoy.config.cluster.v3.Cluster', c)).toEqual({
      name: 'c1',
      type: 'EDS',
      connect_timeout: '1.250s',
      lb_policy: 'RING_HASH',
      per_connection_buffer_limit_bytes: 1024,
      metadata: { filter_metadata: { istio: { services: [{ host: 'a.b.svc', name: 'a' }], n: 1 } } },
    });
  });

  it('nests Anys by "@type" and renders them back', () => {
    const json = {
      name: 'foo:80',
      api_listener: {
        api_listener: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          rds: { route_config_name: 'r1', config_source: { ads: {} } },
          http_filters: [{ name: 'router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      },
    };
    const l = fromProto3Json('envoy.config.listener.v3.Listener', json) as unknown as envoy_config_listener_v3_Listener;
    const hcmAny = l.api_listener?.api_listener;
    expect(hcmAny?.type_url).toContain('HttpConnectionManager');
    const hcm = decodeMessage<envoy_extensions_filters_network_http_connection_manager_v3_HttpConnectionManager>(
      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      hcmAny!.value,
    );
    expect(hcm.rds?.route_config_name).toBe('r1');
    expect(hcm.route_specifier).toBe('rds');
    expect(toProto3Json('envoy.config.listener.v3.Listener', l)).toEqual(json);
  });

  it('accepts an Any that carries its own type', () => {
    const any = anyFromProto3Json({ '@type': TYPE_URLS.routeConfiguration, name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'] }] });
    expect(any.type_url).toBe(TYPE_URLS.routeConfiguration);
    const rc = decodeMessage<envoy_config_route_v3_RouteConfiguration>('envoy.config.route.v3.RouteConfiguration', any.value);
    expect(rc.virtual_hosts[0]?.domains).toEqual(['*']);
  });

  it('names the path of what is wrong', () => {
    expect(() => encodeProto3Json('envoy.config.cluster.v3.Cluster', { name: 'c', conect_timeout: '1s' })).toThrow(
      /conect_timeout: unknown field of envoy.config.cluster.v3.Cluster/,
    );
    expect(() => encodeProto3Json('envoy.config.cluster.v3.Cluster', { name: 'c', connect_timeout: '1m' })).toThrow(ProtoJsonError);
    expect(() => encodeProto3Json('envoy.config.cluster.v3.Cluster', { name: 'c', lb_policy: 'FASTEST' })).toThrow(/lb_policy: "FASTEST" is not a value of enum LbPolicy/);
    expect(() =>
      encodeProto3Json('envoy.config.route.v3.RouteConfiguration', { virtual_hosts: [{ routes: [{ match: { prefix: '/', path: '/x' } }] }] }),
    ).toThrow(/virtual_hosts\[0\]\.routes\[0\]\.match\.path: oneof path_specifier already set by prefix/);
    expect(() => anyFromProto3Json({ '@type': 'type.googleapis.com/no.Such' })).toThrow(/unknown type/);
  });
});
