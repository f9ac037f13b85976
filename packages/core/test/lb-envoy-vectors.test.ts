// Expected rings and tables from Envoy's own unit tests (test/common/upstream/
// ring_hash_lb_test.cc and maglev_lb_test.cc, "Basic", "Weighted" and
// "LocalityWeightedDifferentLocalityWeights"): the same hosts must land on the same
// positions here, or a mesh of meshlet and Envoy clients would disagree on stickiness.
import { describe, expect, it } from 'vitest';
import { buildClusterLoadBalancer } from '../src/lb-cluster.js';
import { seededRandom } from '../src/random.js';
import { cluster, endpoints, locality, MAGLEV, RING } from './lb-fixtures.js';

const ports = [90, 91, 92, 93, 94, 95];
const sixHosts = endpoints([[locality('a', ports.map((port) => ({ host: '127.0.0.1', port })))]]);

describe('ring hash matches Envoy (ring_hash_lb_test.cc Basic)', () => {
  // Ring of 12 (minimum_ring_size 12, two entries per host):
  // :94 833437586790550860, :92 928266305478181108, :90 1033482794131418490,
  // :95 3551244743356806947, :93 3851675632748031481, :91 5583722120771150861,
  // :91 6311230543546372928, :93 7700377290971790572, :95 13144177310400110813,
  // :92 13444792449719432967, :94 15516499411664133160, :90 16117243373044804889
  const lb = buildClusterLoadBalancer(cluster([RING(12)]), sixHosts, { random: seededRandom(1) });
  it.each([
    [0n, 94],
    [(1n << 64n) - 1n, 94],
    [3551244743356806947n, 95],
    [3551244743356806948n, 93],
    [16117243373044804880n, 90],
    [833437586790550861n, 92],
    [15516499411664133160n, 94],
  ])('hash %s → :%i', (hash, port) => {
    expect(lb.pick({ hash })!.address.port).toBe(port);
  });
});

describe('Maglev matches Envoy (maglev_lb_test.cc)', () => {
  const tableOf = (lb: ReturnType<typeof buildClusterLoadBalancer>, size: number) =>
    Array.from({ length: size }, (_, i) => lb.pick({ hash: BigInt(i) })!.address.port);

  it('Basic: six hosts, table size 7', () => {
    const lb = buildClusterLoadBalancer(cluster([MAGLEV(7)]), sixHosts, { random: seededRandom(1) });
    expect(tableOf(lb, 7)).toEqual([92, 94, 90, 91, 95, 90, 93]);
    expect(lb.pick({ hash: 7n * 3n + 1n })!.address.port).toBe(94);
  });

  it('Weighted: weights 1 and 2, table size 17', () => {
    const eds = endpoints([[locality('a', [{ host: '127.0.0.1', port: 90, weight: 1 }, { host: '127.0.0.1', port: 91, weight: 2 }])]]);
    const lb = buildClusterLoadBalancer(cluster([MAGLEV(17)]), eds, { random: seededRandom(1) });
    expect(tableOf(lb, 17)).toEqual([1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1].map((i) => 90 + i));
  });

  it('locality weights 8, 0, 2 (host weights inside a locality of one host do not matter)', () => {
    const eds = endpoints([
      [
        locality('a', [{ host: '127.0.0.1', port: 90, weight: 1 }], 8),
        locality('b', [{ host: '127.0.0.1', port: 92, weight: 3 }], 0),
        locality('c', [{ host: '127.0.0.1', port: 91, weight: 2 }], 2),
      ],
    ]);
    const lb = buildClusterLoadBalancer(cluster([MAGLEV(17)], { localityWeightedLbConfig: true }), eds, { random: seededRandom(1) });
    expect(tableOf(lb, 17)).toEqual([1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0].map((i) => 90 + i));
  });
});
