// register() as an application calls it: no arguments (scheme `xds`, the process-wide mesh),
// the bootstrap from GRPC_XDS_BOOTSTRAP (a file), as examples/grpc-client.mjs relies on. Calling
// it again changes nothing: channels opened before keep working, new ones resolve through the
// same mesh (one ADS stream). Calling it with another mesh points only new `xds` channels at
// that mesh; register() again points them back at the process-wide one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { closeDefaultMesh, createMesh, getDefaultMesh, type Mesh } from '@meshlet/core';
import { register } from '@meshlet/grpc';
import { setTraceSpec, TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { startEchoBackend, type EchoBackend } from './helpers/grpc-echo.js';
import { count, echoCaller, type EchoCaller } from './helpers/grpc-mesh.js';

const TARGET = 'register.grpc.test:8080';
const CLUSTER = 'outbound|8080||register.grpc.test';
const NODE_ID = 'sidecar~127.0.0.1~register.default~default.svc.cluster.local';
const ENV_KEYS = ['GRPC_XDS_BOOTSTRAP', 'GRPC_XDS_BOOTSTRAP_CONFIG'] as const;

/** A control plane serving TARGET → one cluster over the given backends. */
async function controlPlaneFor(backends: readonly EchoBackend[]): Promise<{ cp: ControlPlane; address: string }> {
  const cp = new ControlPlane();
  const { address } = await cp.start();
  cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc-register')]);
  cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc-register', [{ domains: [TARGET], routes: [{ prefix: '', cluster: CLUSTER }] }])]);
  cp.setResources(TYPE_URLS.cluster, [edsCluster(CLUSTER)]);
  cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints(CLUSTER, backends.map((b) => ['127.0.0.1', b.port] as [string, number]))]);
  return { cp, address };
}

/** The ADS streams a control plane has seen opened (each request names its stream). */
function streamsOpened(cp: ControlPlane): number {
  return new Set(cp.requests.map((r) => r.streamId)).size;
}

/** register(options), returning the "registered scheme" lines MESHLET_TRACE=grpc writes for it. */
function registerTraced(...args: Parameters<typeof register>): string[] {
  const lines: string[] = [];
  const write = process.stderr.write;
  setTraceSpec('grpc');
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    register(...args);
  } finally {
    process.stderr.write = write;
    setTraceSpec(process.env.MESHLET_TRACE);
  }
  return lines.filter((l) => l.includes('registered scheme'));
}

/** The backend names of n calls, warmed until round robin has both endpoints READY. */
async function balanced(c: EchoCaller, n: number): Promise<Record<string, number>> {
  const seen = new Set<string>();
  for (let i = 0; i < 50 && seen.size < 2; i++) seen.add((await c.names(1))[0]!);
  return count(await c.names(n));
}

describe('register() with no arguments: scheme xds, the process-wide mesh from GRPC_XDS_BOOTSTRAP', () => {
  const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  let dir: string;
  let main: ControlPlane, other: ControlPlane;
  let a1: EchoBackend, a2: EchoBackend, c1: EchoBackend;
  let otherMesh: Mesh;
  let first: EchoCaller;
  let defaultMesh: Mesh;
  const clients: EchoCaller[] = [];
  const client = (): EchoCaller => {
    const c = echoCaller(`xds:///${TARGET}`);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    [a1, a2, c1] = await Promise.all([startEchoBackend('a1'), startEchoBackend('a2'), startEchoBackend('c1')]);
    let address: string;
    ({ cp: main, address } = await controlPlaneFor([a1, a2]));
    // Another control plane serving the same target over another backend: which backend
    // answers tells which mesh a channel resolved through.
    let otherAddress: string;
    ({ cp: other, address: otherAddress } = await controlPlaneFor([c1]));
    dir = mkdtempSync(join(tmpdir(), 'meshlet-register-'));
    const file = join(dir, 'bootstrap.json');
    writeFileSync(file, JSON.stringify(bootstrapFor(address, NODE_ID)));
    for (const k of ENV_KEYS) delete process.env[k];
    process.env.GRPC_XDS_BOOTSTRAP = file;
    otherMesh = createMesh({ bootstrap: bootstrapFor(otherAddress), listenerCatalog: false });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    otherMesh?.close();
    closeDefaultMesh();
    for (const k of ENV_KEYS) {
      if (savedEnv[k] === undefined) delete process.env[k];
      else process.env[k] = savedEnv[k];
    }
    await Promise.all([main?.stop(), other?.stop()]);
    await Promise.all([a1, a2, c1].map((b) => b?.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('resolves xds:/// through the control plane named by GRPC_XDS_BOOTSTRAP', async () => {
    expect(registerTraced()).toEqual([expect.stringContaining('registered scheme "xds" (the default mesh)')]);
    first = client();
    expect(await balanced(first, 4)).toEqual({ a1: 2, a2: 2 });
    // The bootstrap came from the file: the node the control plane saw is the file's.
    expect(main.requests.filter((r) => r.node).map((r) => r.node!.id)).toEqual([NODE_ID]);
    // The process-wide mesh, the one @meshlet/http's meshFetch shares, holds the target.
    defaultMesh = getDefaultMesh();
    expect(defaultMesh.targets().map((t) => t.authority)).toEqual([TARGET]);
    expect(streamsOpened(main)).toBe(1);
  });

  it('does nothing when called again the same way: old and new channels work on the one mesh', async () => {
    expect(registerTraced()).toEqual([]);
    expect(registerTraced({})).toEqual([]);
    expect(registerTraced({ scheme: 'xds' })).toEqual([]);
    expect(count(await first.names(4))).toEqual({ a1: 2, a2: 2 });
    const second = client();
    expect(await balanced(second, 4)).toEqual({ a1: 2, a2: 2 });
    expect(getDefaultMesh()).toBe(defaultMesh);
    expect(defaultMesh.targets().map((t) => t.authority)).toEqual([TARGET]);
    // One xDS client, one ADS stream, for both channels.
    expect(streamsOpened(main)).toBe(1);
    expect(streamsOpened(other)).toBe(0);
  });

  it('points new xds channels at another mesh when given one, and back with register()', async () => {
    expect(registerTraced({ mesh: otherMesh })).toEqual([expect.stringContaining('registered scheme "xds" (a given mesh)')]);
    const onOther = client();
    expect(count(await onOther.names(3))).toEqual({ c1: 3 });
    expect(streamsOpened(other)).toBe(1);
    // A channel keeps the mesh it was opened on.
    expect(count(await first.names(4))).toEqual({ a1: 2, a2: 2 });

    expect(registerTraced()).toEqual([expect.stringContaining('registered scheme "xds" (the default mesh)')]);
    const back = client();
    expect(await balanced(back, 4)).toEqual({ a1: 2, a2: 2 });
    expect(count(await onOther.names(2))).toEqual({ c1: 2 });
    expect(getDefaultMesh()).toBe(defaultMesh);
    expect(streamsOpened(main)).toBe(1);
    expect(streamsOpened(other)).toBe(1);
  });
});
