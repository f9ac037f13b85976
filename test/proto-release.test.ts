// The protobuf reflection is let go between xDS updates (packages/xds-client/src/proto.ts):
// once released, nothing a mesh keeps from its decoded configuration may hold a protobufjs
// type or message, or the whole reflection stays in the heap of every client and is marked on
// every major collection. Checked in a child process run with --expose-gc, whose only
// reflection is the client's (the control plane, which has its own, runs here); the child then
// takes an update, which builds the reflection again.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const TARGET = 'svc.test:80';

// argv: the control plane's address. Prints one JSON line after the release, then waits for
// a line on stdin (the parent has pushed new endpoints) and prints one more.
const CHILD = `
import { createInterface } from 'node:readline';
const { Mesh } = await import('@meshlet/core');
const proto = await import('@meshlet/xds-client/proto');
const [address, bootstrap] = process.argv.slice(1);
const mesh = new Mesh({ bootstrap: JSON.parse(bootstrap), listenerCatalog: false });
const target = mesh.target(${JSON.stringify(TARGET)});
const changed = () => new Promise((resolve) => { const off = target.onChange(() => { off(); resolve(); }); });
while (!target.snapshot?.clusters.get('a')?.lb) await changed();
const endpointOf = () => target.snapshot.clusters.get('a').lb.pick().key;
const before = endpointOf();
let ref = new WeakRef(proto.protoType('envoy.config.cluster.v3.Cluster'));
proto.releaseProtoReflection();
// A WeakRef's target lives to the end of the job that made it: collect from later turns.
for (let i = 0; i < 3; i++) {
  await new Promise((r) => setImmediate(r));
  globalThis.gc();
}
console.log(JSON.stringify({ before, held: proto.protoReflectionHeld(), collected: ref.deref() === undefined }));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await lines.next();
while (endpointOf() === before) await changed();
console.log(JSON.stringify({ after: endpointOf(), held: proto.protoReflectionHeld() }));
mesh.close();
process.exit(0);
`;

describe('the protobuf reflection between updates', () => {
  let cp: ControlPlane | undefined;
  afterEach(async () => {
    await cp?.stop();
    cp = undefined;
  });

  it('is collected once released, with the configuration still in use, and built again for the next update', async () => {
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: [TARGET], routes: [{ prefix: '/', cluster: 'a' }] }])]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('a')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints('a', [['127.0.0.1', 1001]])]);

    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, address, JSON.stringify(bootstrapFor(address))], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const nextLine = async (): Promise<unknown> => {
      const r = await lines.next();
      if (r.done) throw new Error(`child ended early: ${stderr}`);
      return JSON.parse(r.value);
    };

    expect(await nextLine()).toEqual({ before: '127.0.0.1:1001', held: false, collected: true });
    cp.updateResources(TYPE_URLS.clusterLoadAssignment, [endpoints('a', [['127.0.0.1', 1002]])]);
    child.stdin.write('go\n');
    expect(await nextLine()).toEqual({ after: '127.0.0.1:1002', held: true });
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});
