// gRFC A74 resolution against the real control plane: the chain is reported only
// when complete, follows changes, and keeps a cluster's error to that cluster.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { XdsDependencyManager, type XdsConfig } from '@meshlet/core';
import { TYPE_URLS, XdsClient, type MeshletError } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const TARGET = 'svc.test:80';

class Recorder {
  updates: XdsConfig[] = [];
  errors: MeshletError[] = [];
  private waiters: Array<() => void> = [];
  onUpdate = (c: XdsConfig): void => {
    this.updates.push(c);
    this.flush();
  };
  onError = (e: MeshletError): void => {
    this.errors.push(e);
    this.flush();
  };
  private flush(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  async until(pred: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the dependency manager');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

describe('XdsDependencyManager', () => {
  let cp: ControlPlane;
  let client: XdsClient;
  let dm: XdsDependencyManager | undefined;

  beforeEach(async () => {
    cp = new ControlPlane();
    const { address } = await cp.start();
    client = new XdsClient({ bootstrap: bootstrapFor(address), resourceDoesNotExistTimeoutMs: 500 });
    cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'agg' }] }])]);
    cp.setResources(TYPE_URLS.cluster, [
      {
        '@type': TYPE_URLS.cluster,
        name: 'agg',
        cluster_type: {
          name: 'envoy.clusters.aggregate',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig', clusters: ['primary', 'dns'] },
        },
        lb_policy: 'CLUSTER_PROVIDED',
      },
      edsCluster('primary'),
      {
        '@type': TYPE_URLS.cluster,
        name: 'dns',
        type: 'LOGICAL_DNS',
        load_assignment: {
          cluster_name: 'dns',
          endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'localhost', port_value: 8443 } } } }] }],
        },
      },
    ]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints('primary', [['127.0.0.1', 1001]])]);
  });

  afterEach(async () => {
    dm?.close();
    client.close();
    await cp.stop();
  });

  it('reports the complete chain through an aggregate cluster', async () => {
    const rec = new Recorder();
    dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: async () => ['127.0.0.9', '127.0.0.10'] }, rec);
    await rec.until(() => rec.updates.length > 0);
    const c = rec.updates[0]!;
    expect(c.routeConfig.name).toBe('rc');
    const agg = c.clusters.get('agg');
    expect(agg?.ok && agg.leafClusters).toEqual(['primary', 'dns']);
    const dns = c.clusters.get('dns');
    expect(dns?.ok && dns.endpoints?.kind).toBe('dns');
    // Envoy's LOGICAL_DNS uses the first address only.
    expect(dns?.ok && dns.endpoints?.endpoints.priorities[0]?.[0]?.endpoints.map((e) => e.addresses[0])).toEqual([{ host: '127.0.0.9', port: 8443 }]);
    const primary = c.clusters.get('primary');
    expect(primary?.ok && primary.endpoints?.endpoints.priorities[0]?.[0]?.endpoints[0]?.addresses[0]).toEqual({ host: '127.0.0.1', port: 1001 });
    expect(rec.errors).toHaveLength(0);
  });

  it('follows a route change to new clusters and drops the old watches', async () => {
    const rec = new Recorder();
    dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: async () => ['127.0.0.9'] }, rec);
    await rec.until(() => rec.updates.length > 0);
    cp.updateResources(TYPE_URLS.cluster, [edsCluster('other')]);
    cp.updateResources(TYPE_URLS.clusterLoadAssignment, [endpoints('other', [['127.0.0.1', 2002]])]);
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'other' }] }])]);
    await rec.until(() => rec.updates.some((u) => u.clusters.has('other')));
    const last = rec.updates.at(-1)!;
    expect([...last.clusters.keys()]).toEqual(['other']);
    // The client unsubscribed from the clusters no longer named.
    const cds = await cp.waitForRequest((r) => r.typeUrl === TYPE_URLS.cluster && r.resourceNames.length === 1 && r.resourceNames[0] === 'other');
    expect(cds.resourceNames).toEqual(['other']);
  });

  it('keeps a missing cluster to itself and fails the target on a missing route table', async () => {
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/a', cluster: 'primary' }, { prefix: '/b', cluster: 'ghost' }] }]),
    ]);
    const rec = new Recorder();
    dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET }, rec);
    await rec.until(() => rec.updates.length > 0);
    const u = rec.updates.at(-1)!;
    expect(u.clusters.get('primary')?.ok).toBe(true);
    const ghost = u.clusters.get('ghost');
    expect(ghost?.ok).toBe(false);
    expect(!ghost?.ok && ghost?.error.message).toMatch(/Cluster "ghost" does not exist/);

    const rec2 = new Recorder();
    cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc'), listener('other.test:80', 'rc-none')]);
    const dm2 = new XdsDependencyManager(client, { listenerName: 'other.test:80', authority: 'other.test:80' }, rec2);
    await rec2.until(() => rec2.errors.length > 0);
    expect(rec2.errors[0]?.message).toMatch(/RouteConfiguration "rc-none" does not exist/);
    expect(rec2.updates).toHaveLength(0);
    dm2.close();
  });

  it('subscribes to a route table\'s 1,000 clusters in one CDS request and their endpoints in one EDS request', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `c${i}`);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc', [{ domains: ['*'], routes: names.map((n) => ({ path: `/${n}`, cluster: n })) }]),
    ]);
    cp.setResources(TYPE_URLS.cluster, names.map((n) => edsCluster(n)));
    cp.setResources(TYPE_URLS.clusterLoadAssignment, names.map((n, i) => endpoints(n, [['127.0.0.1', 1000 + i]])));
    const rec = new Recorder();
    dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET }, rec);
    await rec.until(() => rec.updates.length > 0, 10_000);
    expect(rec.updates[0]!.clusters.size).toBe(1000);
    for (const type of [TYPE_URLS.cluster, TYPE_URLS.clusterLoadAssignment]) {
      // Every request for the type that is not an ACK: the subscription itself.
      const subscriptions = cp.requests.filter((r) => r.typeUrl === type && r.kind !== 'ack');
      expect(subscriptions, type).toHaveLength(1);
      expect(subscriptions[0]!.resourceNames).toHaveLength(1000);
    }
  });

  it('fails the target when no virtual host matches the authority', async () => {
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['elsewhere:80'], routes: [{ prefix: '/', cluster: 'primary' }] }])]);
    const rec = new Recorder();
    dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET }, rec);
    await rec.until(() => rec.errors.length > 0);
    expect(rec.errors[0]?.message).toMatch(/no virtual host matches authority "svc.test:80"/);
  });
  describe('re-resolves LOGICAL_DNS clusters (Envoy dns_refresh_rate)', () => {
    /** A resolver whose answer the test sets; counts its calls. */
    function fakeDns(first: string[] | Error): { set(a: string[] | Error): void; calls: () => number; resolve: (host: string) => Promise<string[]> } {
      let answer = first;
      let calls = 0;
      return {
        set: (a) => void (answer = a),
        calls: () => calls,
        resolve: async () => {
          calls++;
          if (answer instanceof Error) throw answer;
          return answer;
        },
      };
    }
    function dnsCluster(extra: Record<string, unknown>): Record<string, unknown> {
      return {
        '@type': TYPE_URLS.cluster,
        name: 'dns',
        type: 'LOGICAL_DNS',
        load_assignment: {
          cluster_name: 'dns',
          endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'svc.example', port_value: 8443 } } } }] }],
        },
        ...extra,
      };
    }
    const firstAddr = (u: XdsConfig | undefined): unknown => {
      const c = u?.clusters.get('dns');
      return c?.ok ? c.endpoints?.endpoints.priorities[0]?.[0]?.endpoints[0]?.addresses[0]?.host : c?.error.message;
    };
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

    beforeEach(() => {
      cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'dns' }] }])]);
    });

    it('follows a changed answer, and publishes nothing while the answer stays the same', async () => {
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '0.02s' })]);
      const dns = fakeDns(['127.0.0.9']);
      const rec = new Recorder();
      dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: dns.resolve }, rec);
      await rec.until(() => rec.updates.length > 0);
      expect(firstAddr(rec.updates[0])).toBe('127.0.0.9');
      // Several refreshes with the same answer: no new config.
      const published = rec.updates.length;
      const before = dns.calls();
      await rec.until(() => dns.calls() >= before + 3);
      expect(rec.updates.length).toBe(published);
      dns.set(['127.0.0.10', '127.0.0.9']);
      await rec.until(() => firstAddr(rec.updates.at(-1)) === '127.0.0.10');
      expect(rec.errors).toHaveLength(0);
    });

    it('keeps the last good address when a re-resolution fails, and retries', async () => {
      // No dns_failure_refresh_rate: failures retry at dns_refresh_rate.
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '0.02s' })]);
      const dns = fakeDns(['127.0.0.9']);
      const rec = new Recorder();
      dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: dns.resolve }, rec);
      await rec.until(() => rec.updates.length > 0);
      dns.set(new Error('SERVFAIL'));
      const published = rec.updates.length;
      const before = dns.calls();
      await rec.until(() => dns.calls() >= before + 4);
      // Nothing published: the cluster keeps 127.0.0.9.
      expect(rec.updates.length).toBe(published);
      expect(firstAddr(rec.updates.at(-1))).toBe('127.0.0.9');
      dns.set(['127.0.0.11']);
      await rec.until(() => firstAddr(rec.updates.at(-1)) === '127.0.0.11');
    });

    it('retries a failed resolution at dns_failure_refresh_rate, not dns_refresh_rate', async () => {
      // Refresh every 60 s: only the failure rate (20 ms doubling, at most 40 ms) brings the retry.
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '60s', dns_failure_refresh_rate: { base_interval: '0.02s', max_interval: '0.04s' } })]);
      const dns = fakeDns(new Error('NXDOMAIN'));
      const rec = new Recorder();
      dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: dns.resolve }, rec);
      await rec.until(() => rec.updates.length > 0);
      expect(firstAddr(rec.updates[0])).toMatch(/DNS resolution of svc.example failed: NXDOMAIN/);
      dns.set(['127.0.0.12']);
      await rec.until(() => firstAddr(rec.updates.at(-1)) === '127.0.0.12');
    });

    it('draws each failure delay below the backoff bound (Envoy\'s jittered exponential backoff)', async () => {
      // base = max = 2 s: unjittered, the retry would wait 2 s; the draws (0.05, then 0.1 of
      // the bound) make it 100 ms, then 200 ms.
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '60s', dns_failure_refresh_rate: { base_interval: '2s', max_interval: '2s' } })]);
      const dns = fakeDns(new Error('NXDOMAIN'));
      const draws = [0.05, 0.1];
      const random = { next: () => draws.shift() ?? 0.99, nextUint32: () => 0 };
      const rec = new Recorder();
      dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: dns.resolve, random }, rec);
      await rec.until(() => rec.updates.length > 0);
      const failedAt = performance.now();
      await rec.until(() => dns.calls() >= 3);
      const elapsed = performance.now() - failedAt;
      expect(draws).toEqual([]);
      expect(elapsed).toBeGreaterThanOrEqual(200);
      expect(elapsed).toBeLessThan(1_500);
    });

    it('applies a shorter dns_refresh_rate at once, not after the wait already armed', async () => {
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '60s' })]);
      const dns = fakeDns(['127.0.0.9']);
      const rec = new Recorder();
      dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: dns.resolve }, rec);
      await rec.until(() => rec.updates.length > 0);
      expect(dns.calls()).toBe(1);
      dns.set(['127.0.0.13']);
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '0.02s' })]);
      await rec.until(() => firstAddr(rec.updates.at(-1)) === '127.0.0.13');
    });

    it('stops resolving when the cluster leaves the config, and on close', async () => {
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '0.02s' })]);
      const dns = fakeDns(['127.0.0.9']);
      const rec = new Recorder();
      dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: dns.resolve }, rec);
      await rec.until(() => rec.updates.length > 0 && dns.calls() >= 3);
      cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'primary' }] }])]);
      await rec.until(() => !rec.updates.at(-1)!.clusters.has('dns'));
      // Pruned before that update was published: not one more resolution.
      const pruned = dns.calls();
      await sleep(200);
      expect(dns.calls()).toBe(pruned);

      // Back in the config: resolving again; then close stops it.
      cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'dns' }] }])]);
      await rec.until(() => dns.calls() >= pruned + 3);
      const closed = dns.calls();
      dm.close();
      await sleep(200);
      expect(dns.calls()).toBe(closed);
    });

    it('shares one resolution between two clusters on a host:port, at the smaller refresh rate', async () => {
      cp.setResources(TYPE_URLS.routeConfiguration, [
        routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/a', cluster: 'dns' }, { prefix: '/b', cluster: 'dns-slow' }] }]),
      ]);
      cp.updateResources(TYPE_URLS.cluster, [dnsCluster({ dns_refresh_rate: '0.02s' }), { ...dnsCluster({ dns_refresh_rate: '60s' }), name: 'dns-slow' }]);
      const dns = fakeDns(['127.0.0.9']);
      const rec = new Recorder();
      dm = new XdsDependencyManager(client, { listenerName: TARGET, authority: TARGET, resolveDns: dns.resolve }, rec);
      await rec.until(() => rec.updates.length > 0);
      // dns-slow alone would not resolve again for 60 s: it shares dns's resolution and rate.
      dns.set(['127.0.0.13']);
      await rec.until(() => {
        const u = rec.updates.at(-1)!;
        const slow = u.clusters.get('dns-slow');
        return firstAddr(u) === '127.0.0.13' && slow?.ok === true && slow.endpoints?.endpoints.priorities[0]?.[0]?.endpoints[0]?.addresses[0]?.host === '127.0.0.13';
      });
    });
  });
});
