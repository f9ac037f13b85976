// A battery of invalid resources over the wire: each one is NACKed with its name, the
// field and the reason; the valid resources of the same response are applied (gRFC
// A46); nothing crashes; the last good value of a resource stays in force.
// (@grpc/grpc-js-xds 1.14.1 crashes the process on an invalid safe_regex.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import {
  clusterResourceType,
  endpointResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
  TYPE_URLS,
  XdsClient,
  type MeshletError,
  type XdsResourceType,
} from '@meshlet/xds-client';
import { anyFromProto3Json } from '@meshlet/xds-client/proto-json';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const { listener: LDS, routeConfiguration: RDS, cluster: CDS, clusterLoadAssignment: EDS } = TYPE_URLS;
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

interface Outcome {
  value?: unknown;
  error?: MeshletError;
  missing?: boolean;
  changes?: number;
}

describe('invalid xDS resources', () => {
  let cp: ControlPlane;
  let client: XdsClient;
  const outcomes = new Map<string, Outcome>();

  function watch<T>(type: XdsResourceType<T>, name: string): void {
    const o: Outcome = {};
    outcomes.set(`${type.shortName}/${name}`, o);
    client.watch(type, name, {
      onChanged: (v) => {
        o.value = v;
        o.changes = (o.changes ?? 0) + 1;
      },
      onError: (e) => (o.error = e),
      onDoesNotExist: () => (o.missing = true),
    });
  }

  async function settled(keys: string[]): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!keys.every((k) => outcomes.get(k)?.value !== undefined || outcomes.get(k)?.error !== undefined)) {
      if (Date.now() > deadline) throw new Error(`not settled: ${keys.filter((k) => !outcomes.get(k)?.value && !outcomes.get(k)?.error)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  beforeAll(async () => {
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(LDS, [
      listener('ok:80', 'rc-ok'),
      { '@type': LDS, name: 'no-api-listener:80' },
      {
        '@type': LDS,
        name: 'no-router:80',
        api_listener: {
          api_listener: {
            '@type': HCM,
            rds: { route_config_name: 'rc-ok', config_source: { ads: {} } },
            http_filters: [{ name: 'fault', typed_config: { '@type': FAULT } }],
          },
        },
      },
    ]);
    cp.setResources(RDS, [
      routeConfig('rc-ok', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'c-ok' }] }]),
      { '@type': RDS, name: 'rc-bad-regex', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: 'a(b' } }, route: { cluster: 'c' } }] }] },
      routeConfig('rc-zero-weight', [{ domains: ['*'], routes: [{ prefix: '/', weighted: [['a', 0], ['b', 0]] }] }]),
      routeConfig('rc-zero-backoff', [
        { domains: ['*'], routes: [{ prefix: '/', cluster: 'c', extra: { retry_policy: { retry_on: '5xx', retry_back_off: { base_interval: '0s' } } } }] },
      ]),
    ]);
    // CDS as raw bytes, to add undecodable bytes and a duplicated name.
    const cds = (json: Record<string, unknown>) => ({ name: String(json['name']), any: anyFromProto3Json({ '@type': CDS, ...json }) });
    cp.setRawResources(CDS, [
      cds(edsCluster('c-ok')),
      cds(edsCluster('c-bad-lb', { lb_policy: 'CLUSTER_PROVIDED' })),
      cds(
        edsCluster('c-no-policy', {
          lb_policy: undefined,
          load_balancing_policy: {
            policies: [{ typed_extension_config: { name: 'x', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: {} } } }],
          },
        }),
      ),
      cds(edsCluster('c-dup')),
      cds(edsCluster('c-dup', { connect_timeout: '2s' })),
      { name: 'c-garbage', any: { type_url: CDS, value: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]) } },
    ]);
    cp.setResources(EDS, [
      endpoints('c-ok', [['127.0.0.1', 8080]]),
      {
        '@type': EDS,
        cluster_name: 'e-gap',
        endpoints: [
          { priority: 0, locality: { zone: 'a' }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } }] },
          { priority: 2, locality: { zone: 'b' }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 2 } } } }] },
        ],
      },
    ]);
    client = new XdsClient({ bootstrap: bootstrapFor(address) });
    for (const n of ['ok:80', 'no-api-listener:80', 'no-router:80']) watch(listenerResourceType, n);
    for (const n of ['rc-ok', 'rc-bad-regex', 'rc-zero-weight', 'rc-zero-backoff']) watch(routeConfigurationResourceType, n);
    for (const n of ['c-ok', 'c-bad-lb', 'c-no-policy', 'c-dup']) watch(clusterResourceType, n);
    for (const n of ['c-ok', 'e-gap']) watch(endpointResourceType, n);
    const keys = [...outcomes.keys()];
    // The server sends only what was asked for; an undecodable resource cannot be
    // named, so its watcher hears nothing (until does-not-exist).
    watch(clusterResourceType, 'c-garbage');
    await settled(keys);
    // The client hears of an invalid resource as it sends the NACK: wait for the control
    // plane to have read one of each type too.
    for (const type of [LDS, RDS, CDS, EDS]) await cp.waitForRequest((r) => r.typeUrl === type && r.kind === 'nack');
  });

  afterAll(async () => {
    client?.close();
    await cp?.stop();
  });

  const cases: Array<[key: string, type: string, field: RegExp]> = [
    ['Listener/no-api-listener:80', LDS, /no-api-listener:80.*(api_listener|filter_chains)/],
    ['Listener/no-router:80', LDS, /no-router:80.*http_filters.*router/],
    ['RouteConfiguration/rc-bad-regex', RDS, /rc-bad-regex.*safe_regex\.regex: invalid RE2 pattern/],
    ['RouteConfiguration/rc-zero-weight', RDS, /rc-zero-weight.*weighted_clusters.*0/],
    ['RouteConfiguration/rc-zero-backoff', RDS, /rc-zero-backoff.*retry_back_off\.base_interval/],
    ['Cluster/c-bad-lb', CDS, /c-bad-lb.*lb_policy/],
    ['Cluster/c-no-policy', CDS, /c-no-policy.*load_balancing_policy/],
    ['Cluster/c-dup', CDS, /c-dup.*duplicate/],
    ['ClusterLoadAssignment/e-gap', EDS, /e-gap.*priorit(y|ies).*gap/],
  ];

  it.each(cases)('%s is NACKed with the field and the reason', (key, type, pattern) => {
    const o = outcomes.get(key)!;
    expect(o.value).toBeUndefined();
    expect(o.error?.code).toBe('MESHLET_XDS_RESOURCE_INVALID');
    expect(o.error?.message).toMatch(pattern);
    const nack = cp.nacks(type).at(-1);
    expect(nack?.errorDetail?.code).toBe(3);
    expect(nack?.errorDetail?.message).toMatch(pattern);
  });

  it('NACKs undecodable bytes without a name, and deletes nothing by omission then', () => {
    expect(cp.nacks(CDS).at(-1)?.errorDetail?.message).toMatch(/Cluster \(resource 5\): cannot decode Cluster/);
    expect(outcomes.get('Cluster/c-garbage')).toEqual({});
  });

  it('applies the valid resources of every NACKed response', () => {
    for (const key of ['Listener/ok:80', 'RouteConfiguration/rc-ok', 'Cluster/c-ok', 'ClusterLoadAssignment/c-ok']) {
      expect(outcomes.get(key)?.value, key).toBeDefined();
      expect(outcomes.get(key)?.error, key).toBeUndefined();
    }
  });

  it('keeps the last good value when a good resource turns bad', async () => {
    const before = outcomes.get('RouteConfiguration/rc-ok')!.value;
    const nacksBefore = cp.nacks(RDS).length;
    cp.updateResources(RDS, [
      { '@type': RDS, name: 'rc-ok', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: '[' } }, route: { cluster: 'c' } }] }] },
    ]);
    await cp.waitForRequest((r) => r.typeUrl === RDS && r.kind === 'nack' && cp.nacks(RDS).length > nacksBefore);
    const o = outcomes.get('RouteConfiguration/rc-ok')!;
    expect(o.error?.message).toMatch(/rc-ok.*safe_regex/);
    expect(o.value).toBe(before);
    const state = client.dump().resources.find((r) => r.typeUrl === RDS && r.name === 'rc-ok');
    expect(state?.state).toBe('nacked');
    expect(state?.value).toBe(before);

    // Fixed back to the very same resource: the watcher hears it is good again.
    // (The response still NACKs: the other bad route tables are in it too.)
    const changesBefore = o.changes ?? 0;
    const rdsRequests = cp.requests.filter((r) => r.typeUrl === RDS).length;
    cp.updateResources(RDS, [routeConfig('rc-ok', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'c-ok' }] }])]);
    await cp.waitForRequest((r) => r.typeUrl === RDS && cp.requests.filter((q) => q.typeUrl === RDS).length > rdsRequests);
    expect(o.changes).toBe(changesBefore + 1);
    expect(client.dump().resources.find((r) => r.typeUrl === RDS && r.name === 'rc-ok')?.state).toBe('acked');
  });

  it('deletes no cached cluster by omission from a response that holds an unnamed bad resource', async () => {
    const acksBefore = cp.acks(CDS).length;
    const nacksBefore = cp.nacks(CDS).length;
    // c-ok is left out; the undecodable resource might be it, so it must stay.
    cp.setRawResources(CDS, [{ name: 'c-garbage', any: { type_url: CDS, value: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x02]) } }]);
    await cp.waitForRequest((r) => r.typeUrl === CDS && cp.nacks(CDS).length > nacksBefore);
    expect(outcomes.get('Cluster/c-ok')?.missing).toBeUndefined();
    expect(client.dump().resources.find((r) => r.typeUrl === CDS && r.name === 'c-ok')?.state).toBe('acked');
    // Without the bad resource, omission deletes (LDS/CDS state of the world).
    cp.setRawResources(CDS, []);
    await cp.waitForRequest((r) => r.typeUrl === CDS && r.kind === 'ack' && cp.acks(CDS).length > acksBefore);
    await new Promise((r) => setTimeout(r, 20));
    expect(outcomes.get('Cluster/c-ok')?.missing).toBe(true);
  });
});
