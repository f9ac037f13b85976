// A process that meshes only HTTP never loads grpc-js: the ADS stream runs over node:http2
// (packages/xds-client/src/grpc-stream.ts). Nor, when nothing registers an OpenTelemetry
// provider, does it load the OpenTelemetry API (packages/core/src/telemetry/otel.ts). Checked
// in a child process that takes its configuration from the real control plane and sends a
// request through meshFetch.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { startHttpBackend, type HttpBackend, type Seen } from './helpers/http-backend.js';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const HOST = 'plain.test';

// argv: the bootstrap JSON. Prints one JSON line: the backend that answered, and the grpc-js
// and OpenTelemetry modules in the CommonJS cache.
const CHILD = `
import { createRequire } from 'node:module';
const { createMesh, createMeshFetch } = await import('@meshlet/http');
const mesh = createMesh({ bootstrap: JSON.parse(process.argv[1]) });
const fetchM = createMeshFetch({ mesh });
const res = await fetchM('http://${HOST}/x');
const seen = await res.json();
const cache = Object.keys(createRequire(import.meta.url).cache);
const loaded = cache.filter((k) => k.includes('grpc-js'));
const otel = cache.filter((k) => k.includes('@opentelemetry'));
console.log(JSON.stringify({ backend: seen.backend, loaded, otel }));
mesh.close();
process.exit(0);
`;

describe('an HTTP-only mesh', () => {
  let cp: ControlPlane | undefined;
  let backend: HttpBackend | undefined;
  afterEach(async () => {
    await cp?.stop();
    await backend?.close();
    cp = undefined;
    backend = undefined;
  });

  it('takes its configuration over ADS and routes a request without loading grpc-js or the OpenTelemetry API', async () => {
    backend = await startHttpBackend('only');
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${HOST}:80`, 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: [HOST, `${HOST}:80`], routes: [{ prefix: '/', cluster: 'c' }] }])]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('c')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints('c', [['127.0.0.1', backend.port]])]);

    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, JSON.stringify(bootstrapFor(address))], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(out) as { backend: Seen['backend']; loaded: string[]; otel: string[] }).toEqual({ backend: 'only', loaded: [], otel: [] });
  });
});
