// The client libraries are bundled (scripts/bundle.mjs): each package entry point is one module,
// and the xds-client's entry points share chunks, so a process that imports several of them
// holds one copy of each module's state. Checked in a plain Node child (Node's own resolution of
// package.json exports, not vitest's).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CHILD = `
import { createRequire } from 'node:module';
const proto = await import('@meshlet/xds-client/proto');
const json = await import('@meshlet/xds-client/proto-json');
const xds = await import('@meshlet/xds-client');
proto.releaseProtoReflection();
const released = proto.protoReflectionHeld();
// Encoding through another entry point builds the reflection that /proto reports on.
json.encodeProto3Json('envoy.config.cluster.v3.Cluster', { name: 'c' });
const heldAfterJson = proto.protoReflectionHeld();
proto.releaseProtoReflection();
// And decoding through the main entry point.
const decoded = xds.clusterResourceType.decode({ serverFeatures: [] }, {
  type_url: xds.TYPE_URLS.cluster,
  value: json.encodeProto3Json('envoy.config.cluster.v3.Cluster', { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }),
});
const require = createRequire(process.cwd() + '/');
const files = ['@meshlet/xds-client', '@meshlet/core', '@meshlet/grpc', '@meshlet/http'].map((p) => require.resolve(p));
console.log(JSON.stringify({ released, heldAfterJson, decodedName: decoded.value?.name, heldAfterDecode: proto.protoReflectionHeld(), files }));
`;

describe('bundled libraries', () => {
  it('resolve to one module per entry point, with one copy of shared state', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { released: boolean; heldAfterJson: boolean; decodedName: string; heldAfterDecode: boolean; files: string[] };
    expect(out.released).toBe(false);
    expect(out.heldAfterJson).toBe(true);
    expect(out.decodedName).toBe('c');
    expect(out.heldAfterDecode).toBe(true);
    for (const f of out.files) expect(f).toMatch(/[/\\]dist[/\\]index\.bundle\.js$/);
  });
});
