// One ADS state-of-the-world stream: per type URL, what the client subscribed to and
// the last nonce sent. Rules from Envoy's xDS protocol doc ("ACK/NACK and resource type
// instance version", "When to send an update", "How the client specifies what resources
// to return"):
// - every response carries a new nonce; a request echoing an older nonce is stale and
//   is ignored (the client restates its subscription when it answers the newest one);
// - an ACK or NACK of the newest response only triggers a response when the requested
//   names changed;
// - LDS and CDS treat an empty name list as wildcard until the stream first names a
//   resource; "*" is wildcard for every type;
// - a type the client never asked for is never pushed.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { tracer } from '@meshlet/xds-client';
import { TYPE_URLS } from '@meshlet/xds-client/proto';
import { structToJson } from '@meshlet/xds-client/proto-json';
import type { DiscoveryRequest } from './ads-service.js';
import type { RecordedRequest, RequestKind } from './request-log.js';
import { shortType } from './request-log.js';
import type { SnapshotStore, TypeChange } from './snapshot-store.js';
import type { PreparedResponse } from './wire.js';

const trace = tracer('control_plane');

/** Types whose empty first request means "everything" (legacy wildcard). */
const LEGACY_WILDCARD_TYPES = new Set<string>([TYPE_URLS.listener, TYPE_URLS.cluster]);

interface Subscription {
  wildcard: boolean;
  names: Set<string>;
  /** The stream has named a resource of this type at least once. */
  everNamed: boolean;
  lastNonce?: string;
}

export interface SotwStreamOptions {
  streamId: number;
  store: SnapshotStore;
  record: (request: RecordedRequest) => void;
  onClose: (stream: SotwStream) => void;
  controlPlaneIdentifier?: string;
}

export class SotwStream {
  readonly streamId: number;
  private readonly subscriptions = new Map<string, Subscription>();
  private nonceCounter = 0;
  private closed = false;
  private readonly unsubscribeStore: () => void;

  constructor(
    private readonly call: ServerDuplexStream<DiscoveryRequest, PreparedResponse>,
    private readonly options: SotwStreamOptions,
  ) {
    this.streamId = options.streamId;
    this.unsubscribeStore = options.store.onChange((change) => this.onStoreChange(change));
    call.on('data', (request: DiscoveryRequest) => this.onRequest(request));
    call.on('end', () => {
      trace(`stream ${this.streamId}: client half-closed`);
      this.close();
      call.end();
    });
    call.on('error', (err: Error) => {
      // Also fires for the status fail() ends the stream with; that is traced there.
      if (!this.closed) trace(`stream ${this.streamId}: error ${err.message}`);
      this.close();
    });
    call.on('cancelled', () => {
      trace(`stream ${this.streamId}: cancelled by the client`);
      this.close();
    });
    call.on('close', () => this.close());
    trace(() => `stream ${this.streamId}: opened by ${call.getPeer()}`);
  }

  /** End the stream with UNAVAILABLE so the client reconnects (server shutting down). */
  shutdown(details: string): void {
    this.fail(status.UNAVAILABLE, details);
  }

  private fail(code: status, details: string): void {
    if (this.closed) return;
    trace(`stream ${this.streamId}: closing with ${status[code]}: ${details}`);
    this.close();
    endWithStatus(this.call, code, details);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribeStore();
    this.options.onClose(this);
  }

  private onRequest(request: DiscoveryRequest): void {
    if (this.closed) return;
    const typeUrl = request.type_url;
    const names = request.resource_names ?? [];
    const nonce = request.response_nonce ?? '';
    const errorDetail = request.error_detail
      ? { code: request.error_detail.code ?? 0, message: request.error_detail.message ?? '' }
      : undefined;

    let sub = this.subscriptions.get(typeUrl);
    const firstForType = sub === undefined || sub.lastNonce === undefined || nonce === '';
    const stale = !firstForType && nonce !== sub!.lastNonce;
    const wanted = this.interpret(typeUrl, names, sub);
    const changed = sub === undefined || wanted.wildcard !== sub.wildcard || !sameSet(wanted.names, sub.names);

    let kind: RequestKind;
    if (firstForType) kind = 'initial';
    else if (errorDetail) kind = 'nack';
    else if (changed) kind = 'update';
    else kind = 'ack';

    const recorded: RecordedRequest = {
      streamId: this.streamId,
      typeUrl,
      versionInfo: request.version_info ?? '',
      responseNonce: nonce,
      resourceNames: [...names],
      kind,
      at: Date.now(),
    };
    if (errorDetail) recorded.errorDetail = errorDetail;
    if (stale) recorded.stale = true;
    if (request.node) {
      recorded.node = {
        id: request.node.id ?? '',
        cluster: request.node.cluster ?? '',
        metadata: request.node.metadata ? structToJson(request.node.metadata as unknown as Record<string, unknown>) : {},
      };
    }
    trace(
      () =>
        `stream ${this.streamId}: ${kind}${stale ? ' (stale, ignored)' : ''} ${shortType(typeUrl)} version=${recorded.versionInfo} ` +
        `nonce=${nonce} names=${names.length > 20 ? `${names.length} names` : JSON.stringify(names)}` +
        (errorDetail ? ` error=${JSON.stringify(errorDetail.message)}` : ''),
    );
    this.options.record(recorded);

    if (typeUrl === '') {
      // ADS multiplexes every type on one stream, so the type URL is mandatory.
      this.fail(status.INVALID_ARGUMENT, 'a DiscoveryRequest on ADS must set type_url');
      return;
    }
    if (stale) return;
    if (!sub) {
      sub = { wildcard: false, names: new Set(), everNamed: false };
      this.subscriptions.set(typeUrl, sub);
    }
    sub.wildcard = wanted.wildcard;
    sub.names = wanted.names;
    if (names.length > 0) sub.everNamed = true;
    if (kind === 'initial' || changed) this.respond(typeUrl, sub);
  }

  private interpret(typeUrl: string, names: readonly string[], sub: Subscription | undefined): { wildcard: boolean; names: Set<string> } {
    const explicit = new Set(names.filter((n) => n !== '*'));
    const wildcard =
      names.includes('*') || (names.length === 0 && !(sub?.everNamed ?? false) && LEGACY_WILDCARD_TYPES.has(typeUrl));
    return { wildcard, names: explicit };
  }

  private onStoreChange(change: TypeChange): void {
    const sub = this.subscriptions.get(change.typeUrl);
    if (!sub || sub.lastNonce === undefined) return;
    // Only streams that would see a different set get a response; a named subscriber
    // of RDS/EDS is not woken by changes to resources it did not ask for.
    let affected = sub.wildcard;
    if (!affected) {
      for (const name of change.changed) {
        if (sub.names.has(name)) {
          affected = true;
          break;
        }
      }
    }
    if (affected) this.respond(change.typeUrl, sub);
  }

  private respond(typeUrl: string, sub: Subscription): void {
    if (this.closed) return;
    const store = this.options.store;
    let resources: Buffer[];
    let count = 0;
    if (sub.wildcard) {
      const all = store.all(typeUrl);
      resources = [all.buffer];
      count = all.count;
    } else {
      const available = store.resources(typeUrl);
      resources = [];
      for (const name of sub.names) {
        const r = available.get(name);
        if (r) {
          resources.push(r.framed);
          count += r.copies;
        }
      }
    }
    const nonce = String(++this.nonceCounter);
    sub.lastNonce = nonce;
    const response: PreparedResponse = {
      versionInfo: store.version(typeUrl),
      typeUrl,
      nonce,
      resources,
      resourceCount: count,
    };
    if (this.options.controlPlaneIdentifier) response.controlPlaneIdentifier = this.options.controlPlaneIdentifier;
    trace(() => `stream ${this.streamId}: send ${shortType(typeUrl)} version=${response.versionInfo} nonce=${nonce} resources=${count}`);
    this.call.write(response);
  }
}

function endWithStatus(call: ServerDuplexStream<unknown, unknown>, code: status, details: string): void {
  // grpc-js turns an 'error' emitted on a server stream into the call's status.
  call.emit('error', Object.assign(new Error(details), { code, details }));
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
