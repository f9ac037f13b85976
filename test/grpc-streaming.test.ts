// Streaming calls through @meshlet/grpc: server streaming and bidirectional streams are routed
// and balanced like unary calls, with telemetry on (its filter counts every message) and a
// fault filter delaying the start of the stream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URLS } from '@meshlet/xds-client';
import { edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { STREAM_SERVICE, startStreamBackend } from './helpers/grpc-backends.js';
import { startGrpcMesh, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

const TARGET = 'streams.grpc.test:8080';
const C = 'outbound|8080||streams.grpc.test';
const FAULT = 'envoy.filters.http.fault';
const HTTP_FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

type StreamClient = grpc.Client & {
  Count(req: Buffer): grpc.ClientReadableStream<Buffer>;
  Chat(): grpc.ClientDuplexStream<Buffer, Buffer>;
};

describe('@meshlet/grpc streaming calls', () => {
  let env: GrpcMeshEnv;
  let s1: Awaited<ReturnType<typeof startStreamBackend>>;
  let client: StreamClient;
  const log: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    s1 = await startStreamBackend('s1');
    env = await startGrpcMesh(
      {
        [TYPE_URLS.listener]: [
          listener(TARGET, 'rc-streams', {
            http_filters: [
              { name: FAULT, typed_config: { '@type': HTTP_FAULT, delay: { fixed_delay: '0.01s', percentage: { numerator: 100, denominator: 'HUNDRED' } } } },
              { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
            ],
          }),
        ],
        [TYPE_URLS.routeConfiguration]: [
          {
            '@type': TYPE_URLS.routeConfiguration,
            name: 'rc-streams',
            virtual_hosts: [{ name: 'streams', domains: [TARGET], routes: [{ match: { prefix: '/meshlet.test.StreamService/' }, route: { cluster: C } }] }],
          },
        ],
        [TYPE_URLS.cluster]: [edsCluster(C)],
        [TYPE_URLS.clusterLoadAssignment]: [endpoints(C, [['127.0.0.1', s1.port]])],
      },
      { telemetry: { accessLog: { write: (line: string) => log.push(JSON.parse(line) as Record<string, unknown>) } } },
    );
    const Ctor = grpc.makeGenericClientConstructor(STREAM_SERVICE, 'StreamService');
    client = new Ctor(`${env.scheme}:///${TARGET}`, grpc.credentials.createInsecure()) as unknown as StreamClient;
  });

  afterAll(async () => {
    client?.close();
    await env?.close();
    await s1?.close();
  });

  it('streams server replies', async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.Count(Buffer.from('5'));
      call.on('data', (m: Buffer) => got.push(m.toString()));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    expect(got).toEqual(['s1:0', 's1:1', 's1:2', 's1:3', 's1:4']);
  });

  it('carries a bidirectional stream, and logs its messages', async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.Chat();
      call.on('data', (m: Buffer) => {
        got.push(m.toString());
        if (got.length === 3) call.end();
      });
      call.on('error', reject);
      call.on('status', () => resolve());
      for (const m of ['a', 'b', 'c']) call.write(Buffer.from(m));
    });
    expect(got).toEqual(['s1:a', 's1:b', 's1:c']);
    await new Promise((r) => setTimeout(r, 20));
    const line = log.find((l) => l['path'] === '/meshlet.test.StreamService/Chat');
    expect(line).toMatchObject({ grpc_status: 0, response_flags: 'DI', upstream_cluster: C });
    expect(line!['bytes_received']).toBe(3);
  });
});
