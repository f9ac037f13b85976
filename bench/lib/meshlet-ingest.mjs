// Child process: meshlet's xDS client resolves the scale target's whole chain.
// Prints {"ms": time from subscription to the chain resolved, "rssMB": ..., ...}.
import { XdsDependencyManager } from '@meshlet/core';
import { XdsClient } from '@meshlet/xds-client';
import { TARGET } from './scale-config.mjs';

const address = process.argv[2];
const bootstrap = {
  xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
  node: { id: 'sidecar~127.0.0.1~bench.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc' } },
};
const rssBefore = process.memoryUsage().rss;
const start = performance.now();
const client = new XdsClient({ bootstrap });
const config = await new Promise((resolve, reject) => {
  const dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET }, {
    onUpdate: (c) => { dm.close(); resolve(c); },
    onError: reject,
  });
});
const ms = performance.now() - start;
let endpoints = 0;
for (const c of config.clusters.values()) if (c.ok && c.endpoints) for (const p of c.endpoints.endpoints.priorities) for (const l of p) endpoints += l.endpoints.length;
const rss = process.memoryUsage().rss;
process.stdout.write(JSON.stringify({ ms: Math.round(ms), rssMB: Math.round(rss / 1e6), rssBeforeMB: Math.round(rssBefore / 1e6), clusters: config.clusters.size, endpoints }) + '\n');
client.close();
process.exit(0);
