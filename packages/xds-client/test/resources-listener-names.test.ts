// The listener catalog's names-only Listener type: the name the full decoder reads, from the
// wire, for Listeners of every shape; malformed bytes and a missing name rejected.
import { describe, expect, it } from 'vitest';
import { listenerNamesResourceType as N, listenerResourceType as L, resourceTypeForUrl } from '../src/resources/index.js';
import { TYPE_URLS } from '../src/proto.js';
import { anyOf, clientListener, ctx, hcm, T } from './fixtures/resources.js';

const SHAPES: Record<string, unknown>[] = [
  clientListener(hcm(), 'svc:80'),
  clientListener(hcm({ common_http_protocol_options: { max_stream_duration: '2.5s' } }), 'reviews.default.svc.cluster.local:9080'),
  // Fields of the kinds an Istio inbound Listener has (varint, enum, nested messages).
  {
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    per_connection_buffer_limit_bytes: 32768,
    traffic_direction: 'INBOUND',
    filter_chains: [{ name: 'virtualInbound-blackhole', filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } }] }],
    continue_on_listener_filters_timeout: true,
    name: 'virtualInbound',
  },
  { name: 'unicode-\u00e9\u4e2d:80', api_listener: { api_listener: { '@type': `type.googleapis.com/${T.hcm}`, rds: { route_config_name: 'x', config_source: { ads: {} } } } } },
];

describe('Listener names (the listener catalog)', () => {
  it('reads the name the full decoder reads, and is not the registry\u2019s Listener type', () => {
    expect(resourceTypeForUrl(TYPE_URLS.listener)).toBe(L);
    expect(N.typeUrl).toBe(TYPE_URLS.listener);
    expect(N.allResourcesRequiredInSotW).toBe(true);
    for (const json of SHAPES) {
      const any = anyOf(T.listener, json);
      const full = L.decode(ctx, any);
      expect(full.name).toBe(json.name);
      expect(N.decode(ctx, any)).toEqual({ name: json.name, value: json.name });
    }
  });

  it('accepts a Listener the full decoder rejects for its content', () => {
    const any = anyOf(T.listener, { name: 'broken:80', api_listener: { api_listener: { '@type': `type.googleapis.com/${T.router}` } } });
    expect(L.decode(ctx, any).error).toBeDefined();
    expect(N.decode(ctx, any)).toEqual({ name: 'broken:80', value: 'broken:80' });
  });

  it('takes the last name when the field repeats (protobuf merge)', () => {
    const a = anyOf(T.listener, { name: 'first:80' }).value;
    const b = anyOf(T.listener, { name: 'second:80', per_connection_buffer_limit_bytes: 7 }).value;
    const merged = new Uint8Array([...a, ...b]);
    expect(N.decode(ctx, { type_url: TYPE_URLS.listener, value: merged }).name).toBe('second:80');
    expect(L.decode(ctx, { type_url: TYPE_URLS.listener, value: merged }).name).toBe('second:80');
  });

  it('skips fields of every wire type before the name, known or not', () => {
    const { name: _, ...rest } = SHAPES[2]!;
    const others = anyOf(T.listener, rest).value;
    const name = anyOf(T.listener, { name: 'after:80' }).value;
    // Unknown fields 2000 (fixed64) and 2001 (fixed32): tags as varints, then their 8 and 4 bytes.
    const fixed = [0x81, 0x7d, 1, 2, 3, 4, 5, 6, 7, 8, 0x8d, 0x7d, 1, 2, 3, 4];
    const value = new Uint8Array([...others, ...fixed, ...name]);
    expect(N.decode(ctx, { type_url: TYPE_URLS.listener, value }).name).toBe('after:80');
    expect(L.decode(ctx, { type_url: TYPE_URLS.listener, value }).name).toBe('after:80');
  });

  it('rejects malformed bytes, a missing name and another type, saying why', () => {
    const named = anyOf(T.listener, { name: 'abc:80' }).value;
    const at = (value: Uint8Array) => N.decode(ctx, { type_url: TYPE_URLS.listener, value });
    expect(at(named.subarray(0, 5)).error).toBe('cannot decode Listener: field 1 runs past the end');
    expect(at(new Uint8Array([0x0d, 1, 2])).error).toBe('cannot decode Listener: field 1 runs past the end');
    expect(at(new Uint8Array([0x0a, 0x85])).error).toBe('cannot decode Listener: truncated varint');
    expect(at(new Uint8Array([0x0b])).error).toBe('cannot decode Listener: field 1 has wire type 3, which a Listener does not use');
    expect(at(new Uint8Array([0x00, 0x01])).error).toBe('cannot decode Listener: field number 0');
    expect(at(new Uint8Array(11).fill(0xff)).error).toBe('cannot decode Listener: varint longer than 10 bytes');
    expect(at(anyOf(T.listener, { per_connection_buffer_limit_bytes: 1 }).value).error).toBe('Listener has an empty name');
    expect(N.decode(ctx, anyOf(T.cluster, { name: 'c' })).error).toBe(`expected a Listener (${TYPE_URLS.listener}), got ${TYPE_URLS.cluster}`);
  });
});
