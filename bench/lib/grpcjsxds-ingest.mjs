// Child process: @grpc/grpc-js-xds resolves the scale target and completes one RPC
// (it has no hook for "config resolved", so the first RPC is the closest event).
// Prints {"ms": ..., "rssMB": ...}.
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { TARGET } from './scale-config.mjs';

const address = process.argv[2];
process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
  xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
  node: { id: 'sidecar~127.0.0.1~bench-ref.default~default.svc.cluster.local', locality: {}, metadata: { GENERATOR: 'grpc' } },
});
grpcXds.register();
const id = (b) => b;
const Client = grpc.makeGenericClientConstructor(
  { Echo: { path: '/meshlet.test.EchoService/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
  'EchoService',
);
const start = performance.now();
const client = new Client(`xds:///${TARGET}`, grpc.credentials.createInsecure());
await new Promise((resolve, reject) =>
  client.Echo(Buffer.from('x'), { deadline: Date.now() + 600_000, waitForReady: true }, (err) => (err ? reject(err) : resolve())),
);
const ms = performance.now() - start;
process.stdout.write(JSON.stringify({ ms: Math.round(ms), rssMB: Math.round(process.memoryUsage().rss / 1e6) }) + '\n');
process.exit(0);
