import { describe, expect, it } from 'vitest';
import type { CircuitBreakers, CircuitBreakerThresholds } from '@meshlet/xds-client';
import {
  CircuitBreakerRegistry,
  ClusterCircuitBreaker,
  isBreakerOverflow,
  type BreakerRelease,
  type BreakerResource,
} from '../src/circuit-breaker.js';

const DEFAULTS: CircuitBreakerThresholds = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  retryBudget: undefined,
  trackRemaining: false,
  maxConnectionPools: undefined,
};

function breakers(def: Partial<CircuitBreakerThresholds>, high: Partial<CircuitBreakerThresholds> = {}): CircuitBreakers {
  return { default: { ...DEFAULTS, ...def }, high: { ...DEFAULTS, ...high } };
}

function acquire(b: ClusterCircuitBreaker, r: BreakerResource, n: number, p: 'DEFAULT' | 'HIGH' = 'DEFAULT'): BreakerRelease[] {
  const out: BreakerRelease[] = [];
  for (let i = 0; i < n; i++) {
    const got = b.tryAcquire(r, p);
    if (isBreakerOverflow(got)) throw new Error(`overflow at ${i}`);
    out.push(got);
  }
  return out;
}

describe('circuit breaker thresholds', () => {
  const cases: [BreakerResource, Partial<CircuitBreakerThresholds>][] = [
    ['connection', { maxConnections: 2 }],
    ['pending', { maxPendingRequests: 2 }],
    ['request', { maxRequests: 2 }],
    ['retry', { maxRetries: 2 }],
    ['connection_pool', { maxConnectionPools: 2 }],
  ];
  for (const [resource, t] of cases) {
    it(`${resource}: overflows with UO at the limit and admits again after a release`, () => {
      const b = new ClusterCircuitBreaker(breakers(t));
      const held = acquire(b, resource, 2);
      expect(b.canAcquire(resource)).toBe(false);
      const over = b.tryAcquire(resource);
      expect(isBreakerOverflow(over)).toBe(true);
      expect(over).toMatchObject({ overflow: true, flag: 'UO', resource, priority: 'DEFAULT', limit: 2 });
      expect(b.state(resource)).toMatchObject({ active: 2, limit: 2, open: true, remaining: 0 });
      held[0]!();
      expect(b.active(resource)).toBe(1);
      expect(b.state(resource).open).toBe(false);
      const again = b.tryAcquire(resource);
      expect(isBreakerOverflow(again)).toBe(false);
    });
  }

  it('a release is idempotent', () => {
    const b = new ClusterCircuitBreaker(breakers({ maxRequests: 1 }));
    const [r] = acquire(b, 'request', 1);
    r!();
    r!();
    expect(b.active('request')).toBe(0);
    acquire(b, 'request', 1);
    expect(b.active('request')).toBe(1);
  });

  it('take() and give() count without a release function; take() overflows at the limit', () => {
    const b = new ClusterCircuitBreaker(breakers({ maxPendingRequests: 2 }));
    expect(b.take('pending')).toBeUndefined();
    expect(b.take('pending')).toBeUndefined();
    expect(b.take('pending')).toMatchObject({ overflow: true, flag: 'UO', resource: 'pending', limit: 2 });
    expect(b.active('pending')).toBe(2);
    b.give('pending');
    expect(b.active('pending')).toBe(1);
    expect(b.take('pending', 'HIGH')).toBeUndefined(); // HIGH counts on its own
    expect(b.active('pending', 'HIGH')).toBe(1);
    expect(b.take('pending')).toBeUndefined();
  });

  it('count() counts past the limit, and give() takes it back', () => {
    const b = new ClusterCircuitBreaker(breakers({ maxRequests: 1 }));
    expect(b.take('request')).toBeUndefined();
    b.count('request');
    expect(b.active('request')).toBe(2);
    expect(b.take('request')).toMatchObject({ overflow: true, resource: 'request' });
    b.give('request');
    b.give('request');
    expect(b.active('request')).toBe(0);
  });

  it('DEFAULT and HIGH priorities count separately with their own limits', () => {
    const b = new ClusterCircuitBreaker(breakers({ maxRequests: 1 }, { maxRequests: 3 }));
    acquire(b, 'request', 1, 'DEFAULT');
    expect(isBreakerOverflow(b.tryAcquire('request', 'DEFAULT'))).toBe(true);
    acquire(b, 'request', 3, 'HIGH');
    expect(b.tryAcquire('request', 'HIGH')).toMatchObject({ flag: 'UO', priority: 'HIGH', limit: 3 });
  });

  it('defaults are Envoy’s: 1024 connections, pending and requests, 3 retries, unlimited pools', () => {
    const b = new ClusterCircuitBreaker(breakers({}));
    acquire(b, 'request', 1024);
    expect(isBreakerOverflow(b.tryAcquire('request'))).toBe(true);
    acquire(b, 'retry', 3);
    expect(isBreakerOverflow(b.tryAcquire('retry'))).toBe(true);
    acquire(b, 'connection_pool', 5000);
  });

  it('counters outlive a threshold change; the newest thresholds apply', () => {
    const reg = new CircuitBreakerRegistry();
    const b = reg.get('c1', breakers({ maxRequests: 5 }));
    const held = acquire(b, 'request', 4);
    // A new cluster resource lowers the limit below what is in flight.
    const same = reg.get('c1', breakers({ maxRequests: 3 }));
    expect(same).toBe(b);
    expect(b.active('request')).toBe(4);
    expect(isBreakerOverflow(b.tryAcquire('request'))).toBe(true);
    held[0]!();
    held[1]!();
    expect(isBreakerOverflow(b.tryAcquire('request'))).toBe(false); // 2 in flight < 3
    expect(isBreakerOverflow(b.tryAcquire('request'))).toBe(true); // 3: full again
    expect(b.active('request')).toBe(3);
    reg.get('c1', breakers({ maxRequests: 10 }));
    acquire(b, 'request', 7);
    expect(isBreakerOverflow(b.tryAcquire('request'))).toBe(true);
  });

  it('the registry keeps a busy breaker of a removed cluster until it is idle', () => {
    const reg = new CircuitBreakerRegistry();
    const b = reg.get('gone', breakers({}));
    reg.get('stays', breakers({}));
    const [r] = acquire(b, 'request', 1);
    reg.retain(['stays']);
    expect(reg.peek('gone')).toBe(b);
    r!();
    reg.retain(['stays']);
    expect(reg.peek('gone')).toBeUndefined();
    expect(reg.size).toBe(1);
  });
});

describe('retry budget (Envoy RetryBudgetImpl)', () => {
  it('replaces max_retries: never below min_retry_concurrency', () => {
    const b = new ClusterCircuitBreaker(breakers({ maxRetries: 100, retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } }));
    // No requests active: the budget is min_retry_concurrency = 3, not max_retries = 100.
    acquire(b, 'retry', 3);
    expect(b.tryAcquire('retry')).toMatchObject({ flag: 'UO', resource: 'retry', limit: 3 });
    expect(b.state('retry').remaining).toBe(0);
  });

  it('is budget_percent of active plus pending requests, truncated', () => {
    const b = new ClusterCircuitBreaker(breakers({ retryBudget: { budgetPercent: 20, minRetryConcurrency: 1 } }));
    acquire(b, 'request', 40);
    acquire(b, 'pending', 9);
    // 20 % of 49 = 9.8 → 9.
    expect(b.state('retry').limit).toBe(9);
    acquire(b, 'retry', 9);
    expect(isBreakerOverflow(b.tryAcquire('retry'))).toBe(true);
    // One more pending request: 20 % of 50 = 10.
    acquire(b, 'pending', 1);
    expect(isBreakerOverflow(b.tryAcquire('retry'))).toBe(false);
    expect(isBreakerOverflow(b.tryAcquire('retry'))).toBe(true);
  });

  it('follows the traffic down: fewer active requests, a smaller budget', () => {
    const b = new ClusterCircuitBreaker(breakers({ retryBudget: { budgetPercent: 50, minRetryConcurrency: 2 } }));
    const reqs = acquire(b, 'request', 10);
    expect(b.state('retry').limit).toBe(5);
    for (const r of reqs.slice(0, 8)) r();
    expect(b.state('retry').limit).toBe(2); // 50 % of 2 = 1, raised to min 2
  });

  it('budget_percent 100 with min 0 allows exactly one retry per active request', () => {
    const b = new ClusterCircuitBreaker(breakers({ retryBudget: { budgetPercent: 100, minRetryConcurrency: 0 } }));
    expect(isBreakerOverflow(b.tryAcquire('retry'))).toBe(true);
    acquire(b, 'request', 2);
    acquire(b, 'retry', 2);
    expect(isBreakerOverflow(b.tryAcquire('retry'))).toBe(true);
  });
});
