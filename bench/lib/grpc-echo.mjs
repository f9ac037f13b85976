// What the gRPC benchmarks share: an echo service over raw bytes (no .proto needed),
// its client constructor, the unary benchmark's target, and the bootstrap both xDS
// clients read.
import * as grpc from '@grpc/grpc-js';

const id = (b) => b;
export const ECHO_SERVICE = {
  Echo: { path: '/meshlet.test.EchoService/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
};
export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'EchoService');
export const UNARY_TARGET = 'unary.meshlet.test:8080';

/** The gRPC-format bootstrap for one insecure xDS server, as JSON for GRPC_XDS_BOOTSTRAP_CONFIG. */
export function bootstrapJson(serverUri, nodeName) {
  return JSON.stringify({
    xds_servers: [{ server_uri: serverUri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: `sidecar~127.0.0.1~${nodeName}.default~default.svc.cluster.local`, locality: {}, metadata: { GENERATOR: 'grpc' } },
  });
}

/**
 * What any application has done before its gRPC channel connects, and a process with meshlet
 * has too (its ADS stream): EventEmitters made and listened to, an HTTP/2 session and stream.
 * Node's events and http2 code then already has its type feedback when the channel's
 * subchannels connect, so the shapes those pass through while being set up are recorded too,
 * and a few per-call property sites there become megamorphic (BENCHMARKS.md, "Eighth
 * session"). A plain direct client skips all that and is unusually clean. The stream asks the
 * control plane for a method it does not serve, and the session is let go.
 */
async function warmSharedCode(address) {
  const [{ EventEmitter }, http2] = await Promise.all([import('node:events'), import('node:http2')]);
  for (let i = 0; i < 20; i++) new EventEmitter().on('x', () => {});
  const session = http2.connect(`http://${address}`);
  session.on('error', () => {});
  const stream = session.request({ ':method': 'POST', ':path': '/meshlet.bench.Nothing/Warm', 'content-type': 'application/grpc', te: 'trailers' });
  for (const event of ['response', 'data', 'error', 'close']) stream.on(event, () => {});
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  session.unref();
}

/**
 * Make `new EchoClient(target)` possible for one client kind, in this process:
 * 'direct' (no resolver to register), 'direct-warm' (the same after warmSharedCode()),
 * 'direct-imported' (the same in a process that imported @meshlet/grpc), 'direct-mesh' (the same
 * beside a mesh that resolved the target),
 * 'grpc-js-xds' or 'meshlet' (each registers the `xds` scheme, reading the bootstrap from
 * GRPC_XDS_BOOTSTRAP_CONFIG). Returns the target and the channel options.
 */
export async function setUpClientKind(kind, { address, ports, target }) {
  switch (kind) {
    case 'direct':
    case 'direct-warm':
    case 'direct-imported':
    case 'direct-mesh':
      if (kind === 'direct-warm') await warmSharedCode(address);
      // A direct channel beside a mesh that resolved the benchmark's target (its ADS stream,
      // decoded resources and snapshot) and that no grpc-js channel uses: what a resolved mesh
      // costs calls that never go through it.
      if (kind === 'direct-mesh') {
        process.env.GRPC_XDS_BOOTSTRAP_CONFIG = bootstrapJson(address, 'bench-meshlet');
        const { getDefaultMesh } = await import('@meshlet/core');
        await getDefaultMesh().target(`xds:///${target}`, { listenerCatalog: false }).ready();
      }
      // A direct channel in a process that has imported meshlet and does nothing with it: what
      // loading meshlet alone costs an application's calls.
      if (kind === 'direct-imported') await import('@meshlet/grpc');
      return {
        target: `ipv4:${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
        options: { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) },
      };
    case 'grpc-js-xds': {
      process.env.GRPC_XDS_BOOTSTRAP_CONFIG = bootstrapJson(address, 'bench-grpcjsxds');
      (await import('@grpc/grpc-js-xds')).register();
      return { target: `xds:///${target}`, options: {} };
    }
    case 'meshlet': {
      process.env.GRPC_XDS_BOOTSTRAP_CONFIG = bootstrapJson(address, 'bench-meshlet');
      (await import('@meshlet/grpc')).register();
      return { target: `xds:///${target}`, options: {} };
    }
    default:
      throw new Error(`unknown client kind ${kind}`);
  }
}
