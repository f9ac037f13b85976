// @meshlet/xds-client against @meshlet/control-plane on loopback: the SotW protocol as a
// real control plane sees it (requests, ACKs, NACKs with their error_detail), with the
// real resource decoders. Timers that would be slow (does-not-exist, backoff) are injected.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlane, type RecordedRequest } from '@meshlet/control-plane';
import {
  clusterResourceType,
  endpointResourceType,
  listenerResourceType,
  routeConfigurationResourceType,
  TYPE_URLS,
  XdsClient,
  type Clock,
  type MeshletError,
  type XdsClientOptions,
  type XdsWatcher,
} from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const { listener: LDS, routeConfiguration: RDS, cluster: CDS, clusterLoadAssignment: EDS } = TYPE_URLS;

type Event = { kind: 'changed'; value: unknown } | { kind: 'error'; error: MeshletError } | { kind: 'dne' };

class Recorder<T> implements XdsWatcher<T> {
  readonly events: Event[] = [];
  #waiters: Array<{ pred: (e: Event) => boolean; resolve: (e: Event) => void }> = [];
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
    this.#waiters = this.#waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
  }
  /** The first event from index `from` on that matches (past or future). */
  next(pred: (e: Event) => boolean = () => true, from = 0, timeoutMs = 5000): Promise<Event> {
    const past = this.events.slice(from).find(pred);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching event; have ${JSON.stringify(this.events)}`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
    });
  }
  kinds(): string[] {
    return this.events.map((e) => e.kind);
  }
}

const changed = (e: Event) => e.kind === 'changed';
const dne = (e: Event) => e.kind === 'dne';

/** Timers run only when the test says so; now() advances with them. */
class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly timers = new Map<number, { at: number; ms: number; fn: () => void }>();
  now = () => this.#now;
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(++this.#seq, { at: this.#now + ms, ms, fn });
    return this.#seq;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  delays(): number[] {
    return [...this.timers.values()].map((t) => t.ms);
  }
  /** Run the earliest pending timer with delay `ms`. */
  fire(ms: number): void {
    const entry = [...this.timers].find(([, t]) => t.ms === ms);
    if (!entry) throw new Error(`no timer of ${ms} ms; pending ${this.delays()}`);
    this.timers.delete(entry[0]);
    this.#now = Math.max(this.#now, entry[1].at);
    entry[1].fn();
  }
}

// Fast reconnects for tests.
const FAST: Partial<XdsClientOptions> = {
  backoff: { initialMs: 20, maxMs: 100 },
};

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startControlPlane(options: ConstructorParameters<typeof ControlPlane>[0] = { host: '127.0.0.1', port: 0 }) {
  const cp = new ControlPlane(options);
  const { address } = await cp.start();
  cleanups.push(() => cp.stop());
  return { cp, address };
}

function newClient(address: string, options: Partial<XdsClientOptions> = {}): XdsClient {
  const client = new XdsClient({ bootstrap: bootstrapFor(address), ...FAST, ...options });
  cleanups.push(() => client.close());
  return client;
}

const isType = (typeUrl: string) => (r: RecordedRequest) => r.typeUrl === typeUrl;

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('xds-client with @meshlet/control-plane', () => {
  it('subscribes down the LDS → RDS → CDS → EDS chain, ACKs, and sees updates', async () => {
    const { cp, address } = await startControlPlane();
    cp.setResources(LDS, [listener('svc.ns:8080', 'route-1')]);
    cp.setResources(RDS, [routeConfig('route-1', [{ domains: ['svc.ns:8080'], routes: [{ prefix: '/', cluster: 'outbound|8080||svc.ns' }] }])]);
    cp.setResources(CDS, [edsCluster('outbound|8080||svc.ns')]);
    cp.setResources(EDS, [endpoints('outbound|8080||svc.ns', [['10.0.0.1', 8080]])]);
    const client = newClient(address);

    const l = new Recorder<unknown>();
    const r = new Recorder<unknown>();
    const c = new Recorder<unknown>();
    const e = new Recorder<unknown>();
    client.watch(listenerResourceType, 'svc.ns:8080', l);
    client.watch(routeConfigurationResourceType, 'route-1', r);
    client.watch(clusterResourceType, 'outbound|8080||svc.ns', c);
    client.watch(endpointResourceType, 'outbound|8080||svc.ns', e);
    for (const w of [l, r, c, e]) await w.next(changed);
    expect(l.events[0]).toMatchObject({ kind: 'changed', value: { name: 'svc.ns:8080' } });
    expect(e.events[0]).toMatchObject({ kind: 'changed', value: { clusterName: 'outbound|8080||svc.ns' } });

    for (const t of [LDS, RDS, CDS, EDS]) {
      const initial = await cp.waitForRequest((q) => q.typeUrl === t && q.kind === 'initial');
      expect(initial.versionInfo).toBe('');
      await cp.waitForRequest((q) => q.typeUrl === t && q.kind === 'ack');
    }
    // The node went on the stream's first request, with meshlet's user agent.
    expect(cp.requests[0]!.node?.id).toBe('sidecar~127.0.0.1~test.default~default.svc.cluster.local');

    const from = e.events.length;
    cp.setResources(EDS, [endpoints('outbound|8080||svc.ns', [['10.0.0.2', 8080]])]);
    const update = await e.next(changed, from);
    expect(JSON.stringify(update)).toContain('10.0.0.2');
    const ack = await cp.waitForRequest((q) => q.typeUrl === EDS && q.kind === 'ack' && q.versionInfo === cp.version(EDS));
    expect(ack.errorDetail).toBeUndefined();

    const dump = client.dump();
    expect(dump.types.find((t) => t.typeUrl === EDS)?.versionInfo).toBe(cp.version(EDS));
    expect(dump.resources.every((res) => res.state === 'acked')).toBe(true);
  });

  it('deletes LDS/CDS resources by omission, keeps RDS/EDS ones', async () => {
    const { cp, address } = await startControlPlane();
    cp.setResources(LDS, [listener('a:80', 'r'), listener('b:80', 'r')]);
    cp.setResources(RDS, [routeConfig('r', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'c' }] }])]);
    cp.setResources(CDS, [edsCluster('c'), edsCluster('d')]);
    cp.setResources(EDS, [endpoints('c', [['10.0.0.1', 80]])]);
    const client = newClient(address);
    const la = new Recorder<unknown>();
    const r = new Recorder<unknown>();
    const cc = new Recorder<unknown>();
    const e = new Recorder<unknown>();
    client.watch(listenerResourceType, 'a:80', la);
    client.watch(listenerResourceType, 'b:80', new Recorder());
    client.watch(routeConfigurationResourceType, 'r', r);
    client.watch(clusterResourceType, 'c', cc);
    client.watch(clusterResourceType, 'd', new Recorder());
    client.watch(endpointResourceType, 'c', e);
    for (const w of [la, r, cc, e]) await w.next(changed);

    cp.removeResources(LDS, ['a:80']);
    cp.removeResources(CDS, ['c']);
    cp.removeResources(RDS, ['r']);
    cp.removeResources(EDS, ['c']);
    await la.next(dne);
    await cc.next(dne);
    await cp.waitForRequest((q) => q.typeUrl === RDS && q.kind === 'ack' && q.versionInfo === cp.version(RDS));
    await cp.waitForRequest((q) => q.typeUrl === EDS && q.kind === 'ack' && q.versionInfo === cp.version(EDS));
    expect(r.kinds()).toEqual(['changed']);
    expect(e.kinds()).toEqual(['changed']);
    const states = Object.fromEntries(client.dump().resources.map((x) => [`${x.typeUrl.split('.').pop()}/${x.name}`, x.state]));
    expect(states).toEqual({
      'Listener/a:80': 'does_not_exist',
      'Listener/b:80': 'acked',
      'RouteConfiguration/r': 'acked',
      'Cluster/c': 'does_not_exist',
      'Cluster/d': 'acked',
      'ClusterLoadAssignment/c': 'acked',
    });
  });

  it('NACKs an invalid resource naming resource, field and reason; keeps its last good value; applies valid siblings', async () => {
    const { cp, address } = await startControlPlane();
    cp.setResources(CDS, [edsCluster('good'), edsCluster('bad')]);
    const client = newClient(address);
    const good = new Recorder<unknown>();
    const bad = new Recorder<unknown>();
    client.watch(clusterResourceType, 'good', good);
    client.watch(clusterResourceType, 'bad', bad);
    await good.next(changed);
    await bad.next(changed);
    const acceptedVersion = cp.version(CDS);
    await cp.waitForRequest((q) => q.typeUrl === CDS && q.kind === 'ack' && q.versionInfo === acceptedVersion);

    // One response: `good` changes validly, `bad` loses its required eds_config.
    cp.setResources(CDS, [
      edsCluster('good', { lb_policy: 'LEAST_REQUEST' }),
      { ...edsCluster('bad'), eds_cluster_config: { service_name: 'bad' } },
    ]);
    const nack = await cp.waitForRequest((q) => q.typeUrl === CDS && q.kind === 'nack');
    expect(nack.versionInfo).toBe(acceptedVersion);
    expect(nack.errorDetail?.code).toBe(3);
    expect(nack.errorDetail?.message).toMatch(/^Cluster "bad": eds_cluster_config\.eds_config: is required/);
    expect(nack.errorDetail?.message).not.toContain('"good"');

    const goodUpdate = await good.next(changed, 1);
    expect(goodUpdate).toMatchObject({ value: { name: 'good' } });
    expect(JSON.stringify(goodUpdate)).toMatch(/LEAST_REQUEST|least_request|leastRequest/i);
    const err = await bad.next((ev) => ev.kind === 'error');
    expect((err as { error: MeshletError }).error.code).toBe('MESHLET_XDS_RESOURCE_INVALID');
    expect((err as { error: MeshletError }).error.message).toContain('eds_cluster_config.eds_config');
    const badState = client.dump().resources.find((x) => x.name === 'bad')!;
    expect(badState).toMatchObject({ state: 'nacked', version: acceptedVersion, value: { name: 'bad' } });
    expect(badState.error?.message).toContain('eds_cluster_config.eds_config');
    expect(client.dump().types.find((t) => t.typeUrl === CDS)?.versionInfo).toBe(acceptedVersion);
  });

  it('NACKs bytes that do not decode', async () => {
    const { cp, address } = await startControlPlane();
    cp.setRawResources(CDS, [{ name: 'junk', any: { type_url: CDS, value: new Uint8Array([0x0a, 0xff]) } }]);
    const client = newClient(address);
    const w = new Recorder<unknown>();
    client.watch(clusterResourceType, 'junk', w);
    const nack = await cp.waitForRequest((q) => q.typeUrl === CDS && q.kind === 'nack');
    expect(nack.errorDetail?.message).toMatch(/^Cluster \(resource 0\): cannot decode/);
  });

  it('survives a control plane restart: cache kept, resubscribed with versions, no spurious does-not-exist', async () => {
    const { cp, address } = await startControlPlane();
    cp.setResources(CDS, [edsCluster('c1')]);
    cp.setResources(EDS, [endpoints('c1', [['10.0.0.1', 80]])]);
    const client = newClient(address, { resourceDoesNotExistTimeoutMs: 300 });
    const c = new Recorder<unknown>();
    const e = new Recorder<unknown>();
    client.watch(clusterResourceType, 'c1', c);
    client.watch(endpointResourceType, 'c1', e);
    await c.next(changed);
    await e.next(changed);
    const cdsVersion = cp.version(CDS);
    await cp.waitForRequest((q) => q.typeUrl === CDS && q.kind === 'ack' && q.versionInfo === cdsVersion);
    const firstStream = cp.requests.at(-1)!.streamId;

    await cp.stop();
    // While the server is down a new, uncached name is watched; it proves below that a
    // timer started at the resend has run out.
    const late = new Recorder<unknown>();
    client.watch(clusterResourceType, 'late', late);
    await cp.start();
    const resent = await cp.waitForRequest((q) => q.typeUrl === CDS && q.streamId !== firstStream);
    expect(resent.versionInfo).toBe(cdsVersion);
    expect(resent.responseNonce).toBe('');
    expect(resent.resourceNames.sort()).toEqual(['c1', 'late']);
    await late.next(dne);
    expect(c.events.filter(dne)).toEqual([]);
    expect(e.events.filter(dne)).toEqual([]);
    expect(client.dump().resources.find((x) => x.name === 'c1' && x.typeUrl === CDS)?.state).toBe('acked');
  });

  it('does-not-exist after the (injected) timeout from the request being sent', async () => {
    const { cp, address } = await startControlPlane();
    const clock = new ManualClock();
    const client = newClient(address, { clock, resourceDoesNotExistTimeoutMs: 15_000 });
    const w = new Recorder<unknown>();
    client.watch(listenerResourceType, 'nothing:80', w);
    await cp.waitForRequest(isType(LDS));
    await waitUntil(() => clock.delays().includes(15_000));
    clock.fire(15_000);
    expect(w.kinds()).toEqual(['dne']);
    // It appears later: the watcher hears of it.
    cp.setResources(LDS, [listener('nothing:80', 'r')]);
    await w.next(changed);
  });

  it('batches 1,000 cluster watches into one CDS request', async () => {
    const { cp, address } = await startControlPlane();
    const names = Array.from({ length: 1000 }, (_, i) => `outbound|80||svc-${i}.ns.svc.cluster.local`);
    cp.setResources(CDS, names.map((n) => edsCluster(n)));
    const client = newClient(address);
    const watchers = names.map((n) => {
      const w = new Recorder<unknown>();
      client.watch(clusterResourceType, n, w);
      return w;
    });
    await cp.waitForRequest((q) => q.typeUrl === CDS && q.kind === 'ack');
    await Promise.all(watchers.map((w) => w.next(changed)));
    const cds = cp.requests.filter(isType(CDS));
    expect(cds.map((q) => q.kind)).toEqual(['initial', 'ack']);
    expect(cds[0]!.resourceNames).toHaveLength(1000);
  });

  it('talks to a control plane on a unix: socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlet-xds-'));
    const { cp, address } = await startControlPlane({ unixSocket: join(dir, 'XDS') });
    expect(address.startsWith('unix:')).toBe(true);
    cp.setResources(LDS, [listener('u:80', 'r')]);
    const client = newClient(address);
    const w = new Recorder<unknown>();
    client.watch(listenerResourceType, 'u:80', w);
    await w.next(changed);
  });

  it('reconnects with gRPC backoff (injected clock and jitter), reset by a response', async () => {
    const { cp, address } = await startControlPlane();
    cp.setResources(CDS, [edsCluster('c')]);
    const clock = new ManualClock();
    const client = newClient(address, { clock, backoff: { random: () => 1 } }); // +20 % jitter, gRPC's 1 s × 1.6
    const w = new Recorder<unknown>();
    client.watch(clusterResourceType, 'c', w);
    await w.next(changed);

    const backoffDelays = () => clock.delays().filter((d) => d !== 15_000);
    const nextDelay = async () => {
      await waitUntil(() => backoffDelays().length > 0);
      const [d] = backoffDelays();
      clock.fire(d!);
      return d!;
    };
    await cp.stop();
    // The stream had a response: the first reconnect is immediate; then 1.2 s, 1.92 s, ...
    const delays = [await nextDelay(), await nextDelay(), await nextDelay()];
    expect(delays).toEqual([0, 1200, 1920]);

    await cp.start();
    const streamsBefore = new Set(cp.requests.map((q) => q.streamId));
    const acked = cp.waitForRequest((q) => q.kind === 'ack' && !streamsBefore.has(q.streamId), 10_000);
    let done = false;
    void acked.then(() => (done = true));
    // Fire retries (3072 ms, then longer) until one reaches the restarted server.
    while (!done) {
      await waitUntil(() => done || backoffDelays().length > 0);
      if (!done) clock.fire(backoffDelays()[0]!);
    }
    await cp.stop();
    // A response arrived, so the sequence starts over.
    expect([await nextDelay(), await nextDelay()]).toEqual([0, 1200]);
  });
});
