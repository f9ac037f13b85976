// Child process: a real grpc echo backend and @meshlet/control-plane serving the scale
// scenario. Prints {"address": ..., "backendPort": ...} on stdout when ready.
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { scaleResources } from './scale-config.mjs';

const n = Number(process.argv[2] ?? 10000);
const e = Number(process.argv[3] ?? 10);
const id = (b) => b;
const server = new grpc.Server();
server.addService(
  { Echo: { path: '/meshlet.test.EchoService/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
  { Echo: (call, cb) => cb(null, call.request) },
);
const backendPort = await new Promise((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
);
const r = scaleResources(n, e, backendPort);
const cp = new ControlPlane();
cp.setResources(TYPE_URLS.listener, [r.listener]);
cp.setResources(TYPE_URLS.routeConfiguration, [r.routeConfig]);
cp.setResources(TYPE_URLS.cluster, r.clusters);
cp.setResources(TYPE_URLS.clusterLoadAssignment, r.clas);
const { address } = await cp.start();
process.stdout.write(JSON.stringify({ address, backendPort }) + '\n');
process.on('SIGTERM', async () => {
  await cp.stop();
  server.forceShutdown();
  process.exit(0);
});
