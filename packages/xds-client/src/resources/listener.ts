// Listener → ListenerResource. A client listener carries an HttpConnectionManager in
// api_listener (gRFC A27); a server listener has an address and filter chains
// (gRFC A36), kept here in a minimal form.
import type {
  envoy_config_core_v3_Address,
  envoy_config_core_v3_CidrRange,
  envoy_config_listener_v3_FilterChain,
  envoy_config_listener_v3_Listener,
  envoy_extensions_filters_network_http_connection_manager_v3_HttpConnectionManager,
} from '../generated/pb.js';
import { durationMs, fail, sub } from './common.js';
import { parseHttpFilters } from './http-filters.js';
import { parseRouteConfiguration } from './route-config.js';
import { parseTransportSocket } from './tls.js';
import { decodeBytes } from './typed-config.js';
import type { CidrRange, FilterChain, HttpConnectionManager, ListenerResource, SocketAddress } from './types.js';

export const HCM_TYPE_URL =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const HCM_NAME = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

const TRAFFIC_DIRECTIONS = ['UNSPECIFIED', 'INBOUND', 'OUTBOUND'] as const;
const SOURCE_TYPES = ['ANY', 'SAME_IP_OR_LOOPBACK', 'EXTERNAL'] as const;

export function parseListener(l: envoy_config_listener_v3_Listener): ListenerResource {
  const trafficDirection = TRAFFIC_DIRECTIONS[l.traffic_direction] ?? 'UNSPECIFIED';
  if (l.api_listener) {
    const any = l.api_listener.api_listener;
    const p = 'api_listener.api_listener';
    if (!any) fail(p, 'is required');
    if (any.type_url !== HCM_TYPE_URL) fail(p, `unsupported api_listener type ${any.type_url}; expected HttpConnectionManager`);
    const hcm = decodeBytes<envoy_extensions_filters_network_http_connection_manager_v3_HttpConnectionManager>(
      HCM_NAME,
      any.value,
      p,
    );
    return {
      name: l.name,
      apiListener: httpConnectionManager(hcm, 'api_listener'),
      address: undefined,
      filterChains: [],
      defaultFilterChain: undefined,
      trafficDirection,
    };
  }
  if (!l.address) {
    fail('', 'listener has neither api_listener (client listener) nor address (server listener)');
  }
  const address = socketAddress(l.address, 'address');
  // Envoy rejects a listener with no filter chain at all: it could accept nothing.
  if (l.filter_chains.length === 0 && !l.default_filter_chain) {
    fail('filter_chains', 'a server listener needs at least one filter chain or a default_filter_chain');
  }
  const filterChains: FilterChain[] = [];
  for (let i = 0; i < l.filter_chains.length; i++) {
    filterChains.push(filterChain(l.filter_chains[i]!, `filter_chains[${i}]`));
  }
  // listener_filters (tls_inspector and the like) are ignored: meshlet inspects
  // connections itself, and gRFC A36 ignores them too.
  return {
    name: l.name,
    apiListener: undefined,
    address,
    filterChains,
    defaultFilterChain: l.default_filter_chain ? filterChain(l.default_filter_chain, 'default_filter_chain') : undefined,
    trafficDirection,
  };
}

export function httpConnectionManager(
  hcm: envoy_extensions_filters_network_http_connection_manager_v3_HttpConnectionManager,
  path: string,
): HttpConnectionManager {
  let routeConfigName: string | undefined;
  let routeConfig: HttpConnectionManager['routeConfig'];
  switch (hcm.route_specifier) {
    case 'rds': {
      const rds = hcm.rds!;
      const cs = rds.config_source;
      const csp = sub(path, 'rds.config_source');
      // gRFC A27: RDS comes over the same ADS stream; A47 adds `self`.
      if (!cs) fail(csp, 'is required');
      if (cs.config_source_specifier !== 'ads' && cs.config_source_specifier !== 'self') {
        fail(csp, `config source must be ads or self, not ${cs.config_source_specifier ?? 'unset'}`);
      }
      if (!rds.route_config_name) fail(sub(path, 'rds.route_config_name'), 'must not be empty');
      routeConfigName = rds.route_config_name;
      break;
    }
    case 'route_config':
      routeConfig = parseRouteConfiguration(hcm.route_config!, sub(path, 'route_config'));
      break;
    case 'scoped_routes':
      fail(sub(path, 'scoped_routes'), 'scoped routes are not supported');
    default:
      fail(path, 'HttpConnectionManager has neither rds nor route_config');
  }
  const common = hcm.common_http_protocol_options;
  return {
    routeConfigName,
    routeConfig,
    httpFilters: parseHttpFilters(hcm.http_filters, sub(path, 'http_filters')),
    maxStreamDuration: common
      ? durationMs(common.max_stream_duration, sub(path, 'common_http_protocol_options.max_stream_duration'))
      : undefined,
    streamIdleTimeout: durationMs(hcm.stream_idle_timeout, sub(path, 'stream_idle_timeout')),
    requestTimeout: durationMs(hcm.request_timeout, sub(path, 'request_timeout')),
  };
}

export function socketAddress(a: envoy_config_core_v3_Address, path: string): SocketAddress {
  if (a.address !== 'socket_address') fail(path, 'only socket_address is supported');
  const s = a.socket_address!;
  const p = sub(path, 'socket_address');
  if (!s.address) fail(sub(p, 'address'), 'must not be empty');
  if (s.port_specifier !== 'port_value') {
    fail(sub(p, s.port_specifier === 'named_port' ? 'named_port' : 'port_value'), 'a numeric port_value is required');
  }
  const port = s.port_value ?? 0;
  if (port > 65535) fail(sub(p, 'port_value'), `port ${port} is out of range`);
  return { host: s.address, port };
}

function cidrRanges(list: readonly envoy_config_core_v3_CidrRange[], path: string): CidrRange[] {
  return list.map((c, i) => {
    if (!c.address_prefix) fail(`${path}[${i}].address_prefix`, 'must not be empty');
    const max = c.address_prefix.includes(':') ? 128 : 32;
    const len = c.prefix_len ? c.prefix_len.value : max;
    if (len > max) fail(`${path}[${i}].prefix_len`, `prefix length ${len} exceeds ${max}`);
    return { addressPrefix: c.address_prefix, prefixLen: len };
  });
}

function filterChain(fc: envoy_config_listener_v3_FilterChain, path: string): FilterChain {
  const m = fc.filter_chain_match;
  const mp = sub(path, 'filter_chain_match');
  let hcm: HttpConnectionManager | undefined;
  const filterNames: string[] = [];
  for (let i = 0; i < fc.filters.length; i++) {
    const f = fc.filters[i]!;
    const p = `${sub(path, 'filters')}[${i}]`;
    filterNames.push(f.name);
    if (f.typed_config?.type_url === HCM_TYPE_URL) {
      // gRFC A36: the HttpConnectionManager is the chain's one terminal filter.
      if (hcm) fail(p, 'more than one HttpConnectionManager in a filter chain');
      hcm = httpConnectionManager(
        decodeBytes(HCM_NAME, f.typed_config.value, sub(p, 'typed_config')),
        sub(p, 'typed_config'),
      );
    }
  }
  return {
    name: fc.name,
    match: {
      destinationPort: m?.destination_port ? m.destination_port.value : undefined,
      prefixRanges: m ? cidrRanges(m.prefix_ranges, sub(mp, 'prefix_ranges')) : [],
      sourceType: (m && SOURCE_TYPES[m.source_type]) || 'ANY',
      sourcePrefixRanges: m ? cidrRanges(m.source_prefix_ranges, sub(mp, 'source_prefix_ranges')) : [],
      sourcePorts: m ? m.source_ports.slice() : [],
      serverNames: m ? m.server_names.slice() : [],
      transportProtocol: m ? m.transport_protocol : '',
      applicationProtocols: m ? m.application_protocols.slice() : [],
    },
    httpConnectionManager: hcm,
    filterNames,
    transportSocket: parseTransportSocket(fc.transport_socket, sub(path, 'transport_socket'), 'downstream'),
  };
}
