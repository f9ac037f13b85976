// Protocol tests of the SotW client against a scripted ADS server on loopback. The
// resource types here are small test decoders over real Envoy messages, so these tests
// do not depend on src/resources (the repo-root test/xds-client.test.ts uses the real ones
// with @meshlet/control-plane).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ExponentialBackoff } from '../src/backoff.js';
import { MeshletError } from '../src/errors.js';
import type { envoy_config_cluster_v3_Cluster, envoy_config_route_v3_RouteConfiguration } from '../src/generated/pb.js';
import { decodeMessage, encodeMessage, typeUrlOf } from '../src/proto.js';
import { parseResourceName } from '../src/resource-names.js';
import type { AnyMessage, XdsResourceType } from '../src/resource-type.js';
import type { XdsWatcher } from '../src/watchers.js';
import { XdsClient, type XdsClientOptions } from '../src/xds-client.js';
import { ManualClock, ScriptedAdsServer, type RecordedRequest } from './helpers/ads-server.js';

const CDS = typeUrlOf('envoy.config.cluster.v3.Cluster');
const RDS = typeUrlOf('envoy.config.route.v3.RouteConfiguration');

interface TestCluster {
  name: string;
  altStatName: string;
}

let clusterDecodes = 0;
// A Cluster is invalid when its alt_stat_name starts with "bad:"; the rest is the reason.
const clusterType: XdsResourceType<TestCluster> = {
  typeUrl: CDS,
  shortName: 'Cluster',
  allResourcesRequiredInSotW: true,
  decode(_context, resource: AnyMessage) {
    clusterDecodes += 1;
    let c: envoy_config_cluster_v3_Cluster;
    try {
      c = decodeMessage('envoy.config.cluster.v3.Cluster', resource.value);
    } catch (e) {
      return { error: `cannot decode: ${(e as Error).message}` };
    }
    if (c.alt_stat_name.startsWith('bad:')) return { name: c.name, error: `Cluster.alt_stat_name: ${c.alt_stat_name.slice(4)}` };
    return { name: c.name, value: { name: c.name, altStatName: c.alt_stat_name } };
  },
};

const routeType: XdsResourceType<string> = {
  typeUrl: RDS,
  shortName: 'RouteConfiguration',
  allResourcesRequiredInSotW: false,
  decode(_context, resource) {
    const r = decodeMessage<envoy_config_route_v3_RouteConfiguration>('envoy.config.route.v3.RouteConfiguration', resource.value);
    return { name: r.name, value: r.name };
  },
};

function cluster(name: string, altStatName = ''): { type_url: string; value: Uint8Array } {
  return { type_url: CDS, value: encodeMessage('envoy.config.cluster.v3.Cluster', { name, alt_stat_name: altStatName }) };
}

function route(name: string): { type_url: string; value: Uint8Array } {
  return { type_url: RDS, value: encodeMessage('envoy.config.route.v3.RouteConfiguration', { name }) };
}

function wrapped(inner: { type_url: string; value: Uint8Array }, name: string): { type_url: string; value: Uint8Array } {
  return {
    type_url: typeUrlOf('envoy.service.discovery.v3.Resource'),
    value: encodeMessage('envoy.service.discovery.v3.Resource', { name, version: '1', resource: inner }),
  };
}

type Event = { kind: 'changed'; value: unknown } | { kind: 'error'; error: MeshletError } | { kind: 'dne' };

class RecordingWatcher<T> implements XdsWatcher<T> {
  readonly events: Event[] = [];
  #waiters: Array<{ n: number; resolve: () => void }> = [];
  onChanged(value: T): void {
    this.#push({ kind: 'changed', value });
  }
  onError(error: MeshletError): void {
    this.#push({ kind: 'error', error });
  }
  onDoesNotExist(): void {
    this.#push({ kind: 'dne' });
  }
  #push(e: Event): void {
    this.events.push(e);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.events.length < w.n) return true;
      w.resolve();
      return false;
    });
  }
  /** Resolves once `n` events in all have arrived. */
  waitFor(n: number, timeoutMs = 5000): Promise<void> {
    if (this.events.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${n} events; have ${JSON.stringify(this.events)}`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
    });
  }
  get last(): Event | undefined {
    return this.events.at(-1);
  }
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  options: Partial<XdsClientOptions> & { serverFeatures?: string[]; address?: string } = {},
): Promise<{ server: ScriptedAdsServer; client: XdsClient; clock: ManualClock }> {
  const server = new ScriptedAdsServer();
  const uri = await server.start(options.address);
  cleanups.push(() => server.stop());
  const clock = new ManualClock();
  const client = new XdsClient({
    bootstrap: {
      xds_servers: [{ server_uri: uri, channel_creds: [{ type: 'insecure' }], server_features: options.serverFeatures ?? ['xds_v3'] }],
      node: { id: 'test-node', cluster: 'test', locality: { zone: 'z1' }, metadata: { GENERATOR: 'grpc', N: 2 } },
    },
    clock,
    ...options,
  });
  cleanups.push(() => client.close());
  return { server, client, clock };
}

function isType(typeUrl: string) {
  return (r: RecordedRequest) => r.type_url === typeUrl;
}

describe('XdsClient (SotW over a scripted ADS server)', () => {
  it('subscribes, delivers, and ACKs with version and nonce; node on the first request only', async () => {
    const { server, client } = await setup();
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w);
    const first = await server.waitForRequest(isType(CDS));
    expect(first.resource_names).toEqual(['a']);
    expect(first.version_info).toBe('');
    expect(first.response_nonce).toBe('');
    expect(first.node?.id).toBe('test-node');
    expect(first.node?.user_agent_name).toBe('meshlet');
    expect(first.node?.client_features).toContain('xds.config.resource-in-sotw');
    expect(first.node?.locality?.zone).toBe('z1');
    expect(first.node?.metadata?.fields.GENERATOR?.stringValue).toBe('grpc');

    const ackWait = server.nextRequest(isType(CDS));
    const nonce = server.respond(CDS, 'v1', [cluster('a', 'stat-a')]);
    await w.waitFor(1);
    expect(w.last).toEqual({ kind: 'changed', value: { name: 'a', altStatName: 'stat-a' } });
    const ack = await ackWait;
    expect(ack).toMatchObject({ version_info: 'v1', response_nonce: nonce, resource_names: ['a'] });
    expect(ack.error_detail ?? null).toBeNull();
    expect(ack.node ?? null).toBeNull();

    const dump = client.dump();
    expect(dump.types).toEqual([{ serverUri: expect.any(String), typeUrl: CDS, versionInfo: 'v1', nonce }]);
    expect(dump.resources).toEqual([
      expect.objectContaining({ name: 'a', state: 'acked', version: 'v1', value: { name: 'a', altStatName: 'stat-a' }, raw: expect.objectContaining({ type_url: CDS }) }),
    ]);
  });

  it('batches every name added in one turn into one request (1,000 clusters, one CDS request)', async () => {
    const { server, client } = await setup();
    const names = Array.from({ length: 1000 }, (_, i) => `outbound|80||svc-${i}.ns.svc.cluster.local`);
    for (const n of names) client.watch(clusterType, n, new RecordingWatcher());
    const req = await server.waitForRequest(isType(CDS));
    expect(req.resource_names).toEqual(names);
    // Nothing else follows for the subscription: wait for a later, unrelated request as a fence.
    client.watch(routeType, 'fence', new RecordingWatcher());
    await server.waitForRequest(isType(RDS));
    expect(server.requests.filter(isType(CDS))).toHaveLength(1);
  });

  it('NACKs invalid resources with every reason, applies the valid ones, keeps the last good value', async () => {
    const { server, client } = await setup();
    const wa = new RecordingWatcher<TestCluster>();
    const wb = new RecordingWatcher<TestCluster>();
    const wc = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', wa);
    client.watch(clusterType, 'b', wb);
    client.watch(clusterType, 'c', wc);
    await server.waitForRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('a', 'a1'), cluster('b', 'b1')]);
    await server.waitForRequest((r) => r.version_info === 'v1');
    await wa.waitFor(1);
    await wb.waitFor(1);

    const nackWait = server.nextRequest(isType(CDS));
    const nonce = server.respond(CDS, 'v2', [cluster('a', 'a2'), cluster('b', 'bad:must not be "x"'), cluster('c', 'bad:also wrong')]);
    const nack = await nackWait;
    expect(nack.version_info).toBe('v1'); // the last accepted version
    expect(nack.response_nonce).toBe(nonce);
    expect(nack.error_detail?.code).toBe(3);
    expect(nack.error_detail?.message).toBe(
      'Cluster "b": Cluster.alt_stat_name: must not be "x"; Cluster "c": Cluster.alt_stat_name: also wrong',
    );
    // a's new value applied although its response was NACKed (gRFC A46).
    await wa.waitFor(2);
    expect(wa.last).toEqual({ kind: 'changed', value: { name: 'a', altStatName: 'a2' } });
    await wb.waitFor(2);
    expect(wb.last).toMatchObject({ kind: 'error', error: { code: 'MESHLET_XDS_RESOURCE_INVALID' } });
    expect((wb.last as { error: Error }).error.message).toContain('Cluster "b": Cluster.alt_stat_name');
    await wc.waitFor(1);
    expect(wc.last?.kind).toBe('error');

    const b = client.dump().resources.find((r) => r.name === 'b')!;
    expect(b).toMatchObject({ state: 'nacked', version: 'v1', value: { name: 'b', altStatName: 'b1' }, error: { version: 'v2' } });
    expect(client.dump().types[0]).toMatchObject({ versionInfo: 'v1', nonce });

    // The same bad bytes resent: NACKed again, but the watcher is not told twice.
    const again = server.nextRequest(isType(CDS));
    server.respond(CDS, 'v3', [cluster('a', 'a2'), cluster('b', 'bad:must not be "x"'), cluster('c', 'bad:also wrong')]);
    expect((await again).error_detail?.message).toContain('Cluster "b"');
    // Fixed: ACKed, b changes.
    const ack = server.nextRequest(isType(CDS));
    server.respond(CDS, 'v4', [cluster('a', 'a2'), cluster('b', 'b4'), cluster('c', 'c4')]);
    const fixed = await ack;
    expect(fixed.version_info).toBe('v4');
    expect(fixed.error_detail ?? null).toBeNull();
    await wb.waitFor(3);
    expect(wb.events.map((e) => e.kind)).toEqual(['changed', 'error', 'changed']);
    expect(client.dump().resources.find((r) => r.name === 'b')).toMatchObject({ state: 'acked', version: 'v4' });
  });

  it('NACKs a name sent twice in one response, and bytes it cannot even name', async () => {
    const { server, client } = await setup();
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'dup', w);
    await server.waitForRequest(isType(CDS));
    const nackWait = server.nextRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('dup', 'one'), cluster('dup', 'two'), { type_url: CDS, value: new Uint8Array([0xff, 0xff]) }]);
    const nack = await nackWait;
    expect(nack.error_detail?.message).toMatch(/^Cluster "dup": duplicate resource name in one response; Cluster \(resource 2\): cannot decode/);
    await w.waitFor(1);
    expect(w.last?.kind).toBe('error');
  });

  it('unwraps envoy.service.discovery.v3.Resource and skips decoding bytes it has already decoded', async () => {
    const { server, client } = await setup();
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'w', w);
    client.watch(clusterType, 'x', new RecordingWatcher());
    await server.waitForRequest(isType(CDS));
    const before = clusterDecodes;
    server.respond(CDS, 'v1', [wrapped(cluster('w', 'ww'), 'w'), cluster('x')]);
    await w.waitFor(1);
    expect(w.last).toEqual({ kind: 'changed', value: { name: 'w', altStatName: 'ww' } });
    expect(clusterDecodes - before).toBe(2);
    const ack = server.nextRequest((r) => r.type_url === CDS && r.version_info === 'v2');
    server.respond(CDS, 'v2', [wrapped(cluster('w', 'ww'), 'w'), cluster('x')]);
    await ack;
    expect(clusterDecodes - before).toBe(2); // SotW resend of the same bytes: no decode
    expect(w.events).toHaveLength(1); // and no spurious change
    expect(client.dump().resources.find((r) => r.name === 'w')?.version).toBe('v2');
  });

  it('deletes LDS/CDS resources missing from a response, never RDS/EDS ones', async () => {
    const { server, client } = await setup();
    const wc = new RecordingWatcher<TestCluster>();
    const wr = new RecordingWatcher<string>();
    client.watch(clusterType, 'gone', wc);
    client.watch(clusterType, 'stays', new RecordingWatcher());
    client.watch(routeType, 'r', wr);
    await server.waitForRequest(isType(RDS));
    await server.waitForRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('gone'), cluster('stays')]);
    server.respond(RDS, 'v1', [route('r')]);
    await wc.waitFor(1);
    await wr.waitFor(1);
    server.respond(CDS, 'v2', [cluster('stays')]);
    const ack = server.nextRequest((r) => r.type_url === RDS && r.version_info === 'v2');
    server.respond(RDS, 'v2', []);
    await wc.waitFor(2);
    expect(wc.last).toEqual({ kind: 'dne' });
    await ack;
    expect(wr.events).toHaveLength(1);
    const states = Object.fromEntries(client.dump().resources.map((r) => [r.name, r.state]));
    expect(states).toEqual({ gone: 'does_not_exist', stays: 'acked', r: 'acked' });
  });

  it('keeps resources missing from a response when the server has ignore_resource_deletion (gRFC A53)', async () => {
    const { server, client } = await setup({ serverFeatures: ['xds_v3', 'ignore_resource_deletion'] });
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'kept', w);
    await server.waitForRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('kept')]);
    await w.waitFor(1);
    const ack = server.nextRequest((r) => r.version_info === 'v2');
    server.respond(CDS, 'v2', []);
    await ack;
    expect(w.events).toHaveLength(1);
    expect(client.dump().resources[0]).toMatchObject({ name: 'kept', state: 'acked' });
  });

  it('does-not-exist: the timer starts when the request is sent and fires after the timeout', async () => {
    const { server, client, clock } = await setup({ resourceDoesNotExistTimeoutMs: 15_000 });
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'missing', w);
    expect(clock.pendingDelays()).toEqual([]); // not sent yet: no timer
    await server.waitForRequest(isType(CDS));
    expect(clock.pendingDelays()).toEqual([15_000]);
    clock.advance(14_999);
    expect(w.events).toEqual([]);
    clock.advance(1);
    expect(w.events).toEqual([{ kind: 'dne' }]);
    expect(client.dump().resources[0]).toMatchObject({ state: 'does_not_exist' });
    // It may appear later.
    server.respond(CDS, 'v1', [cluster('missing')]);
    await w.waitFor(2);
    expect(w.last).toMatchObject({ kind: 'changed' });
  });

  it('a late watcher of a cached resource gets the cached state', async () => {
    const { server, client } = await setup();
    const w1 = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w1);
    await server.waitForRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('a', 's')]);
    await w1.waitFor(1);
    const w2 = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w2);
    await w2.waitFor(1);
    expect(w2.last).toEqual({ kind: 'changed', value: { name: 'a', altStatName: 's' } });
  });

  it('a cancel and re-watch of one name in one turn keeps the cache and sends nothing', async () => {
    const { server, client } = await setup();
    const cancel = client.watch(clusterType, 'a', new RecordingWatcher());
    await server.waitForRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('a', 's')]);
    await server.waitForRequest((r) => r.version_info === 'v1');
    const count = server.requests.length;
    cancel();
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w);
    await w.waitFor(1);
    expect(w.last).toEqual({ kind: 'changed', value: { name: 'a', altStatName: 's' } });
    // A fence on another type: nothing was sent for CDS in between.
    client.watch(routeType, 'fence', new RecordingWatcher());
    await server.waitForRequest(isType(RDS));
    expect(server.requests.slice(count).map((r) => r.type_url)).toEqual([RDS]);
  });

  it('unsubscribes: the remaining names, then an empty list', async () => {
    const { server, client } = await setup();
    const cancelA = client.watch(clusterType, 'a', new RecordingWatcher());
    const cancelB = client.watch(clusterType, 'b', new RecordingWatcher());
    await server.waitForRequest(isType(CDS));
    const n1 = server.nextRequest(isType(CDS));
    cancelA();
    cancelA(); // idempotent
    expect((await n1).resource_names).toEqual(['b']);
    const n2 = server.nextRequest(isType(CDS));
    cancelB();
    expect((await n2).resource_names).toEqual([]);
  });

  it('after a stream restart: cache kept, subscriptions resent with last versions and no nonce, timers only for uncached names', async () => {
    const { server, client, clock } = await setup();
    const wa = new RecordingWatcher<TestCluster>();
    const wb = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', wa);
    client.watch(clusterType, 'b', wb);
    await server.waitForRequest(isType(CDS));
    const ack = server.nextRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('a', 'a1')]);
    await ack;
    expect(clock.pendingDelays()).toEqual([15_000]); // b's timer still running

    server.endStream();
    // A stream that had a response restarts at once (no backoff) and its timers stop.
    await waitUntil(() => clock.pendingDelays().includes(0));
    expect(clock.pendingDelays()).toEqual([0]);
    clock.advance(0);
    const resent = await server.waitForRequest((r) => r.stream === 2);
    expect(resent).toMatchObject({ type_url: CDS, version_info: 'v1', response_nonce: '', resource_names: ['a', 'b'] });
    expect(resent.node?.id).toBe('test-node'); // node again on the new stream's first request
    expect(clock.pendingDelays()).toEqual([15_000]); // only b, which has no value
    clock.advance(15_000);
    expect(wa.events).toEqual([{ kind: 'changed', value: { name: 'a', altStatName: 'a1' } }]);
    expect(wb.events).toEqual([{ kind: 'dne' }]);
    expect(client.dump().resources.find((r) => r.name === 'a')).toMatchObject({ state: 'acked', version: 'v1' });
  });

  it('reconnects with gRPC connection backoff (1 s, ×1.6, jitter 0.2, max 120 s), reset by a response', async () => {
    // A port with nothing listening: take one, then free it.
    const probe = new ScriptedAdsServer();
    const uri = await probe.start();
    await probe.stop();
    const clock = new ManualClock();
    const client = new XdsClient({
      bootstrap: { xds_servers: [{ server_uri: uri, channel_creds: [{ type: 'insecure' }] }] },
      clock,
      backoff: { random: () => 1 }, // jitter at its upper bound: +20 %
    });
    cleanups.push(() => client.close());
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w);
    const delays: number[] = [];
    // Only backoff timers: a request that never reached a server starts no does-not-exist
    // timer (gRFC A57), so the watcher hears of the outage, not of a missing resource.
    const backoffTimers = () => clock.pendingDelays();
    for (let i = 0; i < 3; i++) {
      await waitUntil(() => backoffTimers().length > 0);
      expect(backoffTimers()).toHaveLength(1);
      delays.push(backoffTimers()[0]!);
      clock.advance(backoffTimers()[0]!);
    }
    expect(delays).toEqual([1200, 1920, 3072]);
    // Each failed stream is an ambient error for the watcher; no does-not-exist.
    await w.waitFor(3);
    expect(w.events.every((e) => e.kind === 'error' && e.error.code === 'MESHLET_XDS_UNAVAILABLE')).toBe(true);
  });

  it('routes xdstp:// names to their authority and fails names of unknown authorities', async () => {
    const top = new ScriptedAdsServer();
    const auth = new ScriptedAdsServer();
    const topUri = await top.start();
    const authUri = await auth.start();
    cleanups.push(() => top.stop(), () => auth.stop());
    const client = new XdsClient({
      bootstrap: {
        xds_servers: [{ server_uri: topUri, channel_creds: [{ type: 'insecure' }] }],
        authorities: {
          'xds.example.com': { xds_servers: [{ server_uri: authUri, channel_creds: [{ type: 'insecure' }] }] },
          'uses-top': {},
        },
      },
    });
    cleanups.push(() => client.close());
    const name = 'xdstp://xds.example.com/envoy.config.cluster.v3.Cluster/c1?b=2&a=1';
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, name, w);
    client.watch(clusterType, 'xdstp://uses-top/envoy.config.cluster.v3.Cluster/c2', new RecordingWatcher());
    const req = await auth.waitForRequest(isType(CDS));
    expect(req.resource_names).toEqual(['xdstp://xds.example.com/envoy.config.cluster.v3.Cluster/c1?a=1&b=2']);
    expect((await top.waitForRequest(isType(CDS))).resource_names).toEqual(['xdstp://uses-top/envoy.config.cluster.v3.Cluster/c2']);
    // The server may spell the name with its parameters in another order.
    auth.respond(CDS, 'v1', [cluster('xdstp://xds.example.com/envoy.config.cluster.v3.Cluster/c1?a=1&b=2')]);
    await w.waitFor(1);
    expect(w.last?.kind).toBe('changed');

    const unknown = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'xdstp://nowhere/envoy.config.cluster.v3.Cluster/x', unknown);
    await unknown.waitFor(1);
    expect(unknown.last).toMatchObject({ kind: 'error', error: { message: expect.stringContaining('"nowhere"') } });
  });

  it('talks to a server on a unix: socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlet-ads-'));
    const { server, client } = await setup({ address: `unix:${join(dir, 'xds.sock')}` });
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'u', w);
    await server.waitForRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('u')]);
    await w.waitFor(1);
    expect(w.last?.kind).toBe('changed');
  });

  it('connects with tls channel credentials (gRFC A65): CA, certificate and key files, mutual TLS', async () => {
    const certs = fileURLToPath(new URL('../../../../shared/fixtures/istio/certs/', import.meta.url));
    const server = new ScriptedAdsServer();
    const read = (f: string) => readFileSync(join(certs, f));
    const uri = await server.start(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(read('root-cert.pem'), [{ cert_chain: read('cert-chain.pem'), private_key: read('key.pem') }], true),
    );
    cleanups.push(() => server.stop());
    const client = new XdsClient({
      bootstrap: {
        xds_servers: [
          {
            server_uri: uri,
            channel_creds: [
              {
                type: 'tls',
                config: {
                  ca_certificate_file: join(certs, 'root-cert.pem'),
                  certificate_file: join(certs, 'cert-chain.pem'),
                  private_key_file: join(certs, 'key.pem'),
                },
              },
            ],
          },
        ],
      },
      // The fixture certificate names a workload, not 127.0.0.1.
      connection: { tlsServerName: 'default.default.svc.cluster.local' },
    });
    cleanups.push(() => client.close());
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'tls', w);
    await server.waitForRequest(isType(CDS));
    server.respond(CDS, 'v1', [cluster('tls')]);
    await w.waitFor(1);
    expect(w.last?.kind).toBe('changed');
  });

  it('a `*` watch subscribes to the wildcard (as the legacy empty list) and sees every resource and every response\'s names', async () => {
    const { server, client } = await setup();
    const w = new RecordingWatcher<TestCluster>();
    const namesSeen: string[][] = [];
    client.watch(clusterType, '*', Object.assign(w, { onResourceNames: (names: ReadonlySet<string>) => namesSeen.push([...names]) }));
    expect((await server.waitForRequest(isType(CDS))).resource_names).toEqual([]);
    server.respond(CDS, 'v1', [cluster('p'), cluster('q')]);
    await w.waitFor(2);
    expect(w.events.map((e) => (e.kind === 'changed' ? (e.value as TestCluster).name : e.kind))).toEqual(['p', 'q']);
    expect(namesSeen).toEqual([['p', 'q']]);
    // A named watch besides it: '*' goes out as a name again, beside the other.
    client.watch(clusterType, 'r', new RecordingWatcher());
    const next = await server.waitForRequest((r) => isType(CDS)(r) && r.resource_names.includes('r'));
    expect([...next.resource_names].sort()).toEqual(['*', 'r']);
  });

  it('close() ends the stream and every timer', async () => {
    const { server, client, clock } = await setup();
    client.watch(clusterType, 'a', new RecordingWatcher());
    await server.waitForRequest(isType(CDS));
    expect(clock.timers.size).toBe(1);
    client.close();
    expect(clock.timers.size).toBe(0);
    expect(() => client.watch(clusterType, 'b', new RecordingWatcher())).toThrow(MeshletError);
  });
});

/** A plain HTTP/2 server on loopback whose streams `serve` answers, for cases no ADS server would make. */
async function rawHttp2Server(
  serve: (stream: import('node:http2').ServerHttp2Stream, headers: Record<string, unknown>) => void,
): Promise<{ uri: string; close: () => Promise<void> }> {
  const { createServer } = await import('node:http2');
  const server = createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    serve(stream, headers);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { uri: `127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

function bootstrapAt(uri: string) {
  return { xds_servers: [{ server_uri: uri, channel_creds: [{ type: 'insecure' }] }] };
}

describe('XdsClient options', () => {
  const bootstrap = { xds_servers: [{ server_uri: '127.0.0.1:1', channel_creds: [{ type: 'insecure' }] }] };
  it('are validated in the constructor, naming the option', () => {
    expect(() => new XdsClient({ bootstrap, backoff: { jitter: -1 } })).toThrow(/backoff\.jitter/);
    expect(() => new XdsClient({ bootstrap, resourceDoesNotExistTimeoutMs: -5 })).toThrow(/resourceDoesNotExistTimeoutMs/);
    expect(() => new XdsClient({ bootstrap, clock: {} as never })).toThrow(/clock/);
    // grpc-js's channel options were this option before the ADS stream left grpc-js.
    expect(() => new XdsClient({ bootstrap, channelOptions: { 'grpc.ssl_target_name_override': 'x' } } as never)).toThrow(
      /channelOptions: the xDS client no longer uses grpc-js/,
    );
    expect(() => new XdsClient({ bootstrap, connection: { servername: 'x' } as never })).toThrow(/connection\.servername: unknown option/);
    expect(() => new XdsClient({ bootstrap, connection: { tlsServerName: '' } })).toThrow(/connection\.tlsServerName: expected a non-empty string/);
    expect(() => new XdsClient({ bootstrap, connection: { keepaliveTimeMs: 0 } })).toThrow(/connection\.keepaliveTimeMs: expected a positive number of ms, got 0/);
  });
  it('start no does-not-exist timer until the server speaks HTTP/2, and let a silent one go on close', async () => {
    // Accepts TCP and says nothing: a stuck server, or a proxy with no upstream.
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.resume(); // read (and drop) what arrives, so the client's close is seen
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const client = new XdsClient({ bootstrap: bootstrapAt(`127.0.0.1:${port}`), resourceDoesNotExistTimeoutMs: 50 });
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w);
    await new Promise((r) => setTimeout(r, 300));
    expect(sockets).toHaveLength(1);
    expect(w.events).toEqual([]); // the request never reached a server: no does-not-exist (A57)
    const gone = new Promise((r) => sockets[0]!.once('close', r));
    client.close();
    await gone; // the connection is let go at once, not left waiting for the silent peer
    await new Promise((r) => silent.close(r));
  });
  it('start a does-not-exist timer for a name sent on a stream whose server has sent GOAWAY', async () => {
    // A server draining (a GOAWAY, its open stream left to finish) still takes requests on it.
    const { uri, close } = await rawHttp2Server((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.session?.goaway(0, stream.id);
    });
    const client = new XdsClient({ bootstrap: bootstrapAt(uri), resourceDoesNotExistTimeoutMs: 50 });
    const wa = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', wa);
    await wa.waitFor(1);
    const wb = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'b', wb);
    await wb.waitFor(1);
    expect(wb.events).toEqual([{ kind: 'dne' }]);
    client.close();
    await close();
  });
  it('close a connection whose keepalive PING goes unanswered (gRFC A8), and say so', async () => {
    const upstream = await rawHttp2Server((stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc' }));
    // A TCP proxy that can go silent both ways, as a connection a NAT forgot does.
    const { createServer, connect } = await import('node:net');
    let cut = false;
    const [host, port] = upstream.uri.split(':');
    const proxy = createServer((c) => {
      const u = connect({ host: host!, port: Number(port) });
      c.on('data', (d) => void (cut || u.write(d)));
      u.on('data', (d) => void (cut || c.write(d)));
      for (const [a, b] of [[c, u], [u, c]] as const) {
        a.on('error', () => {});
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyPort = (proxy.address() as { port: number }).port;
    const client = new XdsClient({
      bootstrap: bootstrapAt(`127.0.0.1:${proxyPort}`),
      connection: { keepaliveTimeMs: 50, keepaliveTimeoutMs: 1000 },
      backoff: { initialMs: 5_000, maxMs: 5_000 },
    });
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w);
    await new Promise((r) => setTimeout(r, 300)); // several PINGs answered
    expect(w.events).toEqual([]);
    cut = true;
    await w.waitFor(1, 5000);
    expect(w.events[0]).toMatchObject({ kind: 'error', error: { code: 'MESHLET_XDS_UNAVAILABLE' } });
    expect((w.events[0] as { error: Error }).error.message).toMatch(/keepalive: no PING ack within 1000 ms/);
    client.close();
    await new Promise((r) => proxy.close(r));
    await upstream.close();
  });
  it('restart the ADS stream when a response does not decode, and report it to watchers', async () => {
    let streams = 0;
    const { uri, close } = await rawHttp2Server((stream) => {
      streams++;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // Field 1 (version_info) claims 255 bytes and has none: not a DiscoveryResponse.
      stream.write(Buffer.from([0, 0, 0, 0, 2, 0x0a, 0xff]));
    });
    const client = new XdsClient({ bootstrap: bootstrapAt(uri), backoff: { initialMs: 10, maxMs: 20 } });
    const w = new RecordingWatcher<TestCluster>();
    client.watch(clusterType, 'a', w);
    await w.waitFor(2);
    expect(w.events[0]).toMatchObject({ kind: 'error', error: { code: 'MESHLET_XDS_UNAVAILABLE' } });
    expect((w.events[0] as { error: Error }).error.message).toMatch(/ADS stream ended: INTERNAL: cannot decode a DiscoveryResponse/);
    expect(streams).toBeGreaterThanOrEqual(2); // a new stream after the backoff
    client.close();
    await close();
  });
  it('send connection.authority as the ADS stream\'s :authority', async () => {
    let seen!: (headers: Record<string, unknown>) => void;
    const headers = new Promise<Record<string, unknown>>((resolve) => (seen = resolve));
    const { uri, close } = await rawHttp2Server((stream, h) => {
      seen(h);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
    });
    const client = new XdsClient({ bootstrap: bootstrapAt(`dns:///${uri}`), connection: { authority: 'istiod.istio-system.svc:15010' } });
    client.watch(clusterType, 'a', new RecordingWatcher());
    expect(await headers).toMatchObject({
      ':authority': 'istiod.istio-system.svc:15010',
      ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      'content-type': 'application/grpc',
    });
    client.close();
    await close();
  });
  it('load the bootstrap from the environment when none is given', () => {
    const client = new XdsClient({ env: { GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap) } });
    expect(client.bootstrap.xdsServers[0]?.serverUri).toBe('127.0.0.1:1');
    client.close();
    expect(() => new XdsClient({ env: {} })).toThrow(expect.objectContaining({ code: 'MESHLET_BOOTSTRAP_NOT_FOUND' }));
  });
});

describe('ExponentialBackoff', () => {
  it('follows the connection-backoff sequence and caps at max', () => {
    const b = new ExponentialBackoff({ random: () => 0.5 });
    const seq = Array.from({ length: 13 }, () => Math.round(b.next()));
    expect(seq.slice(0, 5)).toEqual([1000, 1600, 2560, 4096, 6554]);
    expect(seq.at(-1)).toBe(120_000);
    b.reset();
    expect(b.next()).toBe(1000);
  });

  it('validates its options, naming them', () => {
    expect(() => new ExponentialBackoff({ initialMs: 0 })).toThrow(/backoff\.initialMs/);
    expect(() => new ExponentialBackoff({ multiplier: 0.5 })).toThrow(/backoff\.multiplier/);
    expect(() => new ExponentialBackoff({ jitter: 2 })).toThrow(/backoff\.jitter/);
    expect(() => new ExponentialBackoff({ initialMs: 10, maxMs: 5 })).toThrow(/backoff\.maxMs/);
  });

  it('jitters by ±20 %', () => {
    expect(new ExponentialBackoff({ random: () => 0 }).next()).toBe(800);
    expect(new ExponentialBackoff({ random: () => 1 }).next()).toBe(1200);
  });
});

describe('resource names', () => {
  it('canonicalizes xdstp:// names and leaves old-style names alone', () => {
    expect(parseResourceName('outbound|80||a.b')).toEqual({ key: 'outbound|80||a.b' });
    expect(parseResourceName('xdstp://auth.example/envoy.config.listener.v3.Listener/x/y?z=1&a=2')).toEqual({
      authority: 'auth.example',
      key: 'xdstp://auth.example/envoy.config.listener.v3.Listener/x/y?a=2&z=1',
    });
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
