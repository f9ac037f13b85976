// stop() returns even while a client keeps its ADS stream or connection (grpc-js-xds's
// xDS client outlives the channels that use it), after the grace period at most.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { echoClient, startEchoBackend } from './helpers/grpc-echo.js';

describe('ControlPlane.stop', () => {
  it('resolves while an idle channel holds its connection open', async () => {
    const cp = new ControlPlane();
    const { address } = await cp.start();
    const channel = new grpc.Client(address, grpc.credentials.createInsecure());
    await new Promise<void>((resolve, reject) => channel.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
    await expect(cp.stop()).resolves.toBeUndefined();
    channel.close();
  });

  it('resolves while @grpc/grpc-js-xds keeps its xDS client after its channel closed', async () => {
    const backend = await startEchoBackend('e');
    const cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener('stop.test:80', 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '', cluster: 'c' }] }])]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('c')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints('c', [['127.0.0.1', backend.port]])]);
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({ ...bootstrapFor(address), node: { id: 'stop-test', locality: {} } });
    const grpcXds = await import('@grpc/grpc-js-xds');
    grpcXds.register();
    const client = echoClient('xds:///stop.test:80');
    expect(await client.echo('hi')).toBe('e:hi');
    client.close();
    await expect(cp.stop()).resolves.toBeUndefined();
    await backend.close();
  });
});
