// Child process: three grpc-js echo backends on 127.0.0.1 and @meshlet/control-plane
// serving one Listener (UNARY_TARGET) → one route → one EDS cluster of the three,
// ROUND_ROBIN. Prints {"address", "ports"} on stdout when ready.
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { HCM, ROUTER } from './bench-backend.mjs';
import { ECHO_SERVICE, UNARY_TARGET } from './grpc-echo.mjs';

const servers = [];
const ports = [];
for (let i = 0; i < 3; i++) {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, { Echo: (call, cb) => cb(null, call.request) });
  ports.push(
    await new Promise((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    ),
  );
  servers.push(server);
}

const CLUSTER = 'outbound|8080||unary.meshlet.test';
const cp = new ControlPlane();
cp.setResources(TYPE_URLS.listener, [{
  name: UNARY_TARGET,
  api_listener: { api_listener: { '@type': HCM, rds: { route_config_name: 'rc-unary', config_source: { ads: {} } }, http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }] } },
}]);
cp.setResources(TYPE_URLS.routeConfiguration, [{
  name: 'rc-unary',
  virtual_hosts: [{ name: 'unary', domains: [UNARY_TARGET], routes: [{ match: { prefix: '' }, route: { cluster: CLUSTER } }] }],
}]);
cp.setResources(TYPE_URLS.cluster, [{ name: CLUSTER, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN' }]);
cp.setResources(TYPE_URLS.clusterLoadAssignment, [{
  cluster_name: CLUSTER,
  // gRPC clients drop a locality without a weight (gRFC A27).
  endpoints: [{
    locality: { zone: 'z1' },
    load_balancing_weight: 1,
    lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })),
  }],
}]);
const { address } = await cp.start();
process.stdout.write(JSON.stringify({ address, ports }) + '\n');
process.on('SIGTERM', async () => {
  await cp.stop();
  for (const s of servers) s.forceShutdown();
  process.exit(0);
});
