// Bad input to @meshlet/grpc: options that name what is wrong, targets the control plane does
// not serve, authorities the bootstrap lacks, unreachable endpoints, and the meshlet balancer
// chosen without the meshlet resolver. Each failure is a status that says why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { MeshletError, TYPE_URLS } from '@meshlet/xds-client';
import { LB_POLICY_NAME, register } from '@meshlet/grpc';
import { edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { startEchoBackend, type EchoBackend } from './helpers/grpc-echo.js';
import { echoCaller, startGrpcMesh, type EchoCaller, type GrpcMeshEnv } from './helpers/grpc-mesh.js';
import { freePort } from './helpers/ports.js';

const TARGET = 'bad.grpc.test:8080';
const DOWN = 'outbound|8080|down|bad.grpc.test';


describe('@meshlet/grpc bad input', () => {
  let env: GrpcMeshEnv;
  let echo: EchoBackend;
  const extra: EchoCaller[] = [];

  beforeAll(async () => {
    echo = await startEchoBackend('e1');
    const dead = await freePort();
    env = await startGrpcMesh(
      {
        [TYPE_URLS.listener]: [listener(TARGET, 'rc-bad')],
        [TYPE_URLS.routeConfiguration]: [routeConfig('rc-bad', [{ domains: [TARGET], routes: [{ prefix: '', cluster: DOWN }] }])],
        [TYPE_URLS.cluster]: [edsCluster(DOWN)],
        [TYPE_URLS.clusterLoadAssignment]: [endpoints(DOWN, [['127.0.0.1', dead]])],
      },
      { resourceDoesNotExistTimeoutMs: 200 },
    );
  });

  afterAll(async () => {
    for (const c of extra) c.close();
    await env?.close();
    await echo?.close();
  });

  it('names the option that is wrong', () => {
    const bad = (options: unknown): MeshletError => {
      try {
        register(options as never);
      } catch (err) {
        return err as MeshletError;
      }
      throw new Error('register accepted bad options');
    };
    expect(bad('xds').message).toBe('@meshlet/grpc register(): options: want an object, got string');
    expect(bad(null).message).toBe('@meshlet/grpc register(): options: want an object, got null');
    expect(bad({ scheme: '' }).message).toBe('@meshlet/grpc register(): scheme: want a URI scheme name such as "xds" or "meshlet-xds", got ""');
    expect(bad({ scheme: 'no spaces' }).code).toBe('MESHLET_INVALID_OPTION');
    expect(bad({ scheme: 'ok', mesh: {} }).message).toBe('@meshlet/grpc register(): mesh: want a Mesh from @meshlet/core (createMesh())');
    // Registering again is harmless.
    expect(() => register({ scheme: env.scheme, mesh: env.mesh })).not.toThrow();
  });

  it('fails calls to a Listener the control plane does not have with UNAVAILABLE naming it', async () => {
    const c = env.client('missing.grpc.test:9090');
    const r = await c.call('x');
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toContain('MESHLET_XDS_RESOURCE_DOES_NOT_EXIST');
    expect(r.details).toContain('missing.grpc.test:9090');
  });

  it('fails calls to an xDS authority the bootstrap does not list', async () => {
    const c = echoCaller(`${env.scheme}://no-such-authority/${TARGET}`);
    extra.push(c);
    const r = await c.call('x');
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toContain('authority "no-such-authority" is not in the bootstrap');
  });

  it('fails fast with UH when no endpoint of the cluster is reachable; wait-for-ready calls wait', async () => {
    const c = env.client(TARGET);
    let r = await c.call('x');
    // The first call may wait for the connection attempt; once it fails, calls fail at once.
    for (let i = 0; i < 20 && r.details.includes('Deadline'); i++) r = await c.call('x');
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toMatch(/^UH MESHLET_NO_HEALTHY_UPSTREAM: cluster "outbound\|8080\|down\|bad\.grpc\.test": no endpoint is reachable \(1 of 1 in TRANSIENT_FAILURE\)/);
    const w = await c.call('x', { waitForReady: true, deadlineMs: 300 });
    expect(w.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('refuses the meshlet balancer on a channel the meshlet resolver did not make', async () => {
    register({ scheme: 'meshlet-bad-input', mesh: env.mesh });
    const c = echoCaller(`127.0.0.1:${echo.port}`, {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ [LB_POLICY_NAME]: {} }] }),
    });
    extra.push(c);
    const r = await c.call('x');
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toContain('meshlet_cluster_manager was selected without the meshlet resolver');
  });

  it('fails calls with the reason when the default mesh has no bootstrap', async () => {
    const saved = [process.env.GRPC_XDS_BOOTSTRAP, process.env.GRPC_XDS_BOOTSTRAP_CONFIG];
    delete process.env.GRPC_XDS_BOOTSTRAP;
    delete process.env.GRPC_XDS_BOOTSTRAP_CONFIG;
    try {
      register({ scheme: 'meshlet-no-bootstrap' });
      const c = echoCaller(`meshlet-no-bootstrap:///${TARGET}`);
      extra.push(c);
      const r = await c.call('x');
      expect(r.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.details).toContain('MESHLET_BOOTSTRAP_NOT_FOUND');
    } finally {
      if (saved[0] !== undefined) process.env.GRPC_XDS_BOOTSTRAP = saved[0];
      if (saved[1] !== undefined) process.env.GRPC_XDS_BOOTSTRAP_CONFIG = saved[1];
    }
  });
});
