// One ADS stream (StreamAggregatedResources) to one xDS server over grpc-js, restarted
// with backoff when it ends. It moves DiscoveryRequests and DiscoveryResponses and
// knows nothing of resources; xds-server-connection.ts owns the protocol state.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ExponentialBackoff, type BackoffOptions } from './backoff.js';
import type { XdsServerConfig } from './bootstrap.js';
import type { Clock, TimerHandle } from './clock.js';
import { MeshletError } from './errors.js';
import type {
  envoy_service_discovery_v3_DiscoveryRequest as DiscoveryRequest,
  envoy_service_discovery_v3_DiscoveryResponse as DiscoveryResponse,
} from './generated/pb.js';
import { protoType, strictBytes } from './proto.js';
import { tracer } from './trace.js';

const trace = tracer('xds_client');

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

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
  /** grpc-js channel options, e.g. its own reconnect backoff. */
  readonly channelOptions?: grpc.ChannelOptions;
}

function serializeRequest(value: OutgoingDiscoveryRequest): Buffer {
  const type = protoType('envoy.service.discovery.v3.DiscoveryRequest');
  return Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish());
}

function deserializeResponse(bytes: Buffer): DiscoveryResponse {
  return protoType('envoy.service.discovery.v3.DiscoveryResponse').decode(strictBytes(bytes)) as unknown as DiscoveryResponse;
}

function channelCredentials(server: XdsServerConfig): grpc.ChannelCredentials {
  const creds = server.channelCredentials;
  if (creds.type === 'insecure') return grpc.credentials.createInsecure();
  // gRFC A65: files are read when the channel is made; no CA file means the system roots.
  const read = (path: string | undefined) => (path === undefined ? null : readFileSync(path));
  return grpc.credentials.createSsl(read(creds.caCertificateFile), read(creds.privateKeyFile), read(creds.certificateFile));
}

export class AdsStream {
  readonly server: XdsServerConfig;
  readonly #handler: AdsStreamHandler;
  readonly #clock: Clock;
  readonly #backoff: ExponentialBackoff;
  readonly #channelOptions: grpc.ChannelOptions;
  #client: grpc.Client | undefined;
  #call: grpc.ClientDuplexStream<OutgoingDiscoveryRequest, DiscoveryResponse> | undefined;
  #retryTimer: TimerHandle | undefined;
  #receivedResponse = false;
  #closed = false;
  /** onSent callbacks waiting for the channel to connect. */
  #pendingSent: Array<() => void> = [];
  #watchingConnectivity = false;
  #streamCount = 0;

  constructor(server: XdsServerConfig, handler: AdsStreamHandler, options: AdsStreamOptions) {
    this.server = server;
    this.#handler = handler;
    this.#clock = options.clock;
    this.#backoff = new ExponentialBackoff(options.backoff);
    this.#channelOptions = options.channelOptions ?? {};
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
   * out, i.e. the channel is connected (at once if it already is), and never if the
   * stream ends first.
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
    call.write(request);
    if (onSent) {
      // grpc-js calls a write's callback as soon as the message is buffered, even while
      // the channel is still connecting, so readiness is read from the channel instead.
      this.#pendingSent.push(() => {
        if (this.#call === call) onSent();
      });
      this.#runWhenReady();
    }
    return true;
  }

  #runWhenReady(): void {
    const channel = this.#client?.getChannel();
    if (!channel || this.#watchingConnectivity) return;
    const check = () => {
      this.#watchingConnectivity = false;
      if (this.#closed || this.#pendingSent.length === 0) return;
      const state = channel.getConnectivityState(false);
      if (state === grpc.connectivityState.READY) {
        const callbacks = this.#pendingSent;
        this.#pendingSent = [];
        for (const callback of callbacks) callback();
        return;
      }
      if (state === grpc.connectivityState.SHUTDOWN) return;
      this.#watchingConnectivity = true;
      channel.watchConnectivityState(state, Infinity, check);
    };
    check();
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
    this.#client?.close();
    this.#client = undefined;
  }

  #startStream(): void {
    this.#client ??= new grpc.Client(this.server.serverUri, channelCredentials(this.server), {
      // A control plane's SotW response can be large (every cluster of a mesh).
      'grpc.max_receive_message_length': -1,
      ...this.#channelOptions,
    });
    this.#streamCount += 1;
    const id = this.#streamCount;
    this.#receivedResponse = false;
    trace(`${this.server.serverUri} stream ${id} starting`);
    const call = this.#client.makeBidiStreamRequest<OutgoingDiscoveryRequest, DiscoveryResponse>(
      ADS_METHOD,
      serializeRequest,
      deserializeResponse,
    );
    this.#call = call;
    let ended = false;
    call.on('data', (response: DiscoveryResponse) => {
      if (this.#call !== call) return;
      if (!this.#receivedResponse) {
        this.#receivedResponse = true;
        // connection-backoff doc: a stream that got a response resets the backoff.
        this.#backoff.reset();
      }
      this.#handler.onResponse(response);
    });
    // 'error' carries the same status as 'status'; listening keeps it from being thrown.
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => {
      if (ended) return;
      ended = true;
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#pendingSent = [];
      const received = this.#receivedResponse;
      trace(`${this.server.serverUri} stream ${id} ended: ${status.code} ${status.details} (responses: ${received})`);
      const error = new MeshletError(
        'MESHLET_XDS_UNAVAILABLE',
        `xDS server ${this.server.serverUri}: ADS stream ended: ${grpc.status[status.code] ?? status.code}: ${status.details}`,
      );
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
    });
    this.#handler.onStreamStart();
  }
}
