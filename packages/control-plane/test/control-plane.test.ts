import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { TYPE_URLS, protoType } from '@meshlet/xds-client/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane } from '../src/index.js';
import { AdsTestClient, namesIn } from './ads-test-client.js';

const LDS = TYPE_URLS.listener;
const RDS = TYPE_URLS.routeConfiguration;
const CDS = TYPE_URLS.cluster;
const EDS = TYPE_URLS.clusterLoadAssignment;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(options: ConstructorParameters<typeof ControlPlane>[0] = {}) {
  const cp = new ControlPlane(options);
  const { address } = await cp.start();
  cleanups.push(() => cp.stop());
  return { cp, address };
}

function connect(address: string): AdsTestClient {
  const c = new AdsTestClient(address);
  cleanups.push(() => c.close());
  return c;
}

const listener = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra });
const route = (name: string, cluster = 'c1') => ({
  name,
  virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
});
const cla = (clusterName: string, port = 8080) => ({
  cluster_name: clusterName,
  endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
});

/**
 * Proves that nothing more was sent on `type` before this point: a fresh subscription
 * to another type is answered in order, so if the next response is the barrier's, no
 * other response was queued ahead of it.
 */
async function expectNoPendingResponse(client: AdsTestClient, barrierType: string = 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig') {
  client.send({ typeUrl: barrierType, names: [`barrier-${Math.random()}`] });
  const next = await client.next();
  expect(next.type_url).toBe(barrierType);
}

describe('ControlPlane ADS state of the world', () => {
  it('answers a wildcard LDS request with every listener, and records it as initial with the node', async () => {
    const { cp, address } = await started();
    cp.setResources(LDS, [listener('a:80'), listener('b:80')]);
    const client = connect(address);
    client.send({ typeUrl: LDS, node: { id: 'node-1', cluster: 'c', metadata: { GENERATOR: 'grpc' } } });
    const response = await client.next();
    expect(response.type_url).toBe(LDS);
    expect(response.version_info).toBe(cp.version(LDS));
    expect(response.nonce).not.toBe('');
    expect(namesIn(response)).toEqual(['a:80', 'b:80']);
    expect(response.control_plane?.identifier).toBe('meshlet-control-plane');
    const recorded = await cp.waitForRequest((r) => r.typeUrl === LDS);
    expect(recorded).toMatchObject({ kind: 'initial', streamId: 1, resourceNames: [], node: { id: 'node-1', cluster: 'c', metadata: { GENERATOR: 'grpc' } } });
    expect(cp.streamCount).toBe(1);
  });

  it('treats "*" as wildcard for CDS, and an empty CDS request as wildcard too', async () => {
    const { cp, address } = await started();
    cp.setResources(CDS, [{ name: 'c1', type: 'EDS' }, { name: 'c2', connectTimeout: '1s' }]);
    const a = connect(address);
    a.send({ typeUrl: CDS, names: ['*'] });
    expect(namesIn(await a.next())).toEqual(['c1', 'c2']);
    const b = connect(address);
    b.send({ typeUrl: CDS });
    expect(namesIn(await b.next())).toEqual(['c1', 'c2']);
  });

  it('sends only the named RDS and EDS resources that exist', async () => {
    const { cp, address } = await started();
    cp.setResources(RDS, [route('r1'), route('r2')]);
    cp.setResources(EDS, [cla('e1'), cla('e2')]);
    const client = connect(address);
    client.send({ typeUrl: RDS, names: ['r2', 'missing'] });
    const rds = await client.next();
    expect(namesIn(rds)).toEqual(['r2']);
    client.send({ typeUrl: EDS, names: ['e1'] });
    const eds = await client.next();
    expect(eds.type_url).toBe(EDS);
    expect(namesIn(eds, 'cluster_name')).toEqual(['e1']);
    // An empty RDS request is not wildcard: RDS and EDS are only ever named.
    const other = connect(address);
    other.send({ typeUrl: RDS });
    expect((await other.next()).resources).toHaveLength(0);
  });

  it('records an ACK and does not resend for it', async () => {
    const { cp, address } = await started();
    cp.setResources(LDS, [listener('a:80')]);
    const acked: unknown[] = [];
    cp.on('ack', (r) => acked.push(r));
    const client = connect(address);
    client.send({ typeUrl: LDS });
    const first = await client.next();
    client.ack(first, []);
    const ack = await cp.waitForRequest((r) => r.kind === 'ack');
    expect(ack).toMatchObject({ typeUrl: LDS, versionInfo: first.version_info, responseNonce: first.nonce });
    expect(cp.acks(LDS)).toHaveLength(1);
    expect(cp.acks(CDS)).toHaveLength(0);
    expect(acked).toHaveLength(1);
    await expectNoPendingResponse(client);
  });

  it('records a NACK with its error detail and does not resend for it', async () => {
    const { cp, address } = await started();
    cp.setResources(CDS, [{ name: 'c1' }]);
    const client = connect(address);
    client.send({ typeUrl: CDS });
    const first = await client.next();
    client.send({ typeUrl: CDS, version: '', nonce: first.nonce, error: { code: 3, message: 'c1: lb_policy: unsupported' } });
    const nack = await cp.waitForRequest((r) => r.kind === 'nack');
    expect(nack.errorDetail).toEqual({ code: 3, message: 'c1: lb_policy: unsupported' });
    expect(nack.responseNonce).toBe(first.nonce);
    expect(cp.nacks()).toEqual([nack]);
    expect(cp.nacks(LDS)).toEqual([]);
    await expectNoPendingResponse(client);
  });

  it('pushes a change to every stream subscribed to the type, with a new version and nonce', async () => {
    const { cp, address } = await started();
    cp.setResources(LDS, [listener('a:80')]);
    const clients = [connect(address), connect(address)];
    const firsts = [];
    for (const c of clients) {
      c.send({ typeUrl: LDS });
      firsts.push(await c.next());
    }
    const before = cp.version(LDS);
    cp.updateResources(LDS, [listener('b:80')]);
    expect(cp.version(LDS)).not.toBe(before);
    for (const [i, c] of clients.entries()) {
      const pushed = await c.next();
      expect(pushed.version_info).toBe(cp.version(LDS));
      expect(pushed.nonce).not.toBe(firsts[i]!.nonce);
      expect(namesIn(pushed)).toEqual(['a:80', 'b:80']);
    }
  });

  it('never pushes a type the stream has not asked for, nor a named resource it did not name', async () => {
    const { cp, address } = await started();
    cp.setResources(RDS, [route('r1'), route('r2')]);
    const client = connect(address);
    client.send({ typeUrl: RDS, names: ['r1'] });
    const first = await client.next();
    client.ack(first, ['r1']);
    cp.setResources(CDS, [{ name: 'c1' }]);
    cp.updateResources(RDS, [route('r2', 'other')]);
    await expectNoPendingResponse(client);
    cp.updateResources(RDS, [route('r1', 'other')]);
    const pushed = await client.next();
    expect(pushed.type_url).toBe(RDS);
    expect(namesIn(pushed)).toEqual(['r1']);
  });

  it('sends a fresh response when the subscription changes, classified as update', async () => {
    const { cp, address } = await started();
    cp.setResources(RDS, [route('r1'), route('r2')]);
    const client = connect(address);
    client.send({ typeUrl: RDS, names: ['r1'] });
    const first = await client.next();
    client.ack(first, ['r1', 'r2']);
    const second = await client.next();
    expect(namesIn(second)).toEqual(['r1', 'r2']);
    expect(second.nonce).not.toBe(first.nonce);
    expect(second.version_info).toBe(first.version_info);
    expect((await cp.waitForRequest((r) => r.responseNonce === first.nonce)).kind).toBe('update');
  });

  it('unsubscribes: an empty named list sends an empty response and stops pushes', async () => {
    const { cp, address } = await started();
    cp.setResources(RDS, [route('r1')]);
    cp.setResources(LDS, [listener('a:80')]);
    const client = connect(address);
    client.send({ typeUrl: RDS, names: ['r1'] });
    const first = await client.next();
    client.ack(first, []);
    expect((await client.next()).resources).toHaveLength(0);
    cp.updateResources(RDS, [route('r1', 'changed')]);
    await expectNoPendingResponse(client);
    // LDS too: once the stream named a listener, an empty list is no longer wildcard.
    client.send({ typeUrl: LDS, names: ['a:80'] });
    const lds = await client.next();
    client.ack(lds, []);
    expect((await client.next()).resources).toHaveLength(0);
  });

  it('ignores a request with a stale nonce, recording it as stale', async () => {
    const { cp, address } = await started();
    cp.setResources(RDS, [route('r1'), route('r2')]);
    const client = connect(address);
    client.send({ typeUrl: RDS, names: ['r1'] });
    const first = await client.next();
    cp.updateResources(RDS, [route('r1', 'changed')]);
    const second = await client.next();
    // The client answers the older response after the newer one went out.
    client.ack(first, ['r1', 'r2']);
    const stale = await cp.waitForRequest((r) => r.responseNonce === first.nonce);
    expect(stale).toMatchObject({ stale: true, kind: 'update' });
    await expectNoPendingResponse(client);
    client.ack(second, ['r1']);
    await cp.waitForRequest((r) => r.responseNonce === second.nonce && r.kind === 'ack');
    await expectNoPendingResponse(client);
  });

  it('removes resources and pushes the set without them to wildcard streams', async () => {
    const { cp, address } = await started();
    cp.setResources(LDS, [listener('a:80'), listener('b:80')]);
    const client = connect(address);
    client.send({ typeUrl: LDS });
    await client.next();
    cp.removeResources(LDS, ['a:80', 'not-there']);
    expect([...cp.getResources(LDS).keys()]).toEqual(['b:80']);
    expect(namesIn(await client.next())).toEqual(['b:80']);
    const version = cp.version(LDS);
    cp.removeResources(LDS, ['not-there']);
    expect(cp.version(LDS)).toBe(version);
  });

  it('bumps the version only when the set really changes', async () => {
    const { cp } = await started();
    expect(cp.version(CDS)).toBe('0');
    cp.setResources(CDS, [{ name: 'c1' }]);
    expect(cp.version(CDS)).toBe('1');
    cp.setResources(CDS, [{ '@type': CDS, name: 'c1' }]);
    cp.updateResources(CDS, [{ name: 'c1' }]);
    expect(cp.version(CDS)).toBe('1');
    cp.setResources(CDS, [{ name: 'c1', connect_timeout: '2s' }]);
    expect(cp.version(CDS)).toBe('2');
    cp.setResources(CDS, []);
    expect(cp.version(CDS)).toBe('3');
    expect(cp.getResources(CDS).size).toBe(0);
  });

  it('accepts lowerCamelCase keys and encoded { name, any } inputs, and names the field of a bad one', async () => {
    const { cp } = await started();
    cp.setResources(EDS, [{ clusterName: 'e1', endpoints: [] }]);
    expect([...cp.getResources(EDS).keys()]).toEqual(['e1']);
    const value = protoType('envoy.config.cluster.v3.Cluster').encode({ name: 'c9' }).finish();
    cp.setResources(CDS, [{ name: 'c9', any: { type_url: CDS, value } }]);
    expect(cp.getResources(CDS).get('c9')?.any.value).toEqual(value);
    expect(() => cp.setResources(CDS, [{ name: 'c1', connect_timeout: 'soon' }])).toThrow(/connect_timeout/);
    expect(() => cp.setResources(CDS, [{ connect_timeout: '1s' }])).toThrow(/name/);
    expect(() => cp.setResources(CDS, [{ '@type': LDS, name: 'x' }])).toThrow(/@type/);
    expect(cp.version(CDS)).toBe('1');
  });

  it('serves raw bytes exactly as given, duplicates included', async () => {
    const { cp, address } = await started();
    const garbage = new Uint8Array([0xff, 0xff, 0xff]);
    cp.setRawResources(CDS, [
      { name: 'bad', any: { type_url: CDS, value: garbage } },
      { name: 'dup', any: { type_url: CDS, value: new Uint8Array([0x0a, 0x01, 0x78]) } },
      { name: 'dup', any: { type_url: 'type.googleapis.com/wrong.Type', value: new Uint8Array([1]) } },
    ]);
    const client = connect(address);
    client.send({ typeUrl: CDS });
    const response = await client.next();
    expect(response.resources.map((r) => [r.type_url, [...r.value]])).toEqual([
      [CDS, [0xff, 0xff, 0xff]],
      [CDS, [0x0a, 0x01, 0x78]],
      ['type.googleapis.com/wrong.Type', [1]],
    ]);
    const named = connect(address);
    named.send({ typeUrl: CDS, names: ['dup'] });
    expect((await named.next()).resources).toHaveLength(2);
  });

  it('waitForRequest sees past and future requests and times out with what it saw', async () => {
    const { cp, address } = await started();
    const client = connect(address);
    const future = cp.waitForRequest((r) => r.typeUrl === CDS);
    client.send({ typeUrl: LDS });
    client.send({ typeUrl: CDS });
    expect((await future).typeUrl).toBe(CDS);
    expect((await cp.waitForRequest((r) => r.typeUrl === LDS)).kind).toBe('initial');
    expect(cp.requests.map((r) => r.typeUrl)).toEqual([LDS, CDS]);
    await expect(cp.waitForRequest((r) => r.typeUrl === EDS, 50)).rejects.toThrow(/Listener/);
  });

  it('stops with UNAVAILABLE and restarts on the same port with the same resources', async () => {
    const { cp, address } = await started();
    cp.setResources(LDS, [listener('a:80')]);
    const client = connect(address);
    client.send({ typeUrl: LDS });
    await client.next();
    expect(cp.streamCount).toBe(1);
    await cp.stop();
    expect(cp.streamCount).toBe(0);
    expect((await client.ended).code).toBe(status.UNAVAILABLE);
    const again = await cp.start();
    expect(again.address).toBe(address);
    const second = connect(again.address);
    second.send({ typeUrl: LDS });
    expect(namesIn(await second.next())).toEqual(['a:80']);
    expect((await cp.waitForRequest((r) => r.streamId === 2)).kind).toBe('initial');
  });

  it('listens on a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlet-cp-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'xds.sock');
    const { cp, address } = await started({ unixSocket: socket });
    expect(address).toBe(`unix://${socket}`);
    cp.setResources(CDS, [{ name: 'c1' }]);
    const client = connect(address);
    client.send({ typeUrl: CDS });
    expect(namesIn(await client.next())).toEqual(['c1']);
  });

  it('replaces the socket file a killed process left, but not a live one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlet-cp-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socket = join(dir, 'xds.sock');
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((r) => child.stdout.once('data', r));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(lstatSync(socket).isSocket()).toBe(true);
    const { cp, address } = await started({ unixSocket: socket });
    cp.setResources(CDS, [{ name: 'c1' }]);
    const client = connect(address);
    client.send({ typeUrl: CDS });
    expect(namesIn(await client.next())).toEqual(['c1']);

    const second = new ControlPlane({ unixSocket: socket });
    await expect(second.start()).rejects.toThrow(/cannot listen on unix:/);
    // The live server's socket is still there and still serving.
    const again = connect(address);
    again.send({ typeUrl: CDS });
    expect(namesIn(await again.next())).toEqual(['c1']);
  });

  it('closes a stream that sends no type_url with INVALID_ARGUMENT', async () => {
    const { address } = await started();
    const client = connect(address);
    client.send({ typeUrl: '' });
    expect((await client.ended).code).toBe(status.INVALID_ARGUMENT);
  });

  it('listens on IPv6 loopback', async (ctx) => {
    const cp = new ControlPlane({ host: '::1' });
    let address: string;
    try {
      address = (await cp.start()).address;
    } catch {
      ctx.skip(); // no IPv6 here
      return;
    }
    cleanups.push(() => cp.stop());
    expect(address).toMatch(/^\[::1\]:\d+$/);
    cp.setResources(CDS, [{ name: 'c1' }]);
    const client = connect(address);
    client.send({ typeUrl: CDS });
    expect(namesIn(await client.next())).toEqual(['c1']);
  });

  it('serves 10,000 resources in one response', async () => {
    const { cp, address } = await started();
    const clusters = Array.from({ length: 10_000 }, (_, i) => ({ name: `outbound|80||svc-${i}.ns.svc.cluster.local`, type: 'EDS' }));
    cp.setResources(CDS, clusters);
    const client = connect(address);
    client.send({ typeUrl: CDS });
    const response = await client.next();
    expect(response.resources).toHaveLength(10_000);
    expect(namesIn(response)[9_999]).toBe('outbound|80||svc-9999.ns.svc.cluster.local');
  });

  it('counts open streams and reports them opening and closing', async () => {
    const { cp, address } = await started();
    const opened = new Promise<{ streamId: number }>((r) => cp.once('stream', r));
    const client = new AdsTestClient(address);
    client.send({ typeUrl: LDS });
    await client.next();
    expect((await opened).streamId).toBe(1);
    expect(cp.streamCount).toBe(1);
    const closed = new Promise<{ streamId: number }>((r) => cp.once('streamClosed', r));
    client.close();
    expect((await closed).streamId).toBe(1);
    expect(cp.streamCount).toBe(0);
  });

  it('validates its options', () => {
    expect(() => new ControlPlane({ port: 70_000 })).toThrow(/port/);
    expect(() => new ControlPlane({ host: '' })).toThrow(/host/);
  });
});
