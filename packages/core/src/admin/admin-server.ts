// An opt-in admin HTTP endpoint, in the manner of Envoy's admin interface
// (docs/root/operations/admin.rst): nothing listens unless the application starts it, and
// it binds to loopback unless told otherwise, because what it shows (every resource the
// control plane sent, every endpoint) is for the operator of this host only.
// node:http only: core stays free of undici and grpc-js (the gRPC form, CSDS, is
// @meshlet/xds-client's addCsdsService).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clientStatusJsonChunks, MeshletError, tracer } from '@meshlet/xds-client';
import { getDefaultMesh } from '../default-mesh.js';
import type { Mesh } from '../mesh.js';
import { clustersJsonChunks, clustersTextChunks } from './clusters-view.js';

const trace = tracer('admin');

export interface AdminServerOptions {
  /** The mesh to show (default: the process-wide mesh). */
  readonly mesh?: Mesh;
  /** TCP port (default 0: a free port; read it from `port` or `url`). */
  readonly port?: number;
  /** Interface to bind (default 127.0.0.1). Anything but loopback exposes the mesh's config. */
  readonly host?: string;
  /**
   * The Prometheus text exposition served at /stats/prometheus, e.g. an OpenTelemetry
   * Prometheus exporter's. Default: the mesh's own aggregation of Istio's metrics
   * (`mesh.telemetry.prometheusText()`, on with `telemetry: { prometheus: true }`). When it
   * returns undefined the route answers 404.
   */
  readonly stats?: () => string | undefined | Promise<string | undefined>;
}

export interface AdminServer {
  /** `http://host:port`, ready to print. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stop listening and drop open connections. */
  close(): Promise<void>;
}

interface Route {
  readonly path: string;
  readonly help: string;
  readonly handle: (url: URL, res: ServerResponse) => void | Promise<void>;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

// A dump of tens of thousands of resources takes seconds to render: it goes out in pieces,
// yielding to the event loop every few milliseconds so the application's own requests are
// not held up by an operator's curl.
const SLICE_MS = 5;
const FLUSH_BYTES = 64 * 1024;

/** Resolves once the response can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function sendChunks(res: ServerResponse, type: string, chunks: Iterable<string>): Promise<void> {
  const iterator = chunks[Symbol.iterator]();
  // The first piece is rendered before the status is sent, so a failure can still be a 500.
  const first = iterator.next();
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
  let buffer = first.done ? '' : first.value;
  let sliceStart = performance.now();
  for (let next = iterator.next(); !next.done; next = iterator.next()) {
    buffer += next.value;
    if (buffer.length >= FLUSH_BYTES) {
      const flushed = res.write(buffer);
      buffer = '';
      if (!flushed) await drained(res);
      if (res.destroyed) return;
    }
    if (performance.now() - sliceStart >= SLICE_MS) {
      if (res.destroyed) return; // the client went away: stop rendering
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  res.end(buffer);
}

function validate(options: AdminServerOptions): void {
  const { port, host, stats } = options;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new MeshletError('MESHLET_INVALID_OPTION', `startAdminServer: port: want an integer 0..65535, got ${String(port)}`);
  }
  if (host !== undefined && (typeof host !== 'string' || host === '')) {
    throw new MeshletError('MESHLET_INVALID_OPTION', `startAdminServer: host: want an interface address, got ${JSON.stringify(host)}`);
  }
  if (stats !== undefined && typeof stats !== 'function') {
    throw new MeshletError('MESHLET_INVALID_OPTION', 'startAdminServer: stats: want a function returning Prometheus text');
  }
}

function routes(mesh: Mesh, stats: AdminServerOptions['stats']): Route[] {
  return [
    {
      path: '/config_dump',
      help: "what the process holds from each xDS server, per resource: version, status (ACKED, NACKED, ...), NACK error; CSDS's ClientStatusResponse as proto3 JSON (?names=json for lowerCamelCase, ?resource_contents=false to leave the resources out)",
      handle: (url, res) => {
        const names = url.searchParams.get('names') === 'json' ? 'json' : 'proto';
        const exclude = url.searchParams.get('resource_contents') === 'false';
        return sendChunks(res, JSON_TYPE, clientStatusJsonChunks(() => mesh.xdsClients(), { names, excludeResourceContents: exclude }));
      },
    },
    {
      path: '/clusters',
      help: 'per target and cluster: endpoints with health, outlier ejection and active requests, and the circuit breakers (JSON; ?format=text for Envoy-style lines)',
      handle: (url, res) =>
        url.searchParams.get('format') === 'text'
          ? sendChunks(res, TEXT_TYPE, clustersTextChunks(mesh))
          : sendChunks(res, JSON_TYPE, clustersJsonChunks(mesh)),
    },
    {
      path: '/stats/prometheus',
      help: "Istio's metrics in the Prometheus text format (the mesh's aggregation, or the stats option's source)",
      handle: async (_url, res) => {
        const text = stats ? await stats() : mesh.telemetry.prometheusText();
        if (text === undefined) {
          send(res, 404, TEXT_TYPE, "no metrics here: turn on the mesh's aggregation (telemetry: { prometheus: true }), give startAdminServer a stats option, or scrape your own exporter\n");
          return;
        }
        send(res, 200, PROMETHEUS_TYPE, text);
      },
    },
    {
      path: '/ready',
      help: '200 LIVE once no target is still waiting for its first config, else 503',
      handle: (_url, res) => {
        const pending = mesh.targets().filter((t) => t.state === 'pending');
        if (pending.length === 0) send(res, 200, TEXT_TYPE, 'LIVE\n');
        else send(res, 503, TEXT_TYPE, `INITIALIZING: waiting for the config of ${pending.map((t) => t.authority).join(', ')}\n`);
      },
    },
  ];
}

function indexText(table: readonly Route[]): string {
  const width = Math.max(...table.map((r) => r.path.length));
  return `meshlet admin\n\n${table.map((r) => `  ${r.path.padEnd(width)}  ${r.help}`).join('\n')}\n`;
}

/**
 * Start the admin endpoint. Nothing listens until this is called; close() stops it.
 * Rejects when the address cannot be bound.
 */
export async function startAdminServer(options: AdminServerOptions = {}): Promise<AdminServer> {
  validate(options);
  const mesh = options.mesh ?? getDefaultMesh();
  const table = routes(mesh, options.stats);
  const byPath = new Map(table.map((r) => [r.path, r]));
  const index = indexText(table);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, TEXT_TYPE, 'the meshlet admin endpoint is read-only: use GET\n');
      return;
    }
    if (url.pathname === '/') {
      send(res, 200, TEXT_TYPE, index);
      return;
    }
    const route = byPath.get(url.pathname.length > 1 ? url.pathname.replace(/\/$/, '') : url.pathname);
    if (!route) {
      send(res, 404, TEXT_TYPE, `no such admin route: ${url.pathname}\n\n${index}`);
      return;
    }
    await route.handle(url, res);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      trace(() => `${req.url}: ${(error as Error)?.stack ?? String(error)}`);
      if (!res.headersSent) send(res, 500, TEXT_TYPE, `admin: ${(error as Error)?.message ?? String(error)}\n`);
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      reject(new MeshletError('MESHLET_INVALID_OPTION', `startAdminServer: cannot listen on ${host}:${options.port ?? 0}: ${error.message}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}`;
  trace(() => `admin endpoint listening on ${url}`);
  return {
    url,
    host: address.address,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
