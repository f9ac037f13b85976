// One undici connection pool per cluster and upstream endpoint (Envoy keeps its connection
// pools per cluster and host), created on first use and closed when the endpoint leaves
// EDS: close() lets the pool's in-flight requests finish and refuses new ones, so a config
// update never cuts a request short.
//
// The cluster's circuit breaker limits its pools (max_connection_pools) and their
// connections (max_connections), as Envoy's do: a pool opens at most max_connections
// connections, and a request that finds them all busy waits in the pool's queue (pending,
// within max_pending_requests). Across a cluster's endpoints, a connection past the cluster's
// max_connections is not opened: the request that needed it fails with UO (503). A new pool
// past max_connection_pools fails its request with UO too. Thresholds are read when a pool
// is made; a pool keeps its connection cap until the endpoint leaves.
import { buildConnector, Pool, type Dispatcher } from 'undici';
import { isBreakerOverflow, type BreakerOverflow, type ClusterCircuitBreaker } from '@meshlet/core';
import { MeshletError, tracer } from '@meshlet/xds-client';

const trace = tracer('http_pools');

/** What a pool is for: a cluster, with its circuit breaker. */
export interface PoolScope {
  /** The cluster's name (a ClusterSnapshot is a PoolScope). */
  readonly name: string;
  readonly breaker?: ClusterCircuitBreaker | undefined;
}

export interface PoolOptions {
  /** Opens the pool's connections within the cluster's max_connections (pass it to `new Pool`). */
  readonly connect?: buildConnector.connector;
  /** The most connections the pool may open: the cluster's max_connections. */
  readonly connections?: number;
}

/** Makes an endpoint's pool; a custom one should pass `options.connect` on to honour max_connections. */
export type PoolFactory = (origin: string, options: PoolOptions) => Dispatcher;

const defaultFactory: PoolFactory = (origin, options) => {
  const o: Pool.Options = {};
  if (options.connect) o.connect = options.connect;
  if (options.connections !== undefined) o.connections = options.connections;
  return new Pool(origin, o);
};

export class EndpointPools {
  readonly #pools = new Map<string, { pool: Dispatcher; release: (() => void) | undefined }>();
  readonly #factory: PoolFactory;
  #closed = false;

  constructor(factory: PoolFactory = defaultFactory) {
    this.#factory = factory;
  }

  /**
   * The pool for `origin` (`http://host:port`) in `scope`'s cluster, created on first use;
   * `key` names it (poolKey(scope.name, origin), made once per host by the caller). Throws
   * MESHLET_OVERFLOW when the cluster's max_connection_pools is reached.
   */
  get(origin: string, key: string = origin, scope?: PoolScope): Dispatcher {
    const entry = this.#pools.get(key);
    if (entry) return entry.pool;
    if (this.#closed) throw new Error('EndpointPools is closed');
    const breaker = scope?.breaker;
    let release: (() => void) | undefined;
    if (breaker !== undefined) {
      const slot = breaker.tryAcquire('connection_pool', 'DEFAULT');
      if (isBreakerOverflow(slot)) throw overflowError(scope!.name, slot);
      release = slot;
    }
    const pool = this.#factory(
      origin,
      breaker !== undefined ? { connect: limitedConnector(scope!.name, breaker), connections: Math.max(1, breaker.thresholds().maxConnections) } : {},
    );
    this.#pools.set(key, { pool, release });
    trace(() => `open ${key.replace('\n', ' ')}`);
    return pool;
  }

  get size(): number {
    return this.#pools.size;
  }

  has(key: string): boolean {
    return this.#pools.has(key);
  }

  /** Close, gracefully, every pool whose key is not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, entry] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      trace(() => `close ${key.replace('\n', ' ')} (left EDS)`);
      entry.pool
        .close()
        .catch((err: unknown) => trace(() => `closing ${key}: ${String(err)}`))
        .finally(() => entry.release?.());
    }
  }

  /** Close every pool after its in-flight requests finish. */
  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(entries.map((e) => e.pool.close().finally(() => e.release?.())));
  }

  /** Close every pool now, failing in-flight requests. */
  async destroy(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(entries.map((e) => e.pool.destroy().finally(() => e.release?.())));
  }
}

/** The key of a cluster's pool for an origin. */
export function poolKey(cluster: string, origin: string): string {
  return `${cluster}\n${origin}`;
}

/** undici's own connector, opening a connection only within the breaker's max_connections. */
function limitedConnector(cluster: string, breaker: ClusterCircuitBreaker): buildConnector.connector {
  const connect = buildConnector({});
  return (options, callback) => {
    const slot = breaker.tryAcquire('connection', 'DEFAULT');
    if (isBreakerOverflow(slot)) {
      trace(() => `${cluster}: max_connections ${slot.limit} reached, not connecting to ${options.hostname}:${options.port}`);
      callback(overflowError(cluster, slot), null);
      return;
    }
    connect(options, (err, socket) => {
      if (err !== null || socket === null) {
        slot();
        callback(err ?? new Error('connect failed'), null);
        return;
      }
      socket.once('close', slot);
      callback(null, socket);
    });
  };
}

/** A circuit breaker's overflow as the request's error (UO, 503). */
export function overflowError(cluster: string, o: BreakerOverflow): MeshletError {
  return new MeshletError('MESHLET_OVERFLOW', `cluster "${cluster}": circuit breaker ${o.resource} limit ${o.limit} (priority ${o.priority}) reached`);
}
