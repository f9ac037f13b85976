// The xDS client: watchers in, validated resources out. It routes each watched name to
// an xDS server (xdstp:// names to their authority's servers, gRFC A47; others to the
// bootstrap's xds_servers) and keeps one ADS connection per server.
import { ExponentialBackoff, type BackoffOptions } from './backoff.js';
import { loadBootstrap, type Bootstrap, type XdsServerConfig } from './bootstrap.js';
import { systemClock, type Clock } from './clock.js';
import type { GrpcConnectionOptions } from './grpc-stream.js';
import { MeshletError } from './errors.js';
import { nodeMessage } from './node-proto.js';
import { parseResourceName } from './resource-names.js';
import type { XdsResourceType } from './resource-type.js';
import { tracer } from './trace.js';
import type { XdsClientDump, XdsWatcher } from './watchers.js';
import { XdsServerConnection } from './xds-server-connection.js';

const trace = tracer('xds_client');

export interface XdsClientOptions {
  /** A Bootstrap, its JSON object or JSON text; else GRPC_XDS_BOOTSTRAP, else GRPC_XDS_BOOTSTRAP_CONFIG. */
  readonly bootstrap?: Bootstrap | object | string;
  /** Environment for the bootstrap lookup (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Time source and timers (default the system's). */
  readonly clock?: Clock;
  /** Reconnect backoff (gRPC's connection-backoff defaults); `random` makes jitter exact in tests. */
  readonly backoff?: BackoffOptions;
  /** How to reach the xDS servers beyond what the bootstrap says: a TLS name override, the :authority. */
  readonly connection?: GrpcConnectionOptions;
  /** gRFC A57's does-not-exist timeout, default 15 s. */
  readonly resourceDoesNotExistTimeoutMs?: number;
  /** Sent in Node.user_agent_name / user_agent_version (default meshlet and its version). */
  readonly userAgentName?: string;
  readonly userAgentVersion?: string;
}

const DEFAULT_DOES_NOT_EXIST_TIMEOUT_MS = 15_000;

function checkConnectionOptions(options: XdsClientOptions): void {
  if ((options as { channelOptions?: unknown }).channelOptions !== undefined) {
    throw new MeshletError(
      'MESHLET_INVALID_OPTION',
      'channelOptions: the xDS client no longer uses grpc-js; use backoff for reconnects and connection.{tlsServerName, authority, keepaliveTimeMs, keepaliveTimeoutMs}',
    );
  }
  const c = options.connection;
  if (c === undefined) return;
  if (typeof c !== 'object' || c === null) throw new MeshletError('MESHLET_INVALID_OPTION', `connection: expected an object, got ${String(c)}`);
  for (const [key, value] of Object.entries(c)) {
    if (value === undefined) continue;
    switch (key) {
      case 'tlsServerName':
      case 'authority':
        if (typeof value !== 'string' || value === '') {
          throw new MeshletError('MESHLET_INVALID_OPTION', `connection.${key}: expected a non-empty string, got ${JSON.stringify(value)}`);
        }
        break;
      case 'keepaliveTimeMs':
      case 'keepaliveTimeoutMs':
        if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
          throw new MeshletError('MESHLET_INVALID_OPTION', `connection.${key}: expected a positive number of ms, got ${JSON.stringify(value)}`);
        }
        break;
      default:
        throw new MeshletError('MESHLET_INVALID_OPTION', `connection.${key}: unknown option (known: tlsServerName, authority, keepaliveTimeMs, keepaliveTimeoutMs)`);
    }
  }
}

function serverKey(server: XdsServerConfig): string {
  return JSON.stringify([server.serverUri, server.channelCredentials, [...server.serverFeatures].sort()]);
}

export class XdsClient {
  readonly bootstrap: Bootstrap;
  readonly #clock: Clock;
  readonly #options: XdsClientOptions;
  readonly #doesNotExistTimeoutMs: number;
  readonly #connections = new Map<string, XdsServerConnection>();
  #closed = false;

  constructor(options: XdsClientOptions = {}) {
    this.bootstrap = loadBootstrap({
      ...(options.bootstrap !== undefined ? { bootstrap: options.bootstrap } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    checkConnectionOptions(options);
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const timeout = options.resourceDoesNotExistTimeoutMs ?? DEFAULT_DOES_NOT_EXIST_TIMEOUT_MS;
    if (!(timeout >= 0) || !Number.isFinite(timeout)) {
      throw new MeshletError('MESHLET_INVALID_OPTION', `resourceDoesNotExistTimeoutMs: expected a non-negative number, got ${timeout}`);
    }
    this.#doesNotExistTimeoutMs = timeout;
    // Options are checked here, where they are given, not at the first connection.
    if (options.backoff) new ExponentialBackoff(options.backoff);
    const clock = this.#clock as Partial<Clock>;
    if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
      throw new MeshletError('MESHLET_INVALID_OPTION', 'clock: expected { now(), setTimeout(), clearTimeout() }');
    }
  }

  /**
   * Watch one resource. Subscribes synchronously; the request goes out with every other
   * name added in the same turn. Returns the function that cancels this watch.
   */
  watch<T>(type: XdsResourceType<T>, name: string, watcher: XdsWatcher<T>): () => void {
    if (this.#closed) throw new MeshletError('MESHLET_INVALID_OPTION', 'XdsClient is closed');
    const servers = this.#serversFor(name);
    if (servers instanceof MeshletError) {
      let live = true;
      queueMicrotask(() => {
        if (live) watcher.onError(servers);
      });
      return () => {
        live = false;
      };
    }
    // gRFC A71 lists servers in fallback order; meshlet uses the first one for now.
    const server = servers[0]!;
    const key = serverKey(server);
    let connection = this.#connections.get(key);
    if (!connection) {
      trace(`new connection to ${server.serverUri}`);
      connection = new XdsServerConnection(server, {
        clock: this.#clock,
        ...(this.#options.backoff ? { backoff: this.#options.backoff } : {}),
        ...(this.#options.connection ? { connection: this.#options.connection } : {}),
        doesNotExistTimeoutMs: this.#doesNotExistTimeoutMs,
        node: this.bootstrap.node,
        userAgent: {
          ...(this.#options.userAgentName !== undefined ? { name: this.#options.userAgentName } : {}),
          ...(this.#options.userAgentVersion !== undefined ? { version: this.#options.userAgentVersion } : {}),
        },
      });
      this.#connections.set(key, connection);
    }
    return connection.watch(type as XdsResourceType<unknown>, name, watcher as XdsWatcher<unknown>);
  }

  /** The Node this client sends its xDS servers (first request of each stream), for CSDS. */
  node(): Record<string, unknown> {
    return nodeMessage(this.bootstrap.node, {
      ...(this.#options.userAgentName !== undefined ? { name: this.#options.userAgentName } : {}),
      ...(this.#options.userAgentVersion !== undefined ? { version: this.#options.userAgentVersion } : {}),
    });
  }

  /** Everything an admin or CSDS view shows: per type and per resource state. */
  dump(): XdsClientDump {
    const connections = [...this.#connections.values()];
    return {
      types: connections.flatMap((c) => c.typeSnapshots()),
      resources: connections.flatMap((c) => c.resourceSnapshots()),
    };
  }

  /** End every stream and timer. Watchers hear nothing more. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#connections.values()) c.close();
    this.#connections.clear();
  }

  #serversFor(name: string): readonly XdsServerConfig[] | MeshletError {
    const { authority } = parseResourceName(name);
    if (authority === undefined) return this.bootstrap.xdsServers;
    const config = this.bootstrap.authorities[authority];
    if (!config) {
      return new MeshletError(
        'MESHLET_XDS_RESOURCE_INVALID',
        `resource "${name}": authority "${authority}" is not in the bootstrap's authorities`,
      );
    }
    return config.xdsServers.length > 0 ? config.xdsServers : this.bootstrap.xdsServers;
  }
}
