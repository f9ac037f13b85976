// @meshlet/grpc load balancing and cluster types, through the real control plane to real
// grpc-js backends: ring hash on a request header (A42), least request (A48), pick_first
// (A62, connecting one address at a time), outlier detection (A50, on an injected clock),
// aggregate clusters over EDS and LOGICAL_DNS (A37), and gRPC's endpoint health rule (A27:
// only UNKNOWN and HEALTHY endpoints are used), weighted round robin from ORCA reports (A58),
// and LOGICAL_DNS clusters whose address is a host name (`localhost`), alone and inside an
// aggregate cluster (A37: the name is resolved, the cluster dials the resolved addresses; alone,
// every resolved address under pick_first).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '@meshlet/core';
import { TYPE_URLS } from '@meshlet/xds-client';
import { caseRoute, edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { startBehaviorBackend, type BehaviorBackend } from './helpers/grpc-backends.js';
import { count, ManualClock, startConnectionCounter, startGrpcMesh, type EchoCaller, type GrpcMeshEnv } from './helpers/grpc-mesh.js';
import { freePort } from './helpers/ports.js';
import { ECHO_SERVICE } from './helpers/grpc-echo.js';

const TARGET = 'balancing.grpc.test:8080';
const RH = 'outbound|8080|ring|balancing.grpc.test';
const LR = 'outbound|8080|lr|balancing.grpc.test';
const PF = 'outbound|8080|pf|balancing.grpc.test';
const OD = 'outbound|8080|od|balancing.grpc.test';
const AGG = 'outbound|8080|agg|balancing.grpc.test';
const PRIMARY = 'outbound|8080|primary|balancing.grpc.test';
const DNS = 'outbound|8080|dns|balancing.grpc.test';
const WRR = 'outbound|8080|wrr|balancing.grpc.test';
const PRIO = 'outbound|8080|prio|balancing.grpc.test';
const RH_DEAD = 'outbound|8080|ring-dead|balancing.grpc.test';
const DNS_HOST = 'outbound|8080|dns-host|balancing.grpc.test';
const AGG_HOST = 'outbound|8080|agg-host|balancing.grpc.test';
const EDS_DEAD = 'outbound|8080|eds-dead|balancing.grpc.test';
const DNS_HOST2 = 'outbound|8080|dns-host2|balancing.grpc.test';
const AGG_FALLBACK = 'outbound|8080|agg-fallback|balancing.grpc.test';

/** An echo server on one loopback address; its replies carry its name, so a reply tells which address was dialed. */
interface LoopbackServer {
  readonly name: string;
  calls: number;
  close(): Promise<void>;
}

function bindEcho(name: string, address: string): Promise<{ server: LoopbackServer; port: number }> {
  const grpcServer = new grpc.Server();
  const server: LoopbackServer = {
    name,
    calls: 0,
    close: () =>
      new Promise<void>((resolve) => {
        grpcServer.tryShutdown(() => resolve());
        setTimeout(() => grpcServer.forceShutdown(), 200).unref();
      }),
  };
  grpcServer.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      server.calls++;
      cb(null, Buffer.from(`${name}:${call.request.toString()}`));
    },
  });
  return new Promise((resolve, reject) =>
    grpcServer.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) {
        grpcServer.forceShutdown();
        reject(err);
      } else resolve({ server, port });
    }),
  );
}

/**
 * Echo servers on one port of 127.0.0.1 and, where the machine has it, ::1 (`${name}-v4`,
 * `${name}-v6`): whichever address `localhost` resolves to first, something answers there,
 * and the reply names the address family that was dialed.
 */
async function startLocalhostServers(name: string): Promise<{ port: number; v4: LoopbackServer; v6: LoopbackServer | undefined }> {
  for (let attempt = 0; ; attempt++) {
    const { server: v4, port } = await bindEcho(`${name}-v4`, '127.0.0.1:0');
    try {
      const { server: v6 } = await bindEcho(`${name}-v6`, `[::1]:${port}`);
      return { port, v4, v6 };
    } catch (err) {
      // ::1 taken on that port by someone else: try another port; no IPv6 loopback at all: v4 only.
      const inUse = /EADDRINUSE|address already in use/i.test(String((err as Error).message));
      if (!inUse) return { port, v4, v6: undefined };
      await v4.close();
      if (attempt >= 5) throw err;
    }
  }
}

function logicalDnsCluster(name: string, host: string, port: number): Record<string, unknown> {
  return {
    '@type': TYPE_URLS.cluster,
    name,
    type: 'LOGICAL_DNS',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
    },
  };
}


describe('@meshlet/grpc balancing', () => {
  let env: GrpcMeshEnv;
  let client: EchoCaller;
  const clock = new ManualClock();
  const rh: BehaviorBackend[] = [];
  let lrSlow: BehaviorBackend, lrFast: BehaviorBackend;
  let pf1: BehaviorBackend;
  let pfUntouched: Awaited<ReturnType<typeof startConnectionCounter>>;
  let odGood: BehaviorBackend, odBad: BehaviorBackend;
  let p1: BehaviorBackend, s1: BehaviorBackend;
  let deadPort: number;
  let wLight: BehaviorBackend, wHeavy: BehaviorBackend;
  let backup: BehaviorBackend;
  // What `localhost` resolves to here, in the resolver's order: 127.0.0.1 and/or ::1.
  let localhostAddrs: Array<{ address: string; family: number }>;
  let dnsAlone: Awaited<ReturnType<typeof startLocalhostServers>>;
  let dnsInAgg: Awaited<ReturnType<typeof startLocalhostServers>>;
  let aggFallback: BehaviorBackend;

  beforeAll(async () => {
    rh.push(...(await Promise.all(['rh1', 'rh2', 'rh3'].map((n) => startBehaviorBackend(n)))));
    [lrSlow, lrFast, pf1, odGood, odBad, p1, s1] = await Promise.all([
      startBehaviorBackend('lr-slow', 0, { holdAll: true }),
      startBehaviorBackend('lr-fast'),
      startBehaviorBackend('pf1'),
      startBehaviorBackend('od-good'),
      startBehaviorBackend('od-bad', 0, { failCode: 14 }),
      startBehaviorBackend('p1'),
      startBehaviorBackend('s1'),
    ]);
    [wLight, wHeavy] = await Promise.all([
      startBehaviorBackend('w-light', 0, { orca: { cpuUtilization: 0.2, qps: 100 } }),
      startBehaviorBackend('w-heavy', 0, { orca: { cpuUtilization: 0.8, qps: 100 } }),
    ]);
    backup = await startBehaviorBackend('backup');
    localhostAddrs = await lookup('localhost', { all: true });
    [dnsAlone, dnsInAgg, aggFallback] = await Promise.all([startLocalhostServers('dns-alone'), startLocalhostServers('dns-agg'), startBehaviorBackend('agg-fallback')]);
    pfUntouched = await startConnectionCounter();
    deadPort = await freePort();
    env = await startGrpcMesh(
      {
        [TYPE_URLS.listener]: [listener(TARGET, 'rc-balancing')],
        [TYPE_URLS.routeConfiguration]: [
          {
            '@type': TYPE_URLS.routeConfiguration,
            name: 'rc-balancing',
            virtual_hosts: [
              {
                name: 'balancing',
                domains: [TARGET],
                routes: [
                  caseRoute('ring', RH, { hash_policy: [{ header: { header_name: 'x-user' } }] }),
                  caseRoute('lr', LR),
                  caseRoute('pf', PF),
                  caseRoute('od', OD),
                  caseRoute('agg', AGG),
                  caseRoute('wrr', WRR),
                  caseRoute('prio', PRIO),
                  caseRoute('ring-dead', RH_DEAD, { hash_policy: [{ header: { header_name: 'x-user' } }] }),
                  caseRoute('ring-channel', RH, { hash_policy: [{ filter_state: { key: 'io.grpc.channel_id' } }] }),
                  caseRoute('dns-host', DNS_HOST),
                  caseRoute('agg-host', AGG_HOST),
                ],
              },
            ],
          },
        ],
        [TYPE_URLS.cluster]: [
          edsCluster(RH, { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: 64 } }),
          edsCluster(LR, { lb_policy: 'LEAST_REQUEST' }),
          edsCluster(PF, {
            load_balancing_policy: {
              policies: [
                {
                  typed_extension_config: {
                    name: 'pick_first',
                    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst' },
                  },
                },
              ],
            },
          }),
          edsCluster(OD, {
            outlier_detection: {
              interval: '1s',
              base_ejection_time: '30s',
              max_ejection_percent: 50,
              enforcing_success_rate: 0,
              failure_percentage_threshold: 50,
              enforcing_failure_percentage: 100,
              failure_percentage_minimum_hosts: 2,
              failure_percentage_request_volume: 5,
            },
          }),
          {
            '@type': TYPE_URLS.cluster,
            name: AGG,
            cluster_type: {
              name: 'envoy.clusters.aggregate',
              typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig', clusters: [PRIMARY, DNS] },
            },
            lb_policy: 'CLUSTER_PROVIDED',
          },
          edsCluster(PRIMARY),
          edsCluster(PRIO),
          edsCluster(RH_DEAD, { lb_policy: 'RING_HASH' }),
          edsCluster(WRR, {
            load_balancing_policy: {
              policies: [
                {
                  typed_extension_config: {
                    name: 'wrr',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin',
                      blackout_period: '0s',
                      weight_update_period: '0.1s',
                    },
                  },
                },
              ],
            },
          }),
          logicalDnsCluster(DNS_HOST, 'localhost', dnsAlone.port),
          // EDS first, whose only endpoint refuses connections; then DNS; then an EDS cluster
          // that must not be reached while the DNS child works.
          {
            '@type': TYPE_URLS.cluster,
            name: AGG_HOST,
            cluster_type: {
              name: 'envoy.clusters.aggregate',
              typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig', clusters: [EDS_DEAD, DNS_HOST2, AGG_FALLBACK] },
            },
            lb_policy: 'CLUSTER_PROVIDED',
          },
          edsCluster(EDS_DEAD),
          edsCluster(AGG_FALLBACK),
          logicalDnsCluster(DNS_HOST2, 'localhost', dnsInAgg.port),
          {
            '@type': TYPE_URLS.cluster,
            name: DNS,
            type: 'LOGICAL_DNS',
            load_assignment: {
              cluster_name: DNS,
              endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: s1.port } } } }] }],
            },
          },
        ],
        [TYPE_URLS.clusterLoadAssignment]: [
          endpoints(RH, rh.map((b) => ['127.0.0.1', b.port] as [string, number])),
          endpoints(LR, [
            ['127.0.0.1', lrSlow.port],
            ['127.0.0.1', lrFast.port],
          ]),
          endpoints(PF, [
            ['127.0.0.1', deadPort],
            ['127.0.0.1', pf1.port],
            ['127.0.0.1', pfUntouched.port],
          ]),
          endpoints(OD, [
            ['127.0.0.1', odGood.port],
            ['127.0.0.1', odBad.port],
          ]),
          endpoints(EDS_DEAD, [['127.0.0.1', deadPort]]),
          endpoints(AGG_FALLBACK, [['127.0.0.1', aggFallback.port]]),
          endpoints(RH_DEAD, [
            ['127.0.0.1', deadPort],
            ['127.0.0.1', rh[0]!.port],
          ]),
          endpoints(PRIO, [], {
            endpoints: [
              { locality: { zone: 'z0' }, priority: 0, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: deadPort } } } }] },
              { locality: { zone: 'z1' }, priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backup.port } } } }] },
            ],
          }),
          endpoints(WRR, [
            ['127.0.0.1', wLight.port],
            ['127.0.0.1', wHeavy.port],
          ]),
          // Every primary endpoint is DEGRADED or UNHEALTHY: gRPC uses none of them (A27).
          endpoints(PRIMARY, [['127.0.0.1', p1.port]], {
            endpoints: [
              {
                locality: { region: 'r1', zone: 'z1' },
                load_balancing_weight: 1,
                lb_endpoints: [
                  { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p1.port } } }, health_status: 'DEGRADED' },
                  { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p1.port + 0 } } }, health_status: 'UNHEALTHY' },
                ],
              },
            ],
          }),
        ],
      },
      { clock, random: seededRandom(42), resourceDoesNotExistTimeoutMs: 300 },
    );
    client = env.client(TARGET);
  });

  afterAll(async () => {
    lrSlow?.release();
    await env?.close();
    await Promise.all([...rh, lrSlow, lrFast, pf1, odGood, odBad, p1, s1, wLight, wHeavy, backup, pfUntouched, aggFallback].map((b) => b?.close()));
    await Promise.all([dnsAlone, dnsInAgg].flatMap((d) => (d ? [d.v4.close(), d.v6?.close()] : [])));
  });

  it('keeps a request header on one ring hash endpoint (A42) and spreads different values', async () => {
    const homes = new Set<string>();
    for (let u = 0; u < 12; u++) {
      const names = await client.names(4, { metadata: { 'x-case': 'ring', 'x-user': `user-${u}` } });
      expect(new Set(names).size, `user-${u}`).toBe(1);
      homes.add(names[0]!);
    }
    expect(homes.size).toBeGreaterThan(1);
    // With no hash the pick is random, and still succeeds.
    expect((await client.names(3, { metadata: { 'x-case': 'ring' } })).every((n) => n.startsWith('rh'))).toBe(true);
  });

  it('moves on around the ring past an endpoint that cannot be reached (A42)', async () => {
    for (let u = 0; u < 8; u++) {
      expect(await client.names(2, { metadata: { 'x-case': 'ring-dead', 'x-user': `user-${u}` } })).toEqual(['rh1', 'rh1']);
    }
  });

  it('hashes the channel id for filter_state io.grpc.channel_id (A42)', async () => {
    const names = await client.names(10, { metadata: { 'x-case': 'ring-channel' } });
    expect(new Set(names).size).toBe(1);
  });

  it('sends fewer calls to the endpoint with more in flight (least request, A48)', async () => {
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const before = lrSlow.inFlight;
      const p = client.call(`lr${i}`, { metadata: { 'x-case': 'lr' }, deadlineMs: 60_000 });
      pending.push(p);
      // The call either answers (fast) or is held (slow): then the next one is picked.
      await Promise.race([p, lrSlow.waitInFlight(before + 1)]);
    }
    // Round robin would send 20 to each; least request keeps the held endpoint's share low.
    expect(lrSlow.calls).toBeLessThan(16);
    expect(lrFast.calls).toBe(40 - lrSlow.calls);
    lrSlow.release();
    await Promise.all(pending);
  });

  it('uses the first reachable address and never connects past it (pick_first, A62)', async () => {
    const names = await client.names(10, { metadata: { 'x-case': 'pf' } });
    expect(count(names)).toEqual({ pf1: 10 });
    expect(pfUntouched.connections).toBe(0);
  });

  it('ejects a failing endpoint and brings it back (outlier detection, A50)', async () => {
    // Round robin over both once both are connected: od-bad fails every call it gets.
    let failures = 0;
    for (let i = 0; i < 200 && odBad.calls < 6; i++) if (!(await client.call(`od${i}`, { metadata: { 'x-case': 'od' } })).ok) failures++;
    expect(failures).toBe(odBad.calls);
    expect(odGood.calls).toBeGreaterThanOrEqual(5);
    clock.advance(1000); // one detection interval: od-bad fails 100 % > 50 %
    const badBefore = odBad.calls;
    const after = await client.names(10, { metadata: { 'x-case': 'od' } });
    expect(count(after)).toEqual({ 'od-good': 10 });
    expect(odBad.calls).toBe(badBefore);
    clock.advance(31_000); // past base_ejection_time: back in rotation
    const back = await Promise.all(Array.from({ length: 6 }, (_, i) => client.call(`back${i}`, { metadata: { 'x-case': 'od' } })));
    expect(odBad.calls).toBeGreaterThan(badBefore);
    expect(back.some((r) => r.ok)).toBe(true);
  });

  it('balances an aggregate cluster over its children in priority order (A37), skipping unhealthy endpoints (A27)', async () => {
    // The primary's endpoints are DEGRADED/UNHEALTHY, so calls go to the LOGICAL_DNS child.
    expect(count(await client.names(5, { metadata: { 'x-case': 'agg' } }))).toEqual({ s1: 5 });
    expect(p1.calls).toBe(0);
    env.cp.updateResources(TYPE_URLS.clusterLoadAssignment, [endpoints(PRIMARY, [['127.0.0.1', p1.port]])]);
    // The primary becomes healthy: the next calls move to it, none failing on the way.
    const seen: string[] = [];
    for (let i = 0; i < 200 && seen.at(-1) !== 'p1'; i++) {
      seen.push(...(await client.names(1, { metadata: { 'x-case': 'agg' } })));
      if (seen.at(-1) !== 'p1') await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen.at(-1)).toBe('p1');
    expect(count(await client.names(5, { metadata: { 'x-case': 'agg' } }))).toEqual({ p1: 5 });
  });

  /** The addresses meshlet's snapshot gives a LOGICAL_DNS cluster (the first is the one Envoy dials). */
  function resolvedAddresses(cluster: string): Array<{ host: string; port: number }> {
    const snapshot = env.mesh.targets().find((t) => t.snapshot?.clusters.has(cluster))?.snapshot;
    const eps = snapshot?.clusters.get(cluster)?.endpoints;
    return (eps?.priorities ?? []).flat().flatMap((l) => l.endpoints.flatMap((e) => e.addresses.map((a) => ({ host: a.host, port: a.port }))));
  }

  /** The server that should answer for `localhost:port`: the one on the resolver's first address. */
  function expectedServer(servers: Awaited<ReturnType<typeof startLocalhostServers>>): LoopbackServer {
    const first = localhostAddrs[0]!;
    if (first.family === 6) {
      expect(servers.v6, 'localhost resolves to ::1 first, so ::1 must be bindable').toBeDefined();
      return servers.v6!;
    }
    return servers.v4;
  }

  function expectResolvedLocalhost(cluster: string, port: number): void {
    const addrs = resolvedAddresses(cluster);
    for (const a of addrs) {
      // An IP literal that `localhost` resolves to (not the name itself), on the configured port.
      expect(isIP(a.host), a.host).not.toBe(0);
      expect(a.port).toBe(port);
    }
    // Every address `localhost` resolves to, in the resolver's order.
    expect(addrs.map((a) => a.host)).toEqual(localhostAddrs.map((a) => a.address));
  }

  it('resolves a LOGICAL_DNS cluster whose address is the host name localhost and calls the resolved addresses with pick_first (A37)', async () => {
    const server = expectedServer(dnsAlone);
    expect(count(await client.names(5, { metadata: { 'x-case': 'dns-host' } }))).toEqual({ [server.name]: 5 });
    expect(server.calls).toBe(5);
    expectResolvedLocalhost(DNS_HOST, dnsAlone.port);
    // pick_first moves on to the next resolved address when the first stops answering (where
    // localhost has a second address; with 127.0.0.1 alone there is nothing to move on to).
    if (localhostAddrs.length > 1 && dnsAlone.v6) {
      const second = server === dnsAlone.v4 ? dnsAlone.v6 : dnsAlone.v4;
      await server.close();
      const seen: string[] = [];
      for (let i = 0; i < 50 && seen.at(-1) !== second.name; i++) {
        seen.push(...(await client.names(1, { metadata: { 'x-case': 'dns-host' } }).catch(async () => {
          await new Promise((r) => setTimeout(r, 20));
          return ['failed'];
        })));
      }
      expect(seen.at(-1)).toBe(second.name);
      expect(count(await client.names(5, { metadata: { 'x-case': 'dns-host' } }))).toEqual({ [second.name]: 5 });
    }
  });

  it('fails an aggregate cluster over from an unreachable EDS child to a LOGICAL_DNS child named localhost (A37)', async () => {
    // EDS_DEAD's endpoint refuses connections; the next priority is the DNS child, and the
    // EDS cluster after it (agg-fallback) is never used while the DNS child answers.
    const server = expectedServer(dnsInAgg);
    expect(count(await client.names(5, { metadata: { 'x-case': 'agg-host' } }))).toEqual({ [server.name]: 5 });
    expect(aggFallback.calls).toBe(0);
    expectResolvedLocalhost(DNS_HOST2, dnsInAgg.port);
  });

  it('weights endpoints by their ORCA load reports (A58), round robin until they report', async () => {
    // Until both have reported (and a weight update has passed), plain round robin.
    const seen = new Set<string>();
    for (let i = 0; i < 50 && seen.size < 2; i++) seen.add((await client.names(1, { metadata: { 'x-case': 'wrr' } }))[0]!);
    expect(count(await client.names(10, { metadata: { 'x-case': 'wrr' } }))).toEqual({ 'w-light': 5, 'w-heavy': 5 });
    clock.advance(200); // past weight_update_period: weights 100/0.2 = 500 and 100/0.8 = 125
    expect(count(await client.names(100, { metadata: { 'x-case': 'wrr' } }))).toEqual({ 'w-light': 80, 'w-heavy': 20 });
  });

  it('fails over to the next priority when no endpoint of the first can be reached (A56)', async () => {
    // Priority 0's only endpoint refuses connections; its calls wait for the attempt, then
    // move to priority 1 (Envoy would keep priority 0's load while its endpoint is HEALTHY).
    expect(count(await client.names(5, { metadata: { 'x-case': 'prio' } }))).toEqual({ backup: 5 });
  });
});
