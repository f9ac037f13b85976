import { describe, expect, it } from 'vitest';
import { endpointResourceType as E } from '../src/resources/index.js';
import type { EndpointsResource } from '../src/resources/index.js';
import { TYPE_URLS } from '../src/proto.js';
import { encodeProto3Json } from '../src/proto-json.js';
import { bad, ctx, ok, T } from './fixtures/resources.js';

const ep = (host: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  endpoint: { address: { socket_address: { address: host, port_value: port } } },
  ...extra,
});
const loc = (zone: string, priority: number, endpoints: unknown[], weight?: number): Record<string, unknown> => ({
  locality: { region: 'r', zone, sub_zone: 's' },
  priority,
  lb_endpoints: endpoints,
  ...(weight === undefined ? {} : { load_balancing_weight: weight }),
});

describe('ClusterLoadAssignment', () => {
  it('is not required in SotW', () => {
    expect(E.allResourcesRequiredInSotW).toBe(false);
  });

  it('decodes priorities, localities and endpoints with defaults', () => {
    const v = ok(E, T.cla, {
      cluster_name: 'c1',
      endpoints: [
        loc('a', 0, [
          ep('10.0.0.1', 80, {
            health_status: 'HEALTHY',
            load_balancing_weight: 3,
            metadata: { filter_metadata: { 'envoy.lb': { canary: true } } },
          }),
          {
            endpoint: {
              address: { socket_address: { address: '10.0.0.2', port_value: 81 } },
              additional_addresses: [{ address: { socket_address: { address: 'fd00::2', port_value: 81 } } }],
              hostname: 'pod-2',
            },
            health_status: 'DRAINING',
          },
        ], 5),
        loc('b', 1, [ep('10.0.1.1', 80, { health_status: 'DEGRADED' })]),
        loc('c', 0, [ep('10.0.2.1', 80, { health_status: 'UNHEALTHY' }), ep('10.0.2.2', 80, { health_status: 'TIMEOUT' })], 2),
      ],
    });
    expect(v).toEqual<EndpointsResource>({
      clusterName: 'c1',
      priorities: [
        [
          {
            locality: { region: 'r', zone: 'a', subZone: 's' },
            weight: 5,
            priority: 0,
            metadata: undefined,
            endpoints: [
              {
                addresses: [{ host: '10.0.0.1', port: 80 }],
                hostname: '',
                healthStatus: 'HEALTHY',
                weight: 3,
                metadata: { filterMetadata: { 'envoy.lb': { canary: true } }, typedFilterMetadata: {} },
              },
              {
                addresses: [
                  { host: '10.0.0.2', port: 81 },
                  { host: 'fd00::2', port: 81 },
                ],
                hostname: 'pod-2',
                healthStatus: 'DRAINING',
                weight: 1,
                metadata: undefined,
              },
            ],
          },
          {
            locality: { region: 'r', zone: 'c', subZone: 's' },
            weight: 2,
            priority: 0,
            metadata: undefined,
            endpoints: [
              { addresses: [{ host: '10.0.2.1', port: 80 }], hostname: '', healthStatus: 'UNHEALTHY', weight: 1, metadata: undefined },
              { addresses: [{ host: '10.0.2.2', port: 80 }], hostname: '', healthStatus: 'TIMEOUT', weight: 1, metadata: undefined },
            ],
          },
        ],
        [
          {
            // No load_balancing_weight: kept with weight 0 (see endpoints.ts).
            locality: { region: 'r', zone: 'b', subZone: 's' },
            weight: 0,
            priority: 1,
            metadata: undefined,
            endpoints: [{ addresses: [{ host: '10.0.1.1', port: 80 }], hostname: '', healthStatus: 'DEGRADED', weight: 1, metadata: undefined }],
          },
        ],
      ],
      dropOverloads: [],
      overprovisioningFactor: 140,
      weightedPriorityHealth: false,
    });
    expect(v.priorities[0]![1]!.endpoints[0]!.healthStatus).toBe('UNHEALTHY');
  });

  it('decodes drop overloads and the overprovisioning factor, and an empty assignment', () => {
    const v = ok(E, T.cla, {
      cluster_name: 'c1',
      policy: {
        drop_overloads: [
          { category: 'lb', drop_percentage: { numerator: 5, denominator: 'HUNDRED' } },
          { category: 'throttle', drop_percentage: { numerator: 7, denominator: 'MILLION' } },
        ],
        overprovisioning_factor: 200,
      },
    });
    expect(v.dropOverloads).toEqual([
      { category: 'lb', ppm: 50_000 },
      { category: 'throttle', ppm: 7 },
    ]);
    expect(v.overprovisioningFactor).toBe(200);
    expect(v.priorities).toEqual([]);
  });

  describe('rejects', () => {
    it('a priority gap', () => {
      bad(E, T.cla, { cluster_name: 'c', endpoints: [loc('a', 0, [ep('h', 1)], 1), loc('b', 2, [ep('i', 1)], 1)] }, 'endpoints', 'priority 1 has no localities');
    });
    it('a duplicate locality within a priority', () => {
      bad(E, T.cla, { cluster_name: 'c', endpoints: [loc('a', 0, [ep('h', 1)], 1), loc('a', 0, [ep('i', 1)], 1)] }, 'endpoints[1].locality', 'duplicate locality');
      // The same locality in two priorities is fine.
      ok(E, T.cla, { cluster_name: 'c', endpoints: [loc('a', 0, [ep('h', 1)], 1), loc('a', 1, [ep('i', 1)], 1)] });
    });
    it('an endpoint without an address, or with a port out of range', () => {
      bad(E, T.cla, { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: {} }] }] }, 'endpoints[0].lb_endpoints[0].endpoint.address', 'socket_address');
      bad(E, T.cla, { cluster_name: 'c', endpoints: [{ lb_endpoints: [ep('h', 70000)] }] }, 'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value', 'out of range');
      bad(E, T.cla, { cluster_name: 'c', endpoints: [{ lb_endpoints: [ep('h', 0)] }] }, 'port_value', 'out of range');
      bad(E, T.cla, { cluster_name: 'c', endpoints: [{ lb_endpoints: [ep('', 80)] }] }, 'socket_address.address', 'must not be empty');
      bad(
        E,
        T.cla,
        { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'h', port_value: 1 } }, additional_addresses: [{ address: { socket_address: { address: 'h2', port_value: 99999 } } }] } }] }] },
        'additional_addresses[0].address.socket_address.port_value',
      );
      bad(E, T.cla, { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'h', named_port: 'http' } } } }] }] }, 'port_value', 'numeric');
    });
    it('a zero endpoint weight, a duplicate address, a priority above 128', () => {
      bad(E, T.cla, { cluster_name: 'c', endpoints: [{ lb_endpoints: [ep('h', 1, { load_balancing_weight: 0 })] }] }, 'lb_endpoints[0].load_balancing_weight');
      bad(E, T.cla, { cluster_name: 'c', endpoints: [{ lb_endpoints: [ep('h', 1), ep('h', 1)] }] }, 'lb_endpoints[1]', 'duplicate endpoint address h:1');
      bad(E, T.cla, { cluster_name: 'c', endpoints: [loc('a', 129, [])] }, 'endpoints[0].priority');
      bad(E, T.cla, { cluster_name: 'c', endpoints: [loc('a', 0, [], 4294967295), loc('b', 0, [], 1)] }, 'endpoints', 'locality weights of priority 0');
    });
    it('undecodable bytes and an empty name', () => {
      const r = E.decode(ctx, { type_url: TYPE_URLS.clusterLoadAssignment, value: new Uint8Array([0x12, 0x05, 0x01]) });
      expect(r.error).toMatch(/cannot decode ClusterLoadAssignment/);
      expect(r.name).toBeUndefined();
      const empty = E.decode(ctx, { type_url: TYPE_URLS.clusterLoadAssignment, value: encodeProto3Json(T.cla, {}) });
      expect(empty.error).toMatch(/empty name/);
    });
  });

  it('decodes 10,000 assignments of 10 endpoints (the benchmark shape)', () => {
    const lbs = [];
    for (let j = 0; j < 10; j++) lbs.push(ep(`10.0.0.${j}`, 8080, { health_status: 'HEALTHY' }));
    const value = encodeProto3Json(T.cla, { cluster_name: 'c', endpoints: [loc('z', 0, lbs, 1)] });
    let endpoints = 0;
    for (let i = 0; i < 10_000; i++) {
      const d = E.decode(ctx, { type_url: TYPE_URLS.clusterLoadAssignment, value });
      if (d.error !== undefined) throw new Error(d.error);
      endpoints += d.value.priorities[0]![0]!.endpoints.length;
    }
    expect(endpoints).toBe(100_000);
  });
});
