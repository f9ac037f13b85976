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
//
// A plain-HTTP pool of the default factory is named for the Host of the request that made it
// (`http://reviews:9080`) and dials the endpoint's address through its connector. undici
// writes a pool's own Host line from a string it made once, so a request whose Host is that
// name sends no Host header of its own: that saves undici's validation and formatting of the
// header on every request (about 3 % of raw undici's CPU per request, bench/paired.mjs
// raw-origin vs raw-host-sn). A request with any other Host (a rewrite, the caller's own
// header, a name undici would normalise) still sends it as a header.
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

/** An endpoint's pool and the Host it writes itself, if any. */
export interface PoolEntry {
  readonly pool: Dispatcher;
  /** The Host value the pool sends when a request has no Host header (named pools only). */
  readonly host: string | undefined;
  readonly release: (() => void) | undefined;
}

export class EndpointPools {
  readonly #pools = new Map<string, PoolEntry>();
  readonly #factory: PoolFactory | undefined;
  #closed = false;

  constructor(factory?: PoolFactory) {
    this.#factory = factory;
  }

  /**
   * The pool for `origin` (`http://host:port`) in `scope`'s cluster, created on first use;
   * `key` names it (poolKey(scope.name, origin), made once per host by the caller). Throws
   * MESHLET_OVERFLOW when the cluster's max_connection_pools is reached.
   */
  get(origin: string, key: string = origin, scope?: PoolScope): Dispatcher {
    return this.entry(origin, key, scope, undefined).pool;
  }

  /**
   * The pool entry for `origin` in `scope`'s cluster, as get(); a plain-HTTP pool that the
   * default factory makes here is named for `host` (the Host of the request that needs it),
   * and its `host` says so.
   */
  entry(origin: string, key: string, scope: PoolScope | undefined, host: string | undefined): PoolEntry {
    const existing = this.#pools.get(key);
    if (existing) return existing;
    if (this.#closed) throw new Error('EndpointPools is closed');
    const breaker = scope?.breaker;
    let release: (() => void) | undefined;
    if (breaker !== undefined) {
      const slot = breaker.tryAcquire('connection_pool', 'DEFAULT');
      if (isBreakerOverflow(slot)) throw overflowError(scope!.name, slot);
      release = slot;
    }
    const options: PoolOptions =
      breaker !== undefined ? { connect: limitedConnector(scope!.name, breaker), connections: Math.max(1, breaker.thresholds().maxConnections) } : {};
    const named = this.#factory === undefined && host !== undefined ? namedOrigin(origin, host) : undefined;
    const pool = named !== undefined ? namedPool(named, origin, options) : (this.#factory ?? defaultFactory)(origin, options);
    const entry: PoolEntry = { pool, host: named === undefined ? undefined : host, release };
    this.#pools.set(key, entry);
    trace(() => `open ${key.replace('\n', ' ')}${named === undefined ? '' : ` as ${named}`}`);
    return entry;
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

/**
 * `http://<host>` when undici, given it as a pool's origin, would write exactly `host` as the
 * Host line (it writes the URL's hostname and any port that is not the scheme's default, so
 * `Name:80` would come out `name`); otherwise undefined, and the pool keeps the endpoint's name.
 */
function namedOrigin(origin: string, host: string): string | undefined {
  if (!origin.startsWith('http://') || host === '') return undefined;
  let url: URL;
  try {
    url = new URL(`http://${host}`);
  } catch {
    return undefined;
  }
  // A path, query or userinfo in `host` leaves it out of the line too, so they fail here.
  const line = url.port ? `${url.hostname}:${url.port}` : url.hostname;
  return line === host ? `http://${host}` : undefined;
}

/** A pool named `named` whose connections go to `endpoint` (`http://address:port`). */
function namedPool(named: string, endpoint: string, options: PoolOptions): Dispatcher {
  const url = new URL(endpoint);
  // URL keeps an IPv6 address in brackets; a socket wants it bare.
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port || '80';
  const base = options.connect ?? buildConnector({});
  const connect: buildConnector.connector = (o, callback) => base({ ...o, hostname, host: url.host, port }, callback);
  return defaultFactory(named, { connect, connections: options.connections });
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
