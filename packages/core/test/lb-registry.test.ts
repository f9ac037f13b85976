import { describe, expect, it } from 'vitest';
import { MeshletError } from '@meshlet/xds-client';
import { buildClusterLoadBalancer } from '../src/lb-cluster.js';
import { getLoadBalancer, registerLoadBalancer } from '../src/lb-registry.js';
import type { LoadBalancerFactory } from '../src/lb-types.js';
import { seededRandom } from '../src/random.js';
import { cluster, endpoints, hostsSpec, locality, RR } from './lb-fixtures.js';

// Always the last host of its list, to tell it from the built-ins.
const lastHost: LoadBalancerFactory = {
  create: ({ hosts }) => ({ pick: () => hosts[hosts.length - 1] }),
};
registerLoadBalancer('test.last_host', lastHost);

const eds = endpoints([[locality('a', hostsSpec(5))]]);

describe('load balancer registry', () => {
  it('has every policy the xds-client decoder names', () => {
    for (const name of ['round_robin', 'least_request', 'ring_hash', 'maglev', 'random', 'pick_first', 'wrr_locality', 'client_side_weighted_round_robin']) {
      expect(getLoadBalancer(name), name).toBeDefined();
    }
  });

  it('a custom policy wins when listed first', () => {
    const lb = buildClusterLoadBalancer(cluster([{ name: 'test.last_host', config: {} }, RR]), eds, { random: seededRandom(1) });
    expect(lb.policy).toBe('test.last_host');
    for (let i = 0; i < 5; i++) expect(lb.pick()!.key).toBe('10.0.0.5:80');
  });

  it('the first registered entry wins; unknown names are skipped', () => {
    const lb = buildClusterLoadBalancer(cluster([{ name: 'no.such.policy', config: {} }, RR, { name: 'test.last_host', config: {} }]), eds, {
      random: seededRandom(1),
    });
    expect(lb.policy).toBe('round_robin');
    expect(new Set(Array.from({ length: 5 }, () => lb.pick()!.key)).size).toBe(5);
  });

  it('a cluster with no policy list (aggregate) defaults to round robin', () => {
    expect(buildClusterLoadBalancer(cluster([]), eds, { random: seededRandom(1) }).policy).toBe('round_robin');
  });

  it('no registered policy is an error naming the cluster and the policies', () => {
    expect(() => buildClusterLoadBalancer(cluster([{ name: 'no.such.policy', config: {} }]), eds, { random: seededRandom(1) })).toThrow(
      /cluster "c".*no\.such\.policy/,
    );
    try {
      buildClusterLoadBalancer(cluster([{ name: 'x', config: {} }]), eds, { random: seededRandom(1) });
    } catch (e) {
      expect(e).toBeInstanceOf(MeshletError);
    }
  });

  it('a custom policy can be the child of wrr_locality', () => {
    const lb = buildClusterLoadBalancer(cluster([{ name: 'wrr_locality', config: { childPolicy: [{ name: 'test.last_host', config: {} }] } }]), eds, {
      random: seededRandom(1),
    });
    expect(lb.policy).toBe('wrr_locality/test.last_host');
    expect(lb.pick()!.key).toBe('10.0.0.5:80');
  });
});
