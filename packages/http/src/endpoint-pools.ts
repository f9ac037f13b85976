// One undici connection pool per upstream endpoint, created on first use and closed
// when the endpoint leaves EDS: close() lets the pool's in-flight requests finish
// and refuses new ones, so a config update never cuts a request short.
import { Pool, type Dispatcher } from 'undici';
import { tracer } from '@meshlet/xds-client';

const trace = tracer('http_pools');

export type PoolFactory = (origin: string) => Dispatcher;

const defaultFactory: PoolFactory = (origin) => new Pool(origin);

export class EndpointPools {
  readonly #pools = new Map<string, Dispatcher>();
  readonly #factory: PoolFactory;
  #closed = false;

  constructor(factory: PoolFactory = defaultFactory) {
    this.#factory = factory;
  }

  /** The pool for an origin (`http://host:port`), created on first use. */
  get(origin: string): Dispatcher {
    let pool = this.#pools.get(origin);
    if (!pool) {
      if (this.#closed) throw new Error('EndpointPools is closed');
      pool = this.#factory(origin);
      this.#pools.set(origin, pool);
      trace(() => `open ${origin}`);
    }
    return pool;
  }

  get size(): number {
    return this.#pools.size;
  }

  has(origin: string): boolean {
    return this.#pools.has(origin);
  }

  /** Close, gracefully, the pool of every origin not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const [origin, pool] of this.#pools) {
      if (keep.has(origin)) continue;
      this.#pools.delete(origin);
      trace(() => `close ${origin} (left EDS)`);
      pool.close().catch((err: unknown) => trace(() => `closing ${origin}: ${String(err)}`));
    }
  }

  /** Close every pool after its in-flight requests finish. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close()));
  }

  /** Close every pool now, failing in-flight requests. */
  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }
}
