// The state-of-the-world protocol with one xDS server: what is subscribed per type, the
// cache of resources that server owns, ACK/NACK, deletion by omission and the
// does-not-exist timers. The cache outlives the ADS stream; a new stream resends every
// subscription with the last accepted version.
//   Envoy xDS protocol doc: ACK/NACK, "Deleting resources", "Resource warming".
//   gRFC A46 (per-resource NACK), A53 (ignore_resource_deletion), A57 (does-not-exist timer).
import { AdsStream, type OutgoingDiscoveryRequest } from './ads-stream.js';
import type { BackoffOptions } from './backoff.js';
import type { NodeConfig, XdsServerConfig } from './bootstrap.js';
import type { GrpcConnectionOptions } from './grpc-stream.js';
import { wallTimeOf, type Clock, type TimerHandle } from './clock.js';
import { MeshletError } from './errors.js';
import type {
  envoy_service_discovery_v3_DiscoveryResponse as DiscoveryResponse,
  envoy_service_discovery_v3_Resource as ResourceWrapper,
} from './generated/pb.js';
import { nodeMessage } from './node-proto.js';
import { decodeMessage } from './proto.js';
import { parseResourceName } from './resource-names.js';
import type { AnyMessage, DecodeContext, DecodeResult, XdsResourceType } from './resource-type.js';
import { tracer } from './trace.js';
import type { ResourceErrorState, ResourceSnapshot, ResourceState, TypeSnapshot, XdsWatcher } from './watchers.js';

const trace = tracer('xds_client');

const RESOURCE_WRAPPER_TYPE_URL = 'type.googleapis.com/envoy.service.discovery.v3.Resource';
const WILDCARD = '*';
// google.rpc.Code.INVALID_ARGUMENT, the code gRPC puts in a NACK's error_detail.
const INVALID_ARGUMENT = 3;

export interface ServerConnectionOptions {
  readonly clock: Clock;
  readonly backoff?: BackoffOptions;
  readonly connection?: GrpcConnectionOptions;
  readonly doesNotExistTimeoutMs: number;
  readonly node: NodeConfig;
  readonly userAgent?: { name?: string; version?: string };
}

interface ResourceEntry {
  readonly name: string;
  state: ResourceState;
  hasValue: boolean;
  value: unknown;
  raw: AnyMessage | undefined;
  /** The accepted bytes, to tell an unchanged resend from a change. */
  rawKey: Uint8Array | undefined;
  /** The rejected bytes, so a resend of the same bad resource is not reported twice. */
  errorKey: Uint8Array | undefined;
  version: string;
  lastUpdated: number | undefined;
  error: ResourceErrorState | undefined;
  readonly watchers: Set<XdsWatcher<unknown>>;
  timer: TimerHandle | undefined;
}

interface TypeState {
  readonly type: XdsResourceType<unknown>;
  /** Last ACKed version_info: survives stream restarts, sent on the new stream. */
  versionInfo: string;
  /** Nonce of the last response on the current stream. */
  nonce: string;
  readonly entries: Map<string, ResourceEntry>;
  /** Resources seen through a `*` subscription: name → accepted bytes. */
  readonly wildcardSeen: Map<string, Uint8Array>;
  /**
   * The last response's resources and their decode results, by position: a SotW server
   * resends everything, mostly in the same order, so comparing bytes with the resource
   * at the same index skips decoding whatever did not change.
   */
  lastDecoded: Array<{ readonly bytes: Uint8Array; readonly result: DecodeResult<unknown> }>;
  /** Whether a request for the type went out on the current stream. */
  sentOnStream: boolean;
  /** A request for the type named a resource (not only `*`) on the current stream. */
  namedOnStream: boolean;
  /** The resource_names of the last request sent, joined, to skip a request that changes nothing. */
  lastSentNames: string | undefined;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** One watch of one watcher (the same watcher may watch twice; each watch cancels alone). A class, not closures: a mesh holds tens of thousands. */
class WatchHandle implements XdsWatcher<unknown> {
  readonly #watcher: XdsWatcher<unknown>;
  constructor(watcher: XdsWatcher<unknown>) {
    this.#watcher = watcher;
  }
  onChanged(value: unknown): void {
    this.#watcher.onChanged(value);
  }
  onError(error: MeshletError): void {
    this.#watcher.onError(error);
  }
  onDoesNotExist(): void {
    this.#watcher.onDoesNotExist();
  }
  onResourceNames(names: ReadonlySet<string>): void {
    this.#watcher.onResourceNames?.(names);
  }
}

function notify(watchers: Set<XdsWatcher<unknown>>, call: (w: XdsWatcher<unknown>) => void): void {
  for (const watcher of [...watchers]) {
    // A watcher cancelled by another watcher's callback hears nothing more.
    if (!watchers.has(watcher)) continue;
    try {
      call(watcher);
    } catch (error) {
      // One watcher's bug must not stop the others nor the ACK.
      trace(`watcher threw: ${(error as Error)?.stack ?? String(error)}`);
    }
  }
}

export class XdsServerConnection {
  readonly server: XdsServerConfig;
  readonly #options: ServerConnectionOptions;
  readonly #stream: AdsStream;
  readonly #types = new Map<string, TypeState>();
  readonly #dirty = new Set<string>();
  readonly #decodeContext: DecodeContext;
  #flushScheduled = false;
  #nodeSent = false;
  #closed = false;

  constructor(server: XdsServerConfig, options: ServerConnectionOptions) {
    this.server = server;
    this.#options = options;
    this.#decodeContext = Object.freeze({ serverFeatures: server.serverFeatures });
    this.#stream = new AdsStream(
      server,
      {
        onStreamStart: () => this.#onStreamStart(),
        onResponse: (response) => this.#onResponse(response),
        onStreamEnd: (error, received) => this.#onStreamEnd(error, received),
      },
      {
        clock: options.clock,
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.connection ? { connection: options.connection } : {}),
      },
    );
  }

  /** Subscribe synchronously; the request goes out on the next flush, batched with others. */
  watch(type: XdsResourceType<unknown>, name: string, watcher: XdsWatcher<unknown>): () => void {
    const key = parseResourceName(name).key;
    let typeState = this.#types.get(type.typeUrl);
    if (!typeState) {
      typeState = {
        type,
        versionInfo: '',
        nonce: '',
        entries: new Map(),
        wildcardSeen: new Map(),
        lastDecoded: [],
        sentOnStream: false,
        namedOnStream: false,
        lastSentNames: undefined,
      };
      this.#types.set(type.typeUrl, typeState);
    }
    // The same watcher object may watch twice; each watch gets its own cancel.
    const handle: XdsWatcher<unknown> = new WatchHandle(watcher);
    let entry = typeState.entries.get(key);
    if (!entry) {
      entry = {
        name: key,
        state: 'requested',
        hasValue: false,
        value: undefined,
        raw: undefined,
        rawKey: undefined,
        errorKey: undefined,
        version: '',
        lastUpdated: undefined,
        error: undefined,
        watchers: new Set(),
        timer: undefined,
      };
      typeState.entries.set(key, entry);
      this.#markDirty(type.typeUrl);
    } else {
      // A later watcher learns the cached state, asynchronously like the first one.
      const cached = entry;
      queueMicrotask(() => {
        if (!cached.watchers.has(handle)) return;
        if (cached.hasValue) watcher.onChanged(cached.value);
        else if (cached.state === 'does_not_exist') watcher.onDoesNotExist();
        else if (cached.error) {
          watcher.onError(new MeshletError('MESHLET_XDS_RESOURCE_INVALID', cached.error.message));
        }
      });
    }
    entry.watchers.add(handle);
    const watched = entry;
    const state = typeState;
    return () => {
      if (!watched.watchers.delete(handle)) return;
      if (watched.watchers.size > 0) return;
      // The entry stays until the flush: a consumer that cancels and re-watches the same
      // name in one turn (rebuilding its watches on a config change) keeps the cached
      // value, and the server sees no change at all.
      if (state.entries.get(key) === watched) this.#markDirty(type.typeUrl);
    };
  }

  /** True when nothing is subscribed here any more. */
  get isIdle(): boolean {
    for (const t of this.#types.values()) for (const e of t.entries.values()) if (e.watchers.size > 0) return false;
    return true;
  }

  /** Drop the entries nobody watches any more. */
  #prune(t: TypeState): void {
    for (const [key, entry] of t.entries) {
      if (entry.watchers.size > 0) continue;
      this.#clearTimer(entry);
      t.entries.delete(key);
    }
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#types.values()) for (const e of t.entries.values()) this.#clearTimer(e);
    this.#stream.close();
  }

  typeSnapshots(): TypeSnapshot[] {
    return [...this.#types.values()].map((t) => ({
      serverUri: this.server.serverUri,
      typeUrl: t.type.typeUrl,
      versionInfo: t.versionInfo,
      nonce: t.nonce,
    }));
  }

  resourceSnapshots(): ResourceSnapshot[] {
    const out: ResourceSnapshot[] = [];
    for (const t of this.#types.values()) {
      for (const e of t.entries.values()) {
        out.push({
          serverUri: this.server.serverUri,
          typeUrl: t.type.typeUrl,
          name: e.name,
          state: e.state,
          version: e.version,
          ...(e.lastUpdated !== undefined ? { lastUpdated: e.lastUpdated } : {}),
          ...(e.error ? { error: e.error } : {}),
          ...(e.hasValue ? { value: e.value } : {}),
          ...(e.raw ? { raw: e.raw } : {}),
          ...(e.state === 'nacked' && e.errorKey ? { rejected: { type_url: t.type.typeUrl, value: e.errorKey } } : {}),
        });
      }
      for (const [name, bytes] of t.wildcardSeen) {
        if (t.entries.has(name)) continue; // watched by name as well: shown above
        out.push({
          serverUri: this.server.serverUri,
          typeUrl: t.type.typeUrl,
          name,
          state: 'acked',
          version: t.versionInfo,
          raw: { type_url: t.type.typeUrl, value: bytes },
          viaWildcard: true,
        });
      }
    }
    return out;
  }

  #markDirty(typeUrl: string): void {
    this.#dirty.add(typeUrl);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Every name added in this turn of the event loop goes out in one request: a route
    // table naming 1,000 clusters is one CDS request.
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#closed) return;
    for (const typeUrl of this.#dirty) {
      const t = this.#types.get(typeUrl);
      if (t) this.#prune(t);
    }
    if (!this.#stream.isOpen) {
      if (this.isIdle) return;
      // The stream opens lazily, here, so the first request already carries every name
      // of this turn; a new stream sends every subscription (#onStreamStart). While a
      // reconnect is pending this does nothing.
      this.#stream.start();
      return;
    }
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const typeUrl of dirty) {
      const t = this.#types.get(typeUrl);
      if (!t) continue;
      // After the last name goes, an empty list unsubscribes; on a stream that never
      // named the type there is nothing to undo (and empty would mean wildcard).
      if (t.entries.size === 0 && !t.sentOnStream) continue;
      if (t.lastSentNames === [...t.entries.keys()].join('\n')) continue;
      this.#sendRequest(t, {});
    }
  }

  #sendRequest(t: TypeState, extra: { errorMessage?: string }): void {
    this.#prune(t);
    let names = [...t.entries.keys()];
    // A wildcard alone goes out as an empty list, the legacy wildcard every server knows
    // (istiod's grpc generator reads "*" as a host name); valid while the stream never
    // named anything else for the type (xDS protocol, "How the client specifies what
    // resources to return").
    if (names.length === 1 && names[0] === WILDCARD && !t.namedOnStream) names = [];
    else if (names.some((n) => n !== WILDCARD)) t.namedOnStream = true;
    const request: OutgoingDiscoveryRequest = {
      type_url: t.type.typeUrl,
      version_info: t.versionInfo,
      response_nonce: t.nonce,
      resource_names: names,
    };
    if (extra.errorMessage !== undefined) {
      request.error_detail = { code: INVALID_ARGUMENT, message: extra.errorMessage, details: [] };
    }
    if (!this.#nodeSent) {
      // gRPC sends the node only on the first request of a stream.
      request.node = nodeMessage(this.#options.node, this.#options.userAgent) as unknown as OutgoingDiscoveryRequest['node'];
    }
    // gRFC A57: the does-not-exist timer starts when the request naming the resource is
    // actually sent (not while the channel is still connecting), and only for resources
    // with nothing cached.
    const onSent = () => {
      for (const name of names) {
        const entry = t.entries.get(name);
        if (!entry || entry.name === WILDCARD || entry.timer !== undefined) continue;
        if (entry.hasValue || entry.state !== 'requested' || entry.error) continue;
        this.#startTimer(t, entry);
      }
    };
    if (!this.#stream.send(request, onSent)) return;
    this.#nodeSent = true;
    t.sentOnStream = true;
    t.lastSentNames = names.join('\n');
    this.#dirty.delete(t.type.typeUrl);
  }

  #startTimer(t: TypeState, entry: ResourceEntry): void {
    entry.timer = this.#options.clock.setTimeout(() => {
      entry.timer = undefined;
      if (t.entries.get(entry.name) !== entry || entry.hasValue) return;
      trace(`${t.type.shortName} "${entry.name}" does not exist (no response within ${this.#options.doesNotExistTimeoutMs} ms)`);
      entry.state = 'does_not_exist';
      notify(entry.watchers, (w) => w.onDoesNotExist());
    }, this.#options.doesNotExistTimeoutMs);
  }

  #clearTimer(entry: ResourceEntry): void {
    if (entry.timer === undefined) return;
    this.#options.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  #onStreamStart(): void {
    this.#nodeSent = false;
    this.#dirty.clear();
    for (const t of this.#types.values()) {
      t.nonce = ''; // a nonce belongs to one stream
      t.sentOnStream = false;
      t.namedOnStream = false;
      t.lastSentNames = undefined;
      if (t.entries.size > 0) this.#sendRequest(t, {});
    }
  }

  #onStreamEnd(error: MeshletError, receivedResponse: boolean): void {
    for (const t of this.#types.values()) {
      for (const entry of t.entries.values()) {
        // The request was not answered; its timer restarts when it is sent again (A57).
        this.#clearTimer(entry);
      }
    }
    // A stream that ends after working (a server restart, a max-age) is routine and
    // reconnects at once; one that never got a response is an outage the watchers
    // hear about. The cached values stay in force either way.
    if (receivedResponse || this.#closed) return;
    for (const t of this.#types.values()) {
      for (const entry of t.entries.values()) notify(entry.watchers, (w) => w.onError(error));
    }
  }

  #onResponse(response: DiscoveryResponse): void {
    if (this.#closed) return;
    const t = this.#types.get(response.type_url);
    if (!t) {
      // Nothing asked for this type; answering would subscribe to it.
      trace(`${this.server.serverUri} ignoring a response for unrequested type ${response.type_url}`);
      return;
    }
    const shortName = t.type.shortName;
    trace(
      `${this.server.serverUri} response ${shortName} version=${JSON.stringify(response.version_info)} nonce=${JSON.stringify(
        response.nonce,
      )} resources=${response.resources.length}`,
    );
    // lastUpdated and a NACK's time are dates (CSDS last_updated): the wall clock.
    const now = wallTimeOf(this.#options.clock);
    const errors: string[] = [];
    let unnamedErrors = 0;
    const valid = new Map<string, { value: unknown; raw: AnyMessage; key: Uint8Array }>();
    const invalid = new Map<string, { reason: string; key: Uint8Array | undefined }>();
    const seen = new Set<string>();
    const decoded: TypeState['lastDecoded'] = new Array(response.resources.length);

    for (const [index, any] of response.resources.entries()) {
      const unwrapped = this.#unwrap(t, any);
      if ('error' in unwrapped) {
        if (unwrapped.name !== undefined) {
          const name = parseResourceName(unwrapped.name).key;
          invalid.set(name, { reason: unwrapped.error, key: undefined });
          seen.add(name);
          errors.push(`${shortName} "${name}": ${unwrapped.error}`);
        } else {
          unnamedErrors += 1;
          errors.push(`${shortName} (resource ${index}): ${unwrapped.error}`);
        }
        continue;
      }
      const raw = unwrapped.any;
      const key = raw.value;
      const previous = t.lastDecoded[index];
      let result = previous && sameBytes(previous.bytes, key) ? previous.result : undefined;
      if (!result) {
        try {
          result = t.type.decode(this.#decodeContext, raw);
        } catch (error) {
          result = { error: `decoder failed: ${(error as Error)?.message ?? String(error)}` };
        }
      }
      decoded[index] = { bytes: key, result };
      const rawName = result.name ?? unwrapped.name;
      if (rawName === undefined) {
        unnamedErrors += 1;
        errors.push(`${shortName} (resource ${index}): ${result.error ?? 'no name'}`);
        continue;
      }
      const name = parseResourceName(rawName).key;
      if (seen.has(name)) {
        // Envoy xDS protocol: a name twice in one response makes the response invalid
        // for that resource; neither copy is applied.
        valid.delete(name);
        if (!invalid.has(name)) errors.push(`${shortName} "${name}": duplicate resource name in one response`);
        invalid.set(name, { reason: 'duplicate resource name in one response', key: undefined });
        continue;
      }
      seen.add(name);
      if (result.error !== undefined) {
        invalid.set(name, { reason: result.error, key });
        errors.push(`${shortName} "${name}": ${result.error}`);
      } else {
        valid.set(name, { value: result.value, raw, key });
      }
    }
    t.lastDecoded = decoded;

    const notifications: Array<() => void> = [];
    const version = response.version_info;

    for (const [name, v] of valid) {
      const entry = t.entries.get(name);
      if (!entry) {
        this.#wildcardUpdate(t, name, v, notifications);
        continue;
      }
      this.#clearTimer(entry);
      // A resource that was NACKed and is now good again is news even when it is the
      // same as the last good value: its watchers were told of the error.
      const changed = !entry.hasValue || entry.state === 'nacked' || !sameBytes(entry.rawKey, v.key);
      entry.value = v.value;
      entry.hasValue = true;
      entry.raw = v.raw;
      entry.rawKey = v.key;
      entry.errorKey = undefined;
      entry.state = 'acked';
      entry.version = version;
      entry.lastUpdated = now;
      entry.error = undefined;
      if (changed) notifications.push(() => notify(entry.watchers, (w) => w.onChanged(v.value)));
    }

    for (const [name, bad] of invalid) {
      const entry = t.entries.get(name);
      if (!entry) continue;
      this.#clearTimer(entry);
      const repeated = entry.state === 'nacked' && bad.key !== undefined && sameBytes(entry.errorKey, bad.key);
      entry.state = 'nacked';
      entry.errorKey = bad.key;
      const message = `${shortName} "${name}": ${bad.reason}`;
      entry.error = { message, version, time: now };
      if (!repeated) {
        const error = new MeshletError('MESHLET_XDS_RESOURCE_INVALID', message);
        notifications.push(() => notify(entry.watchers, (w) => w.onError(error)));
      }
    }

    // SotW deletion: for LDS and CDS every response is the full set, so a resource that
    // is missing is gone. Not when a resource could not even be named (it may be the
    // missing one), and not when the server asks for ignore_resource_deletion (A53).
    if (t.type.allResourcesRequiredInSotW && unnamedErrors === 0) {
      for (const entry of t.entries.values()) {
        if (entry.name === WILDCARD || seen.has(entry.name) || !entry.hasValue) continue;
        if (this.server.ignoreResourceDeletion) {
          trace(`${shortName} "${entry.name}" missing from the response; kept (ignore_resource_deletion)`);
          continue;
        }
        trace(`${shortName} "${entry.name}" deleted (missing from a SotW response)`);
        entry.state = 'does_not_exist';
        entry.hasValue = false;
        entry.value = undefined;
        entry.raw = undefined;
        entry.rawKey = undefined;
        entry.version = version;
        entry.lastUpdated = now;
        notifications.push(() => notify(entry.watchers, (w) => w.onDoesNotExist()));
      }
      for (const name of [...t.wildcardSeen.keys()]) if (!seen.has(name)) t.wildcardSeen.delete(name);
      const wildcard = t.entries.get(WILDCARD);
      if (wildcard) {
        const names: ReadonlySet<string> = new Set(seen);
        notifications.push(() => notify(wildcard.watchers, (w) => w.onResourceNames?.(names)));
      }
    }

    // Watchers run before the ACK, so names they subscribe to in their callbacks ride
    // on the ACK instead of a request of their own.
    for (const n of notifications) n();

    t.nonce = response.nonce;
    if (errors.length > 0) {
      trace(`${this.server.serverUri} NACK ${shortName} version=${JSON.stringify(version)}: ${errors.join('; ')}`);
      this.#sendRequest(t, { errorMessage: errors.join('; ') });
    } else {
      t.versionInfo = version;
      this.#sendRequest(t, {});
    }
  }

  #wildcardUpdate(
    t: TypeState,
    name: string,
    v: { value: unknown; key: Uint8Array },
    notifications: Array<() => void>,
  ): void {
    const wildcard = t.entries.get(WILDCARD);
    if (!wildcard) return; // not asked for: ignored, as gRPC does
    if (sameBytes(t.wildcardSeen.get(name), v.key)) return;
    t.wildcardSeen.set(name, v.key);
    notifications.push(() => notify(wildcard.watchers, (w) => w.onChanged(v.value)));
  }

  /** The resource's Any, unwrapped from an envoy.service.discovery.v3.Resource if need be. */
  #unwrap(
    t: TypeState,
    any: AnyMessage,
  ): { any: AnyMessage; name?: string } | { error: string; name?: string } {
    if (any.type_url === RESOURCE_WRAPPER_TYPE_URL) {
      let wrapper: ResourceWrapper;
      try {
        wrapper = decodeMessage<ResourceWrapper>('envoy.service.discovery.v3.Resource', any.value);
      } catch (error) {
        return { error: `cannot decode the Resource wrapper: ${(error as Error).message}` };
      }
      const name = wrapper.name || undefined;
      const inner = wrapper.resource;
      if (!inner) return { error: 'Resource wrapper holds no resource', ...(name !== undefined ? { name } : {}) };
      if (inner.type_url !== t.type.typeUrl) {
        return { error: `wrapped resource has type ${inner.type_url}, expected ${t.type.typeUrl}`, ...(name !== undefined ? { name } : {}) };
      }
      return { any: { type_url: inner.type_url, value: inner.value }, ...(name !== undefined ? { name } : {}) };
    }
    if (any.type_url !== t.type.typeUrl) {
      return { error: `resource has type ${any.type_url}, expected ${t.type.typeUrl}` };
    }
    // A plain object, not the decoded Any: a message keeps its protobufjs type (and through
    // it the whole reflection) alive, and this one is kept for CSDS (src/proto.ts).
    return { any: { type_url: any.type_url, value: any.value } };
  }
}
