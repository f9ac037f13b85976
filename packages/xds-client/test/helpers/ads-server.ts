// A scripted ADS server on loopback for protocol-level tests: it records every
// DiscoveryRequest and sends exactly the responses a test writes, so nonces, versions
// and odd responses (duplicates, wrappers, bad bytes) are under the test's control.
// Cross-package tests use @meshlet/control-plane instead.
import * as grpc from '@grpc/grpc-js';
import type {
  envoy_service_discovery_v3_DiscoveryRequest as DiscoveryRequest,
} from '../../src/generated/pb.js';
import { encodeMessage, protoType } from '../../src/proto.js';

export interface RecordedRequest extends DiscoveryRequest {
  readonly stream: number;
}

export interface AnyBytes {
  type_url: string;
  value: Uint8Array;
}

const METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

export class ScriptedAdsServer {
  readonly requests: RecordedRequest[] = [];
  #server: grpc.Server | undefined;
  #calls = new Map<number, grpc.ServerDuplexStream<DiscoveryRequest, Buffer>>();
  #streamCount = 0;
  #waiters: Array<{ predicate: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }> = [];
  #nonce = 0;

  /** Listen on `address` (host:port with port 0, or unix:path); resolves with a server_uri. */
  async start(address = '127.0.0.1:0', credentials = grpc.ServerCredentials.createInsecure()): Promise<string> {
    const server = new grpc.Server();
    const definition: grpc.ServiceDefinition = {
      StreamAggregatedResources: {
        path: METHOD,
        requestStream: true,
        responseStream: true,
        requestDeserialize: (b: Buffer) => protoType('envoy.service.discovery.v3.DiscoveryRequest').decode(b),
        requestSerialize: (v: unknown) => Buffer.from(v as Uint8Array),
        responseSerialize: (v: Buffer) => v,
        responseDeserialize: (b: Buffer) => b,
      },
    };
    server.addService(definition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => {
        const id = ++this.#streamCount;
        this.#calls.set(id, call);
        call.on('data', (request: DiscoveryRequest) => {
          const recorded = { ...request, stream: id } as RecordedRequest;
          this.requests.push(recorded);
          this.#waiters = this.#waiters.filter((w) => {
            if (!w.predicate(recorded)) return true;
            w.resolve(recorded);
            return false;
          });
        });
        call.on('error', () => {});
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.#server = server;
    return address.startsWith('unix:') ? address : `127.0.0.1:${port}`;
  }

  get streamCount(): number {
    return this.#streamCount;
  }

  /** The newest stream's id. */
  get currentStream(): number {
    return this.#streamCount;
  }

  waitForRequest(predicate: (r: RecordedRequest) => boolean, timeoutMs = 5000): Promise<RecordedRequest> {
    const past = this.requests.find(predicate);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a DiscoveryRequest')), timeoutMs);
      this.#waiters.push({
        predicate,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  /** Wait for a request that comes after the ones seen so far. */
  nextRequest(predicate: (r: RecordedRequest) => boolean = () => true, timeoutMs = 5000): Promise<RecordedRequest> {
    const seen = this.requests.length;
    return this.waitForRequest((r) => this.requests.indexOf(r) >= seen && predicate(r), timeoutMs);
  }

  /** Send a response on a stream (the newest by default); returns its nonce. */
  respond(typeUrl: string, versionInfo: string, resources: AnyBytes[], stream = this.#streamCount): string {
    const nonce = `n${++this.#nonce}`;
    const call = this.#calls.get(stream);
    if (!call) throw new Error(`no stream ${stream}`);
    const bytes = encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', {
      version_info: versionInfo,
      type_url: typeUrl,
      nonce,
      resources,
    });
    call.write(Buffer.from(bytes));
    return nonce;
  }

  /** End a stream from the server side with a status. */
  endStream(stream = this.#streamCount, code = grpc.status.UNAVAILABLE): void {
    const call = this.#calls.get(stream);
    call?.emit('error', { code, details: 'ended by test' });
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const call of this.#calls.values()) {
      try {
        call.end();
      } catch {
        // already ended
      }
    }
    server.forceShutdown();
  }
}

/** A manual clock: timers run only when the test advances time. */
export class ManualClock {
  #now = 0;
  #wallOffset = 0;
  #seq = 0;
  readonly timers = new Map<number, { at: number; ms: number; callback: () => void }>();

  now = (): number => this.#now;

  /** The date: now() plus what stepWall() moved it by. */
  wallNow = (): number => this.#now + this.#wallOffset;

  /** Step the date (as NTP would) without moving now() or any timer. */
  stepWall(ms: number): void {
    this.#wallOffset += ms;
  }

  setTimeout = (callback: () => void, ms: number): unknown => {
    const id = ++this.#seq;
    this.timers.set(id, { at: this.#now + ms, ms, callback });
    return id;
  };

  clearTimeout = (handle: unknown): void => {
    this.timers.delete(handle as number);
  };

  /** Delays of the timers pending now, in creation order. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.ms);
  }

  /** Move time forward, running every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].callback();
    }
    this.#now = target;
  }
}
