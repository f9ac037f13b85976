// Interop: @grpc/grpc-js-xds, an independent xDS client, takes its config from
// @meshlet/control-plane and routes real RPCs to real backends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpcXds from '@grpc/grpc-js-xds';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { echoClient, startEchoBackend, type EchoBackend } from './helpers/grpc-echo.js';

const TARGET = 'echo.meshlet.test:8080';
const CLUSTER_A = 'outbound|8080|a|echo.meshlet.test';
const CLUSTER_B = 'outbound|8080|b|echo.meshlet.test';

describe('@grpc/grpc-js-xds against @meshlet/control-plane', () => {
  let cp: ControlPlane;
  let a1: EchoBackend;
  let a2: EchoBackend;
  let b1: EchoBackend;
  let client: ReturnType<typeof echoClient>;

  beforeAll(async () => {
    [a1, a2, b1] = await Promise.all([startEchoBackend('a1'), startEchoBackend('a2'), startEchoBackend('b1')]);
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc-echo')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc-echo', [
        {
          domains: [TARGET],
          routes: [
            { prefix: '', headers: [{ name: 'x-subset', string_match: { exact: 'b' } }], cluster: CLUSTER_B },
            { prefix: '/meshlet.test.EchoService/', cluster: CLUSTER_A },
          ],
        },
      ]),
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster(CLUSTER_A), edsCluster(CLUSTER_B)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints(CLUSTER_A, [
        ['127.0.0.1', a1.port],
        ['127.0.0.1', a2.port],
      ]),
      endpoints(CLUSTER_B, [['127.0.0.1', b1.port]]),
    ]);
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(bootstrapFor(address, 'sidecar~127.0.0.1~interop.default~default.svc.cluster.local'));
    grpcXds.register();
    client = echoClient(`xds:///${TARGET}`);
  });

  afterAll(async () => {
    client?.close();
    await cp?.stop();
    await Promise.all([a1, a2, b1].map((b) => b?.close()));
  });

  it('routes by path and balances round robin over the EDS endpoints', async () => {
    // Round robin picks among READY subchannels: call until both have answered once,
    // then every pair of calls must hit both.
    const seen = new Set<string>();
    for (let i = 0; i < 50 && seen.size < 2; i++) seen.add((await client.echo(`warm${i}`)).split(':')[0]!);
    expect(seen).toEqual(new Set(['a1', 'a2']));
    const names: string[] = [];
    for (let i = 0; i < 6; i++) names.push((await client.echo(`m${i}`)).split(':')[0]!);
    expect(names.filter((n) => n === 'a1')).toHaveLength(3);
    expect(names.filter((n) => n === 'a2')).toHaveLength(3);
  });

  it('routes by header to another cluster', async () => {
    const grpc = await import('@grpc/grpc-js');
    const md = new grpc.Metadata();
    md.set('x-subset', 'b');
    const reply = await new Promise<string>((resolve, reject) =>
      (client as unknown as { Echo: (r: Buffer, m: InstanceType<typeof grpc.Metadata>, cb: (e: Error | null, r?: Buffer) => void) => void }).Echo(
        Buffer.from('hdr'),
        md,
        (err, res) => (err ? reject(err) : resolve(res!.toString())),
      ),
    );
    expect(reply).toBe('b1:hdr');
  });

  it('was ACKed by grpc-js-xds for every resource type', () => {
    for (const type of Object.values(TYPE_URLS)) {
      const acks = cp.acks(type).filter((r) => r.node?.id.includes('interop') ?? true);
      expect(acks.length, type).toBeGreaterThan(0);
    }
    expect(cp.nacks()).toHaveLength(0);
  });
});
