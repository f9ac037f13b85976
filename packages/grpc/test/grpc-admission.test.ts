// A32 breaker slots taken at pick time (cluster-pool.ts): a slot whose call never starts goes
// back at the next turn of the event loop; a call that starts later takes one then.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { connectivityState, experimental } from '@grpc/grpc-js';
import { ClusterCircuitBreaker, seededRandom, type ClusterSnapshot, type Mesh } from '@meshlet/core';
import { clusterResourceType, endpointResourceType, systemClock, type CircuitBreakerThresholds, type ClusterResource, type EndpointsResource } from '@meshlet/xds-client';
import { encodeProto3Json } from '@meshlet/xds-client/proto-json';
import { admit, ClusterPool, returnEarlierPick } from '../src/cluster-pool.js';

function breaker(maxRequests: number): ClusterCircuitBreaker {
  const t: CircuitBreakerThresholds = {
    maxConnections: 1024,
    maxPendingRequests: 1024,
    maxRequests,
    maxRetries: 3,
    retryBudget: undefined,
    trackRemaining: false,
    maxConnectionPools: undefined,
  };
  return new ClusterCircuitBreaker({ default: t, high: t });
}

describe('A32 admission at pick time', () => {
  it('counts a burst of picks made in one tick against max_requests', () => {
    const b = breaker(2);
    expect(admit(b)).toBeDefined();
    expect(admit(b)).toBeDefined();
    expect(admit(b)).toBeUndefined();
    expect(b.active('request')).toBe(2);
  });

  it('gives back the slot of a call\'s earlier pick when the call picks again, so it never holds two', async () => {
    const b = breaker(1);
    const call = {};
    const first = admit(b, call)!;
    // Its subchannel stopped being READY before the call started: grpc-js picks again.
    returnEarlierPick(call);
    expect(b.active('request')).toBe(0);
    const second = admit(b, call)!;
    expect(second).toBeDefined(); // the call's own earlier slot does not fill the breaker
    expect(b.active('request')).toBe(1);
    second.started();
    await nextTurn();
    expect(b.active('request')).toBe(1);
    // A pick that was used is not given back by a later one (a retry attempt of the same call).
    returnEarlierPick(call);
    expect(b.active('request')).toBe(1);
    second.ended();
    first.ended();
    expect(b.active('request')).toBe(0);
  });

  it('gives back the slot of a pick whose call never starts, at the next turn', async () => {
    const b = breaker(1);
    const a = admit(b)!;
    expect(b.canAcquire('request')).toBe(false);
    await nextTurn();
    expect(b.active('request')).toBe(0);
    // The call starts after all: it takes a slot then, and gives it back when it ends.
    a.started();
    expect(b.active('request')).toBe(1);
    a.ended();
    a.ended();
    expect(b.active('request')).toBe(0);
  });

  it("returns unstarted slots under an application's fake timers too", async () => {
    const b = breaker(1);
    vi.useFakeTimers();
    try {
      admit(b);
    } finally {
      vi.useRealTimers();
    }
    await nextTurn();
    expect(b.active('request')).toBe(0);
  });

  it('keeps the slot of a call that started, until it ends', async () => {
    const b = breaker(1);
    const a = admit(b)!;
    a.started();
    await nextTurn();
    expect(b.active('request')).toBe(1);
    a.ended();
    expect(b.active('request')).toBe(0);
  });

  it('counts a late start even past a full breaker (the stream exists), and releases it once', async () => {
    const b = breaker(1);
    const late = admit(b)!;
    await nextTurn();
    const other = admit(b)!;
    other.started();
    late.started(); // the breaker is full again: this call is already on the wire
    expect(b.active('request')).toBe(2);
    expect(admit(b)).toBeUndefined();
    late.ended();
    late.ended();
    expect(b.active('request')).toBe(1);
    other.ended();
    expect(b.active('request')).toBe(0);
  });
});

describe('A32 admission through ClusterPool.pick', () => {
  it("a call's second pick gives back its first pick's slot before checking the breaker", () => {
    const decode = <T>(type: { typeUrl: string; decode(c: { serverFeatures: string[] }, a: { type_url: string; value: Uint8Array }): { value?: T; error?: string } }, json: unknown): T => {
      const r = type.decode({ serverFeatures: [] }, { type_url: type.typeUrl, value: encodeProto3Json(type.typeUrl.split('/')[1]!, json) });
      if (r.value === undefined) throw new Error(r.error);
      return r.value;
    };
    const cluster = decode<ClusterResource>(clusterResourceType, { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN' });
    const endpoints = decode<EndpointsResource>(endpointResourceType, {
      cluster_name: 'c',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } }] }],
    });
    const b = breaker(1);
    const snapshot = { name: 'c', cluster, endpoints, breaker: b, error: undefined, outlier: undefined, lb: undefined, hostKeys: ['127.0.0.1:1'] } as unknown as ClusterSnapshot;
    // A subchannel that is always READY, as grpc-js's would be once connected.
    const sc = {
      getConnectivityState: () => connectivityState.READY,
      addConnectivityStateListener: () => {},
      removeConnectivityStateListener: () => {},
      startConnecting: () => {},
    } as unknown as experimental.SubchannelInterface;
    const stats = new Map<string, { activeRequests: number }>();
    const mesh = { random: seededRandom(1), clock: systemClock, hostStats: (k: string) => stats.get(k) ?? stats.set(k, { activeRequests: 0 }).get(k)! } as unknown as Mesh;
    const pool = new ClusterPool(snapshot, { mesh, createSubchannel: () => sc, releaseSubchannel: () => {}, changed: () => {} });
    const call = {};
    expect(pool.pick(undefined, undefined, call).pickResultType).toBe(experimental.PickResultType.COMPLETE);
    expect(b.active('request')).toBe(1);
    // grpc-js picks again for the same call (its pick was not used): still one slot, no overflow.
    expect(pool.pick(undefined, undefined, call).pickResultType).toBe(experimental.PickResultType.COMPLETE);
    expect(b.active('request')).toBe(1);
    // Another call finds the breaker full.
    expect(pool.pick(undefined, undefined, {}).pickResultType).toBe(experimental.PickResultType.DROP);
  });
});
