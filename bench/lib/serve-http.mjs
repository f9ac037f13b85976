// Child process: an HTTP server answering a small body, and @meshlet/control-plane serving
// one Listener (bench.mesh.test:80) → one route → one EDS cluster with that server as its
// only endpoint. Prints {"address", "port"} when ready.
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { HCM, ROUTER, startBenchBackend } from './bench-backend.mjs';

const { server, port } = await startBenchBackend();
const cp = new ControlPlane();
cp.setResources(TYPE_URLS.listener, [{
  name: 'bench.mesh.test:80',
  api_listener: { api_listener: { '@type': HCM, rds: { route_config_name: 'rc', config_source: { ads: {} } }, http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }] } },
}]);
cp.setResources(TYPE_URLS.routeConfiguration, [{ name: 'rc', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] }]);
cp.setResources(TYPE_URLS.cluster, [{ name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN' }]);
cp.setResources(TYPE_URLS.clusterLoadAssignment, [{ cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] }]);
const { address } = await cp.start();
process.stdout.write(JSON.stringify({ address, port }) + '\n');
process.on('SIGTERM', async () => { await cp.stop(); server.close(); process.exit(0); });
