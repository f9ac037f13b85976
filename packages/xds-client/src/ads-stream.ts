// One ADS stream (StreamAggregatedResources) to one xDS server, over node:http2 (grpc-stream.ts),
// restarted with backoff when it ends. It moves DiscoveryRequests and DiscoveryResponses and
// knows nothing of resources; xds-server-connection.ts owns the protocol state.
import type { ClientHttp2Session } from 'node:http2';
import { ExponentialBackoff, type BackoffOptions } from './backoff.js';
import type { XdsServerConfig } from './bootstrap.js';
import type { Clock, TimerHandle } from './clock.js';
import { MeshletError } from './errors.js';
import type {
  envoy_service_discovery_v3_DiscoveryRequest as DiscoveryRequest,
  envoy_service_discovery_v3_DiscoveryResponse as DiscoveryResponse,
} from './generated/pb.js';
import { connectSession, GrpcBidiStream, GrpcStatus, parseServerUri, statusName, type GrpcConnectionOptions, type GrpcTarget } from './grpc-stream.js';
import { protoType, strictBytes } from './proto.js';
import { tracer } from './trace.js';

const trace = tracer('xds_client');

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const USER_AGENT = 'meshlet-xds-client';

const DEFAULT_KEEPALIVE_TIMEOUT_MS = 20_000;

/** Sessions the server has sent its HTTP/2 settings on. */
const ready = new WeakSet<ClientHttp2Session>();

export type OutgoingDiscoveryRequest = Partial<DiscoveryRequest> & { type_url: string };

export interface AdsStreamHandler {
  /** A new stream is open: send every subscription on it. */
  onStreamStart(): void;
  onResponse(response: DiscoveryResponse): void;
  /** The stream ended; a new one starts after a backoff (or at once after a response). */
  onStreamEnd(error: MeshletError, receivedResponse: boolean): void;
}

export interface AdsStreamOptions {
  readonly clock: Clock;
  readonly backoff?: BackoffOptions;
  /** How to reach the server beyond what the bootstrap says (a TLS name override, the :authority). */
  readonly connection?: GrpcConnectionOptions;
}

function serializeRequest(value: OutgoingDiscoveryRequest): Uint8Array {
  const type = protoType('envoy.service.discovery.v3.DiscoveryRequest');
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

function deserializeResponse(bytes: Buffer): DiscoveryResponse {
  return protoType('envoy.service.discovery.v3.DiscoveryResponse').decode(strictBytes(bytes)) as unknown as DiscoveryResponse;
}

export class AdsStream {
  readonly server: XdsServerConfig;
  readonly #handler: AdsStreamHandler;
  readonly #clock: Clock;
  readonly #backoff: ExponentialBackoff;
  readonly #connection: GrpcConnectionOptions;
  readonly #target: GrpcTarget;
  /** The session new streams open on (cleared when it goes away). */
  #session: ClientHttp2Session | undefined;
  #call: GrpcBidiStream | undefined;
  /** The session the open stream is on. */
  #callSession: ClientHttp2Session | undefined;
  #retryTimer: TimerHandle | undefined;
  #receivedResponse = false;
  #closed = false;
  /** onSent callbacks waiting for the connection. */
  #pendingSent: Array<() => void> = [];
  #streamCount = 0;

  constructor(server: XdsServerConfig, handler: AdsStreamHandler, options: AdsStreamOptions) {
    this.server = server;
    this.#handler = handler;
    this.#clock = options.clock;
    this.#backoff = new ExponentialBackoff(options.backoff);
    this.#connection = options.connection ?? {};
    this.#target = parseServerUri(server.serverUri);
  }

  /** True while a stream exists that requests can be written to. */
  get isOpen(): boolean {
    return this.#call !== undefined;
  }

  /** Open the stream if it is not open and no retry is pending. */
  start(): void {
    if (this.#closed || this.#call || this.#retryTimer !== undefined) return;
    this.#startStream();
  }

  /**
   * Write a request on the open stream. `onSent` runs once the request can actually go
   * out, i.e. the connection is up (at once if it already is), and never if the stream
   * ends first.
   */
  send(request: OutgoingDiscoveryRequest, onSent?: () => void): boolean {
    const call = this.#call;
    if (!call) return false;
    trace(
      () =>
        `${this.server.serverUri} stream ${this.#streamCount} send ${request.type_url} version=${JSON.stringify(
          request.version_info ?? '',
        )} nonce=${JSON.stringify(request.response_nonce ?? '')} names=${request.resource_names?.length ?? 0}${
          request.error_detail ? ` NACK: ${request.error_detail.message}` : ''
        }`,
    );
    call.write(serializeRequest(request));
    if (onSent) {
      if (ready.has(this.#callSession!)) {
        onSent();
      } else {
        this.#pendingSent.push(() => {
          if (this.#call === call) onSent();
        });
      }
    }
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const call = this.#call;
    this.#call = undefined;
    this.#pendingSent = [];
    call?.cancel();
    // Nothing is left to drain: a graceful close would wait for a silent peer forever.
    this.#callSession?.destroy();
    this.#session?.destroy();
    this.#session = undefined;
    this.#callSession = undefined;
  }

  /** The session for a new stream: the current one while it takes new streams, else a new connection. */
  #sessionForStream(): ClientHttp2Session {
    const current = this.#session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = connectSession(this.#target, this.server.channelCredentials, this.#connection);
    this.#session = session;
    // Ready once the server has spoken HTTP/2 (its SETTINGS), as grpc-js's READY: a socket
    // that connects to something silent must not start A57's does-not-exist timers.
    session.once('remoteSettings', () => {
      ready.add(session);
      trace(`${this.server.serverUri} connected`);
      this.#keepAlive(session);
      if (this.#callSession !== session) return;
      const callbacks = this.#pendingSent;
      this.#pendingSent = [];
      for (const callback of callbacks) callback();
    });
    // A session error also closes its streams, which report it (GrpcBidiStream).
    session.on('error', (err: Error) => trace(`${this.server.serverUri} connection error: ${err.message}`));
    // A GOAWAY (a server restarting, say) lets the stream finish; the next one needs a new connection.
    session.on('goaway', () => {
      if (this.#session === session) this.#session = undefined;
    });
    session.on('close', () => {
      if (this.#session === session) this.#session = undefined;
    });
    return session;
  }

  /**
   * gRFC A8 client keepalive, when `connection.keepaliveTimeMs` asks for it: a PING every that
   * many ms, and the connection closed (so the stream restarts on a new one) when one is not
   * answered within `keepaliveTimeoutMs` (default 20 s, as gRPC's). Off by default, as in
   * grpc-js. It finds a connection that died without a word (a NAT or a load balancer forgot
   * it), which would otherwise leave the mesh on its last config with no error.
   */
  #keepAlive(session: ClientHttp2Session): void {
    const every = this.#connection.keepaliveTimeMs;
    if (every === undefined) return;
    const timeout = this.#connection.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS;
    let timer: TimerHandle | undefined;
    const next = (): void => {
      timer = this.#clock.setTimeout(() => {
        if (session.destroyed || session.closed) return;
        timer = this.#clock.setTimeout(() => {
          trace(`${this.server.serverUri} keepalive: no PING ack within ${timeout} ms, closing the connection`);
          session.destroy(new Error(`keepalive: no PING ack within ${timeout} ms`));
        }, timeout);
        session.ping((err) => {
          if (timer !== undefined) this.#clock.clearTimeout(timer);
          timer = undefined;
          if (!err && !session.destroyed) next();
        });
      }, every);
    };
    session.once('close', () => {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      timer = undefined;
    });
    next();
  }

  #startStream(): void {
    this.#streamCount += 1;
    const id = this.#streamCount;
    this.#receivedResponse = false;
    trace(`${this.server.serverUri} stream ${id} starting`);
    let call: GrpcBidiStream | undefined;
    let session: ClientHttp2Session;
    try {
      session = this.#sessionForStream();
      call = new GrpcBidiStream(
        session,
        ADS_METHOD,
        this.#connection.authority ?? this.#target.authority,
        {
          onMessage: (bytes) => {
            if (this.#call !== call) return;
            let response: DiscoveryResponse;
            try {
              response = deserializeResponse(bytes);
            } catch (err) {
              // gRPC fails a call whose response cannot be parsed (INTERNAL); the stream restarts.
              call!.cancel();
              this.#ended(call!, id, GrpcStatus.INTERNAL, `cannot decode a DiscoveryResponse: ${(err as Error).message}`);
              return;
            }
            if (!this.#receivedResponse) {
              this.#receivedResponse = true;
              // connection-backoff doc: a stream that got a response resets the backoff.
              this.#backoff.reset();
            }
            this.#handler.onResponse(response);
          },
          onStatus: (code, details) => this.#ended(call!, id, code, details),
        },
        USER_AGENT,
      );
    } catch (err) {
      // No connection could be set up (a TLS file cannot be read, say), or the session went
      // away just now: the stream ends like any other, after this call returns.
      this.#call = undefined;
      const details = (err as Error).message;
      this.#retryTimer = this.#clock.setTimeout(() => {
        this.#retryTimer = undefined;
        this.#scheduleRetry(id, GrpcStatus.UNAVAILABLE, details);
      }, 0);
      return;
    }
    this.#call = call;
    this.#callSession = session;
    this.#handler.onStreamStart();
  }

  #ended(call: GrpcBidiStream, id: number, code: number, details: string): void {
    if (this.#call !== call) return;
    this.#call = undefined;
    this.#pendingSent = [];
    this.#scheduleRetry(id, code, details);
  }

  #scheduleRetry(id: number, code: number, details: string): void {
    const received = this.#receivedResponse;
    trace(`${this.server.serverUri} stream ${id} ended: ${code} ${details} (responses: ${received})`);
    const error = new MeshletError('MESHLET_XDS_UNAVAILABLE', `xDS server ${this.server.serverUri}: ADS stream ended: ${statusName(code)}: ${details}`);
    this.#handler.onStreamEnd(error, received);
    if (this.#closed) return;
    // A stream that worked ends at once into a new one; one that never got a
    // response waits out the backoff, so a dead server is not hammered.
    const delay = received ? 0 : this.#backoff.next();
    trace(`${this.server.serverUri} retrying in ${Math.round(delay)} ms`);
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed) this.#startStream();
    }, delay);
  }
}
