// A channel that goes idle (grpc-js tears down its resolver and balancer after
// grpc.client_idle_timeout_ms without calls) resolves again from the mesh on its next call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TYPE_URLS } from '@meshlet/xds-client';
import { edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { startEchoBackend, type EchoBackend } from './helpers/grpc-echo.js';
import { startGrpcMesh, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

const TARGET = 'idle.grpc.test:8080';
const A = 'outbound|8080|a|idle.grpc.test';

describe('@meshlet/grpc channel idleness', () => {
  let env: GrpcMeshEnv;
  let a1: EchoBackend;

  beforeAll(async () => {
    a1 = await startEchoBackend('a1');
    env = await startGrpcMesh({
      [TYPE_URLS.listener]: [listener(TARGET, 'rc-idle')],
      [TYPE_URLS.routeConfiguration]: [routeConfig('rc-idle', [{ domains: [TARGET], routes: [{ prefix: '', cluster: A }] }])],
      [TYPE_URLS.cluster]: [edsCluster(A)],
      [TYPE_URLS.clusterLoadAssignment]: [endpoints(A, [['127.0.0.1', a1.port]])],
    });
  });

  afterAll(async () => {
    await env?.close();
    await a1?.close();
  });

  it('serves calls again after the channel went idle', async () => {
    const c = env.client(TARGET, { 'grpc.client_idle_timeout_ms': 1000 });
    expect(await c.names(2)).toEqual(['a1', 'a1']);
    const { connectivityState } = await import('@grpc/grpc-js');
    const channel = c.client.getChannel();
    const deadline = Date.now() + 10_000;
    while (channel.getConnectivityState(false) !== connectivityState.IDLE && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(channel.getConnectivityState(false)).toBe(connectivityState.IDLE);
    expect(await c.names(3)).toEqual(['a1', 'a1', 'a1']);
  });
});
