// CSDS (gRFC A40): the client's cache as a ClientConfig, its proto3 JSON, and the gRPC
// service called by a real grpc-js client, over a scripted ADS server on loopback.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClientConfig, clientStatusJson, clientStatusJsonChunks } from '../src/csds.js';
import { addCsdsService, csdsServiceDefinition } from '../src/csds-service.js';
import type {
  envoy_config_route_v3_RouteConfiguration as RouteConfiguration,
  envoy_service_status_v3_ClientStatusResponse as ClientStatusResponse,
} from '../src/generated/pb.js';
import { envoy_admin_v3_ClientResourceStatus as Status } from '../src/generated/pb.js';
import { decodeMessage, typeUrlOf } from '../src/proto.js';
import { encodeProto3Json } from '../src/proto-json.js';
import { listenerResourceType, routeConfigurationResourceType } from '../src/resources/index.js';
import { XdsClient } from '../src/xds-client.js';
import { ManualClock, ScriptedAdsServer, type RecordedRequest } from './helpers/ads-server.js';

const RDS = typeUrlOf('envoy.config.route.v3.RouteConfiguration');

function route(name: string, regex?: string): { type_url: string; value: Uint8Array } {
  const match = regex === undefined ? { prefix: '/' } : { safe_regex: { regex } };
  return {
    type_url: RDS,
    value: encodeProto3Json('envoy.config.route.v3.RouteConfiguration', {
      name,
      virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match, route: { cluster: `c-${name}` } }] }],
    }),
  };
}

const quiet = { onChanged: () => {}, onError: () => {}, onDoesNotExist: () => {} };
const isRds = (r: RecordedRequest) => r.type_url === RDS;

describe('CSDS', () => {
  const server = new ScriptedAdsServer();
  const clock = new ManualClock();
  let client: XdsClient;
  let csdsServer: grpc.Server;
  let csdsAddress: string;

  beforeAll(async () => {
    const uri = await server.start();
    client = new XdsClient({
      bootstrap: {
        xds_servers: [{ server_uri: uri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
        node: { id: 'csds-node', cluster: 'c', metadata: { NAMESPACE: 'ns1' } },
      },
      clock,
    });
    for (const name of ['rc-a', 'rc-b', 'rc-missing']) client.watch(routeConfigurationResourceType, name, quiet);
    await server.waitForRequest((r) => isRds(r) && r.resource_names.length === 3);

    // v1 at t=1 s: both accepted. v2 at t=2 s (3602 s on the wall clock): rc-b's regex does not compile, so it is NACKed
    // and keeps v1; rc-a takes v2 (gRFC A46).
    clock.advance(1000);
    let ack = server.nextRequest((r) => isRds(r) && r.version_info === 'v1');
    server.respond(RDS, 'v1', [route('rc-a'), route('rc-b')]);
    await ack;
    clock.advance(1000);
    // The date is stepped an hour on (NTP, a VM resume): timestamps follow the wall clock,
    // timers do not.
    clock.stepWall(3_600_000);
    const nack = server.nextRequest((r) => isRds(r) && !!r.error_detail);
    server.respond(RDS, 'v2', [route('rc-a'), route('rc-b', '([')]);
    await nack;
    // rc-missing's does-not-exist timer (15 s from the first request) runs out.
    clock.advance(15_000);
    // Requested, never answered.
    client.watch(routeConfigurationResourceType, 'rc-late', quiet);
    await server.waitForRequest((r) => isRds(r) && r.resource_names.includes('rc-late'));

    csdsServer = new grpc.Server();
    addCsdsService(csdsServer, () => [{ client, scope: 'test-scope' }]);
    const port = await new Promise<number>((resolve, reject) =>
      csdsServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    csdsAddress = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    client?.close();
    csdsServer?.forceShutdown();
    await server.stop();
  });

  it('builds a ClientConfig with every resource, its version, timestamps and NACK state', () => {
    const config = buildClientConfig(client, { scope: 's' });
    expect(config.client_scope).toBe('s');
    expect((config.node as { id?: string }).id).toBe('csds-node');
    const byName = Object.fromEntries(config.generic_xds_configs.map((g) => [g.name, g]));
    expect(Object.keys(byName)).toEqual(['rc-a', 'rc-b', 'rc-late', 'rc-missing']);

    expect(byName['rc-a']).toMatchObject({ type_url: RDS, version_info: 'v2', client_status: Status.ACKED, last_updated: { seconds: 3602, nanos: 0 } });
    expect(byName['rc-a']!.error_state).toBeUndefined();
    expect(decodeMessage<RouteConfiguration>('envoy.config.route.v3.RouteConfiguration', byName['rc-a']!.xds_config!.value).name).toBe('rc-a');

    // NACKed: the accepted v1 stays as xds_config; error_state has the rejected version.
    const b = byName['rc-b']!;
    expect(b).toMatchObject({ version_info: 'v1', client_status: Status.NACKED, last_updated: { seconds: 1, nanos: 0 } });
    expect(b.xds_config?.type_url).toBe(RDS);
    const routeB = decodeMessage<RouteConfiguration>('envoy.config.route.v3.RouteConfiguration', b.xds_config!.value);
    expect(routeB.virtual_hosts[0]!.routes[0]!.match!.prefix).toBe('/');
    expect(b.error_state).toMatchObject({ version_info: 'v2', last_update_attempt: { seconds: 3602, nanos: 0 } });
    expect(b.error_state!.details).toMatch(/RouteConfiguration "rc-b".*regex/);
    const failed = decodeMessage<RouteConfiguration>('envoy.config.route.v3.RouteConfiguration', b.error_state!.failed_configuration!.value);
    expect(failed.virtual_hosts[0]!.routes[0]!.match!.safe_regex!.regex).toBe('([');

    expect(byName['rc-missing']).toMatchObject({ client_status: Status.DOES_NOT_EXIST, version_info: '' });
    expect(byName['rc-missing']!.xds_config).toBeUndefined();
    expect(byName['rc-late']).toMatchObject({ client_status: Status.REQUESTED });
    for (const g of config.generic_xds_configs) expect(g.config_status).toBe(0);
  });

  it('renders proto3 JSON with .proto field names, enum names, RFC 3339 times and typed Anys', () => {
    const json = clientStatusJson({ client, scope: 'mesh' }) as { config: Array<Record<string, any>> };
    expect(json.config).toHaveLength(1);
    const config = json.config[0]!;
    expect(config.client_scope).toBe('mesh');
    expect(config.node).toMatchObject({ id: 'csds-node', metadata: { NAMESPACE: 'ns1' }, user_agent_name: 'meshlet' });
    const b = config.generic_xds_configs.find((g: { name: string }) => g.name === 'rc-b');
    expect(b).toMatchObject({
      type_url: RDS,
      name: 'rc-b',
      version_info: 'v1',
      client_status: 'NACKED',
      last_updated: '1970-01-01T00:00:01.000Z',
      xds_config: { '@type': RDS, name: 'rc-b' },
      error_state: { version_info: 'v2', last_update_attempt: '1970-01-01T01:00:02.000Z', failed_configuration: { '@type': RDS, name: 'rc-b' } },
    });
    expect(b.error_state.details).toMatch(/regex/);
    const camel = clientStatusJson(client, { names: 'json', excludeResourceContents: true }) as { config: Array<Record<string, any>> };
    const a = camel.config[0]!.genericXdsConfigs.find((g: { name: string }) => g.name === 'rc-a');
    expect(a).toMatchObject({ typeUrl: RDS, clientStatus: 'ACKED', versionInfo: 'v2' });
    expect(a.xdsConfig).toBeUndefined();
  });

  it('renders the same JSON text in pieces, one resource each', () => {
    for (const names of ['proto', 'json'] as const) {
      for (const clients of [client, [{ client, scope: 'a' }, { client }], []]) {
        const chunks = [...clientStatusJsonChunks(clients, { names })];
        expect(chunks.join('')).toBe(`${JSON.stringify(clientStatusJson(clients, { names }), null, 2)}\n`);
      }
    }
    expect([...clientStatusJsonChunks(client)].length).toBeGreaterThan(4);
  });

  it('shows resources known only through a wildcard subscription, with the type version', async () => {
    const LDS = typeUrlOf('envoy.config.listener.v3.Listener');
    const listener = (name: string) => ({
      type_url: LDS,
      value: encodeProto3Json('envoy.config.listener.v3.Listener', {
        name,
        api_listener: {
          api_listener: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
            rds: { route_config_name: 'rc', config_source: { ads: {} } },
            http_filters: [{ name: 'router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
          },
        },
      }),
    });
    const wildcardServer = new ScriptedAdsServer();
    const uri = await wildcardServer.start();
    const wildcard = new XdsClient({
      bootstrap: { xds_servers: [{ server_uri: uri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }], node: { id: 'w' } },
      clock: new ManualClock(),
    });
    try {
      let names: ReadonlySet<string> = new Set();
      wildcard.watch(listenerResourceType, '*', { ...quiet, onResourceNames: (n) => (names = n) });
      await wildcardServer.waitForRequest((r) => r.type_url === LDS);
      const ack = wildcardServer.nextRequest((r) => r.type_url === LDS && r.version_info === 'l1');
      wildcardServer.respond(LDS, 'l1', [listener('a:80'), listener('b:80')]);
      await ack;
      expect([...names].sort()).toEqual(['a:80', 'b:80']);
      const configs = buildClientConfig(wildcard).generic_xds_configs;
      expect(configs.map((g) => [g.name, g.version_info, g.client_status])).toEqual([
        ['a:80', 'l1', Status.ACKED],
        ['b:80', 'l1', Status.ACKED],
      ]);
      expect(configs[0]!.last_updated).toBeUndefined();
      expect(configs[0]!.xds_config?.type_url).toBe(LDS);
      expect(wildcard.dump().resources.find((r) => r.name === 'a:80')?.viaWildcard).toBe(true);
    } finally {
      wildcard.close();
      await wildcardServer.stop();
    }
  });

  it('serves FetchClientStatus and StreamClientStatus to a grpc-js client', async () => {
    const Client = grpc.makeGenericClientConstructor(csdsServiceDefinition, 'ClientStatusDiscoveryService');
    const stub = new Client(csdsAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    try {
      const fetched = await new Promise<ClientStatusResponse>((resolve, reject) =>
        stub.FetchClientStatus({ node_matchers: [], exclude_resource_contents: false }, (e: Error | null, r: ClientStatusResponse) => (e ? reject(e) : resolve(r))),
      );
      expect(fetched.config).toHaveLength(1);
      expect(fetched.config[0]!.client_scope).toBe('test-scope');
      expect(fetched.config[0]!.node?.id).toBe('csds-node');
      const b = fetched.config[0]!.generic_xds_configs.find((g) => g.name === 'rc-b')!;
      expect(b.client_status).toBe(Status.NACKED);
      expect(b.version_info).toBe('v1');
      expect(b.error_state?.version_info).toBe('v2');
      expect(b.error_state?.details).toMatch(/regex/);
      expect(decodeMessage<RouteConfiguration>('envoy.config.route.v3.RouteConfiguration', b.xds_config!.value).name).toBe('rc-b');

      const call = stub.StreamClientStatus() as grpc.ClientDuplexStream<unknown, ClientStatusResponse>;
      const responses: ClientStatusResponse[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on('data', (r: ClientStatusResponse) => responses.push(r));
        call.on('end', resolve);
        call.on('error', reject);
      });
      call.write({ node_matchers: [], exclude_resource_contents: false });
      call.write({ node_matchers: [], exclude_resource_contents: true });
      call.end();
      await done;
      expect(responses).toHaveLength(2);
      const first = responses[0]!.config[0]!.generic_xds_configs.find((g) => g.name === 'rc-a')!;
      const second = responses[1]!.config[0]!.generic_xds_configs.find((g) => g.name === 'rc-a')!;
      expect(first.client_status).toBe(Status.ACKED);
      expect(first.xds_config?.type_url).toBe(RDS);
      expect(second.client_status).toBe(Status.ACKED);
      expect(second.xds_config ?? null).toBeNull();
    } finally {
      stub.close();
    }
  });
});
