// gRPC channels learn that a Listener does not exist from the server's responses and gRFC
// A57's timer, as grpc-js-xds does: they do not consult the mesh's listener catalog, nor start
// it, so a process that meshes only gRPC keeps one ADS stream. HTTP targets still use it.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrpcMesh, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

describe('gRPC channels and the listener catalog', () => {
  let env: GrpcMeshEnv;
  beforeAll(async () => {
    // A57's timer shortened from 15 s, so the channel learns of the absence within the test.
    env = await startGrpcMesh({}, { listenerCatalog: true, resourceDoesNotExistTimeoutMs: 300 });
  });
  afterAll(async () => {
    await env.close();
  });

  it('a gRPC channel neither starts nor consults the catalog; an HTTP target starts it', async () => {
    const r = await env.client('missing.grpc.test:9090').call('x');
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toContain('MESHLET_XDS_RESOURCE_DOES_NOT_EXIST');
    expect(env.mesh.xdsClients().map((c) => c.scope)).toEqual(['mesh']);
    const t = env.mesh.target('missing.http.test:80');
    expect(env.mesh.xdsClients().map((c) => c.scope)).toEqual(['mesh', 'listener-catalog']);
    await expect(t.ready()).rejects.toMatchObject({ code: 'MESHLET_XDS_RESOURCE_DOES_NOT_EXIST' });
  });
});
