// A bare grpc-js ADS client for the control plane's tests: sends DiscoveryRequests as
// given and queues decoded DiscoveryResponses. Deliberately not meshlet's xDS client.
import { Client, credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { decodeMessage, protoType } from '@meshlet/xds-client/proto';
import type {
  envoy_service_discovery_v3_DiscoveryRequest as DiscoveryRequest,
  envoy_service_discovery_v3_DiscoveryResponse as DiscoveryResponse,
} from '@meshlet/xds-client/pb';
import { SOTW_METHOD_PATH } from '../src/ads-service.js';

export type { DiscoveryResponse };

export interface RequestInput {
  typeUrl: string;
  names?: string[];
  version?: string;
  nonce?: string;
  error?: { code: number; message: string };
  node?: { id: string; cluster?: string; metadata?: Record<string, string> };
}

export class AdsTestClient {
  private readonly client: Client;
  private readonly call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  private readonly queue: DiscoveryResponse[] = [];
  private readonly waiters: ((r: DiscoveryResponse) => void)[] = [];
  ended: Promise<{ code: number; details: string }>;

  constructor(address: string) {
    this.client = new Client(address, credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(
      SOTW_METHOD_PATH,
      (r: DiscoveryRequest) => Buffer.from(protoType('envoy.service.discovery.v3.DiscoveryRequest').encode(r).finish()),
      (b: Buffer) => decodeMessage<DiscoveryResponse>('envoy.service.discovery.v3.DiscoveryResponse', b),
    );
    this.call.on('data', (r: DiscoveryResponse) => {
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
    this.ended = new Promise((resolve) => {
      this.call.on('status', (s) => resolve({ code: s.code, details: s.details }));
      this.call.on('error', () => {});
    });
  }

  send(input: RequestInput): void {
    const request: Record<string, unknown> = {
      type_url: input.typeUrl,
      resource_names: input.names ?? [],
      version_info: input.version ?? '',
      response_nonce: input.nonce ?? '',
    };
    if (input.error) request['error_detail'] = input.error;
    if (input.node) {
      // google.protobuf.Value keeps protobufjs's camelCase field names in meshlet's descriptor.
      const fields = Object.fromEntries(Object.entries(input.node.metadata ?? {}).map(([k, v]) => [k, { stringValue: v }]));
      request['node'] = { id: input.node.id, cluster: input.node.cluster ?? '', metadata: { fields } };
    }
    this.call.write(protoType('envoy.service.discovery.v3.DiscoveryRequest').fromObject(request) as unknown as DiscoveryRequest);
  }

  /** ACK `response`, optionally with new names (default: unchanged from `names`). */
  ack(response: DiscoveryResponse, names: string[]): void {
    this.send({ typeUrl: response.type_url, names, version: response.version_info, nonce: response.nonce });
  }

  next(timeoutMs = 5000): Promise<DiscoveryResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no DiscoveryResponse within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (r: DiscoveryResponse) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /** Responses received and not yet taken. */
  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

/** The names of the resources in a response, decoding each Any as `fullName`. */
export function namesIn(response: DiscoveryResponse, field = 'name'): string[] {
  return response.resources.map((any) => {
    const msg = protoType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1)).decode(any.value) as unknown as Record<string, unknown>;
    return String(msg[field]);
  });
}
