// meshlet's xDS management server: ADS state-of-the-world over grpc-js, serving
// resources set from code (tests) or loaded from a directory of YAML/JSON files (the
// demo, `meshlet control-plane`). See DESIGN.md, "Layers".
import { EventEmitter } from 'node:events';
import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { Server, ServerCredentials, status, type ServerDuplexStream } from '@grpc/grpc-js';
import { MeshletError, tracer } from '@meshlet/xds-client';
import { adsServiceDefinition, type DiscoveryRequest } from './ads-service.js';
import { ConfigDirWatcher, type ConfigLoadResult } from './config-dir.js';
import { RequestLog, type RecordedRequest } from './request-log.js';
import { encodeResourceInput, type EncodedAny, type ResourceInput, type StoredResource } from './resource-input.js';
import { SnapshotStore } from './snapshot-store.js';
import { SotwStream } from './sotw-stream.js';
import type { PreparedResponse } from './wire.js';

const trace = tracer('control_plane');

/** How long stop() waits for clients to see their streams end before cutting connections. */
const STOP_GRACE_MS = 1000;

export interface ControlPlaneOptions {
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (ephemeral). */
  port?: number;
  /** Listen on this unix socket path instead of host:port. */
  unixSocket?: string;
  /** Serve the resources in this directory's *.yaml, *.yml and *.json files, reloading on change. */
  configDir?: string;
  /** Debounce for config directory changes, ms. Default 100. */
  configDebounceMs?: number;
  /** Where config directory problems and reloads are logged, one line each. Default: stderr. */
  log?: (line: string) => void;
  /** Keep at most this many recorded requests (oldest dropped). Default: all. */
  maxRecordedRequests?: number;
  /** Sent as `DiscoveryResponse.control_plane.identifier`. Default 'meshlet-control-plane'. */
  identifier?: string;
}

export interface ListeningAddress {
  port: number;
  /** Usable as an xDS `server_uri`: '127.0.0.1:39123', '[::1]:39123' or 'unix:///tmp/x.sock'. */
  address: string;
}

/**
 * An xDS management server. Resources are kept per type URL, encoded once when set;
 * every change bumps the type's version and is pushed to the streams it concerns.
 *
 * Events: 'request' (RecordedRequest, every request), 'ack' and 'nack' (RecordedRequest),
 * 'stream' ({ streamId, peer }, a stream opened), 'streamClosed' ({ streamId }),
 * 'reload' (a config directory load that applied, with `changedTypes`) and
 * 'configError' (a config directory load that did not, with `errors`).
 *
 * Only state-of-the-world ADS is served today; a delta handler would share the same
 * SnapshotStore (which keeps a version per resource for it) beside SotwStream.
 */
export class ControlPlane extends EventEmitter {
  private readonly store = new SnapshotStore();
  private readonly log: RequestLog;
  private readonly streams = new Set<SotwStream>();
  private readonly options: ControlPlaneOptions;
  private server: Server | undefined;
  private listening: ListeningAddress | undefined;
  /** The port bound last, reused by a later start() so a stop/start is a restart. */
  private lastPort: number | undefined;
  private nextStreamId = 1;
  private watcher: ConfigDirWatcher | undefined;
  /** Types the config directory has supplied, so a type whose files are all gone is emptied. */
  private readonly typesFromFiles = new Set<string>();

  constructor(options: ControlPlaneOptions = {}) {
    super();
    validateOptions(options);
    this.options = { ...options };
    // unix:// needs an absolute path (unix://rel would read `rel` as an authority).
    if (options.unixSocket !== undefined) this.options.unixSocket = resolvePath(options.unixSocket);
    this.log = new RequestLog(options.maxRecordedRequests ?? Infinity);
  }

  /** Every DiscoveryRequest received, in order. */
  get requests(): RecordedRequest[] {
    return this.log.entries;
  }

  /** Open ADS streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Where the server listens, once started. */
  get address(): ListeningAddress | undefined {
    return this.listening;
  }

  async start(options: { port?: number } = {}): Promise<ListeningAddress> {
    if (this.listening) throw new MeshletError('MESHLET_INVALID_OPTION', 'control plane already started');
    if (options.port !== undefined) checkPort('port', options.port);
    if (this.options.configDir !== undefined && !this.watcher) {
      this.watcher = new ConfigDirWatcher(this.options.configDir, {
        debounceMs: this.options.configDebounceMs ?? 100,
        onLoad: (result) => this.applyConfig(result),
      });
      this.watcher.start();
    }
    const server = new Server();
    server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: ServerDuplexStream<DiscoveryRequest, PreparedResponse>) => this.acceptStream(call),
    });
    let target: string;
    let address: (port: number) => string;
    if (this.options.unixSocket !== undefined) {
      await removeStaleSocket(this.options.unixSocket);
      target = `unix://${this.options.unixSocket}`;
      address = () => target;
    } else {
      const host = this.options.host ?? '127.0.0.1';
      const hostPart = host.includes(':') ? `[${host}]` : host;
      const port = options.port ?? this.lastPort ?? this.options.port ?? 0;
      target = `${hostPart}:${port}`;
      address = (p) => `${hostPart}:${p}`;
    }
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(target, ServerCredentials.createInsecure(), (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
    }).catch((err: unknown) => {
      this.stopWatcher();
      server.forceShutdown();
      throw new MeshletError('MESHLET_INVALID_OPTION', `control plane cannot listen on ${target}: ${errorMessage(err)}`, { cause: err });
    });
    this.server = server;
    if (this.options.unixSocket === undefined) this.lastPort = port;
    this.listening = { port, address: address(port) };
    trace(`listening on ${this.listening.address}`);
    return this.listening;
  }

  /** Close every stream (UNAVAILABLE, so clients reconnect) and the server. start() may be called again. */
  async stop(): Promise<void> {
    this.stopWatcher();
    const server = this.server;
    this.server = undefined;
    this.listening = undefined;
    for (const stream of [...this.streams]) stream.shutdown('meshlet control plane stopping');
    this.streams.clear();
    if (!server) return;
    await new Promise<void>((resolve) => {
      // The streams are ended, so a graceful shutdown lets their UNAVAILABLE status reach
      // the clients; a client that does not close its side is cut off after the grace.
      // (grpc-js does not call tryShutdown's callback once forceShutdown has run.)
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, STOP_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    trace('stopped');
  }

  /** Replace the whole set of resources of `typeUrl`. */
  setResources(typeUrl: string, resources: readonly ResourceInput[]): void {
    this.store.replace(typeUrl, encodeAll(typeUrl, resources));
  }

  /** Add the given resources, replacing any with the same name. */
  updateResources(typeUrl: string, resources: readonly ResourceInput[]): void {
    this.store.upsert(typeUrl, encodeAll(typeUrl, resources));
  }

  removeResources(typeUrl: string, names: readonly string[]): void {
    this.store.remove(typeUrl, names);
  }

  /**
   * Replace the whole set with bytes sent exactly as given: for testing a client against
   * undecodable resources, a wrong Any type URL, or one name sent twice.
   */
  setRawResources(typeUrl: string, raw: readonly { name: string; any: EncodedAny }[]): void {
    this.store.replace(typeUrl, raw.map(({ name, any }) => ({ name, any: { type_url: any.type_url, value: any.value } })));
  }

  getResources(typeUrl: string): ReadonlyMap<string, StoredResource> {
    return this.store.resources(typeUrl);
  }

  /** The version of `typeUrl`: '0' before anything was set, bumped on every change (setting equal bytes is no change). */
  version(typeUrl: string): string {
    return this.store.version(typeUrl);
  }

  /** Type URLs that have ever been set. */
  typeUrls(): string[] {
    return this.store.typeUrls();
  }

  acks(typeUrl?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === 'ack' && (typeUrl === undefined || r.typeUrl === typeUrl));
  }

  nacks(typeUrl?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === 'nack' && (typeUrl === undefined || r.typeUrl === typeUrl));
  }

  /** The first request, past or future, matching `predicate`. Rejects after `timeoutMs` (default 5000) listing what arrived. */
  waitForRequest(predicate: (r: RecordedRequest) => boolean, timeoutMs = 5000): Promise<RecordedRequest> {
    return this.log.waitFor(predicate, timeoutMs);
  }

  /** Reload the config directory now (normally done on file changes). */
  reloadConfig(): ConfigLoadResult | undefined {
    return this.watcher?.reload();
  }

  private acceptStream(call: ServerDuplexStream<DiscoveryRequest, PreparedResponse>): void {
    if (!this.server) {
      // Arrived while stop() is closing the server.
      call.emit('error', Object.assign(new Error('meshlet control plane stopping'), { code: status.UNAVAILABLE }));
      return;
    }
    const streamId = this.nextStreamId++;
    const stream = new SotwStream(call, {
      streamId,
      store: this.store,
      controlPlaneIdentifier: this.options.identifier ?? 'meshlet-control-plane',
      record: (request) => {
        this.log.add(request);
        this.emit('request', request);
        if (request.kind === 'ack') this.emit('ack', request);
        if (request.kind === 'nack') this.emit('nack', request);
      },
      onClose: (s) => {
        if (this.streams.delete(s)) this.emit('streamClosed', { streamId: s.streamId });
      },
    });
    this.streams.add(stream);
    this.emit('stream', { streamId, peer: call.getPeer() });
  }

  private applyConfig(result: ConfigLoadResult): void {
    const logLine = this.options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    if (!result.ok) {
      for (const e of result.errors) logLine(`meshlet control-plane: ${e.file}: ${e.message} (keeping that file's last good resources)`);
      this.emit('configError', result);
    }
    const changedTypes: string[] = [];
    const types = new Set([...this.typesFromFiles, ...result.byType.keys()]);
    for (const typeUrl of types) {
      const change = this.store.replace(typeUrl, result.byType.get(typeUrl) ?? []);
      if (change) changedTypes.push(typeUrl);
      this.typesFromFiles.add(typeUrl);
    }
    this.emit('reload', { ...result, changedTypes });
  }

  private stopWatcher(): void {
    this.watcher?.stop();
    this.watcher = undefined;
  }
}

function encodeAll(typeUrl: string, resources: readonly ResourceInput[]): { name: string; any: EncodedAny }[] {
  return resources.map((input, i) => {
    try {
      return encodeResourceInput(typeUrl, input);
    } catch (err) {
      throw new MeshletError('MESHLET_XDS_RESOURCE_INVALID', `resource [${i}] of ${typeUrl}: ${errorMessage(err)}`, { cause: err });
    }
  });
}

function validateOptions(options: ControlPlaneOptions): void {
  if (options.port !== undefined) checkPort('port', options.port);
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
    throw new MeshletError('MESHLET_INVALID_OPTION', 'control plane option host: want a non-empty string');
  }
  if (options.unixSocket !== undefined && (typeof options.unixSocket !== 'string' || options.unixSocket === '')) {
    throw new MeshletError('MESHLET_INVALID_OPTION', 'control plane option unixSocket: want a non-empty path');
  }
  if (options.configDir !== undefined && (typeof options.configDir !== 'string' || options.configDir === '')) {
    throw new MeshletError('MESHLET_INVALID_OPTION', 'control plane option configDir: want a non-empty path');
  }
}

function checkPort(name: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MeshletError('MESHLET_INVALID_OPTION', `control plane option ${name}: want an integer 0..65535, got ${String(port)}`);
  }
}

/**
 * A socket file left by a process that died makes bind fail with EADDRINUSE. Remove it,
 * but only when nothing answers on it: a live server's socket is left alone (and bind
 * then reports the conflict).
 */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!lstatSync(path).isSocket()) return;
  } catch {
    return; // absent
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!live) {
    try {
      unlinkSync(path);
    } catch {
      // Someone else removed it first.
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
