// Inbound telemetry for a node:http (or https, or http2 compat) server: wrap its request
// listener and every request it takes is reported as Istio's reporter="destination" metrics,
// a server span continuing the caller's trace (traceparent / b3), and an access log line, as
// an Envoy sidecar's inbound listener would report it. A caller that sends Istio's peer
// metadata headers (an Envoy sidecar, or meshlet) is named in source_* and gets ours back.
//
//   http.createServer(withServerTelemetry((req, res) => { ... }, { mesh }))
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { getDefaultMesh, headersFromRecord, MeshTelemetry, type CallResult, type Mesh } from '@meshlet/core';

export interface ServerTelemetryOptions {
  /** Report through this telemetry (e.g. `createMesh(...).telemetry`). */
  readonly telemetry?: MeshTelemetry;
  /** Report through this mesh's telemetry. Default: the process-wide mesh's. */
  readonly mesh?: Mesh;
  /**
   * The service's FQDN (`reviews.default.svc.cluster.local`): destination_service, with
   * destination_service_name and _namespace taken from it, as from an Istio inbound cluster.
   * Default: the request's Host header (without its port) names the service.
   */
  readonly service?: string;
}

type Listener<Req, Res> = (req: Req, res: Res) => void;
/** node:http and node:https requests, and node:http2's compatibility API. */
type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

interface TlsIdentity {
  readonly securityPolicy: 'mutual_tls' | 'none';
  readonly peerPrincipal: string | undefined;
  readonly localPrincipal: string | undefined;
}

const PLAINTEXT: TlsIdentity = Object.freeze({ securityPolicy: 'none', peerPrincipal: undefined, localPrincipal: undefined });
const identities = new WeakMap<Socket, TlsIdentity>();

/**
 * Wrap a request listener so every request it takes is recorded (reporter="destination").
 * The handler runs with the server span active, so the calls it makes through the mesh are
 * children of it when an OpenTelemetry context manager is registered.
 */
export function withServerTelemetry<Req extends AnyRequest, Res extends AnyResponse>(
  listener: Listener<Req, Res>,
  options: ServerTelemetryOptions = {},
): Listener<Req, Res> {
  let telemetry = options.telemetry ?? options.mesh?.telemetry;
  const resolve = (): MeshTelemetry => {
    if (!telemetry) {
      try {
        telemetry = getDefaultMesh().telemetry;
      } catch {
        // No bootstrap in this process: report with an unknown local workload rather than not serve.
        telemetry = new MeshTelemetry();
      }
    }
    return telemetry;
  };
  return function meshletServerTelemetry(this: unknown, request: Req, response: Res): void {
    // The two APIs share every member used here; one view of them keeps the code single.
    const req = request as unknown as IncomingMessage;
    const res = response as unknown as ServerResponse;
    const headers = req.headers;
    const grpc = headers['content-type']?.startsWith('application/grpc') === true;
    const recorder = resolve().startCall({
      reporter: 'destination',
      protocol: grpc ? 'grpc' : 'http',
      method: req.method,
      path: req.url,
      authority: options.service ?? headers.host ?? headers[':authority']?.toString() ?? '',
      headers: headersFromRecord(headers),
    });
    if (!recorder) {
      listener.call(this, request, response);
      return;
    }
    // A named service is what an Istio sidecar's inbound cluster names (its metadata's host):
    // destination_service_name and _namespace come from the FQDN, and the access log shows
    // the inbound cluster.
    if (options.service) recorder.route(`inbound|${req.socket?.localPort ?? ''}||${options.service}`);
    // Istio's metadata exchange: a caller that sent its workload gets ours back.
    recorder.injectHeaders((name, value) => res.setHeader(name, value));
    if (grpc) {
      // gRPC's length-prefixed messages, counted as they pass (istio_*_messages_total).
      const sent = new GrpcMessageCounter();
      const received = new GrpcMessageCounter();
      countRequestBytes(req, (n, chunk) => {
        recorder.requestBytes(n);
        recorder.messages(sent.feed(chunk), 0);
      });
      countResponseBytes(res, (n, chunk) => {
        recorder.responseBytes(n);
        recorder.messages(0, received.feed(chunk));
      });
    } else {
      countRequestBytes(req, (n) => recorder.requestBytes(n));
      countResponseBytes(res, (n) => recorder.responseBytes(n));
    }
    let grpcStatus: number | undefined;
    const addTrailers = res.addTrailers;
    res.addTrailers = function (trailers) {
      const s = (trailers as Record<string, unknown>)['grpc-status'];
      if (s !== undefined) grpcStatus = Number(s);
      return addTrailers.call(this, trailers);
    };
    const finish = (downstreamReset: boolean): void => {
      const id = identity(req.socket);
      if (grpcStatus === undefined) {
        const h = res.getHeader('grpc-status');
        if (h !== undefined) grpcStatus = Number(h);
      }
      const result: CallResult = {
        // Envoy logs 0 when no response reached the caller.
        status: downstreamReset && !res.headersSent ? 0 : res.statusCode,
        // DC: the downstream connection went away before the response was complete.
        flags: downstreamReset ? 'DC' : '-',
        securityPolicy: id.securityPolicy,
        // Absent fields as undefined in one literal (spreads copy through the runtime per call).
        grpcStatus: grpcStatus !== undefined && Number.isInteger(grpcStatus) ? grpcStatus : undefined,
        peerPrincipal: id.peerPrincipal || undefined,
        localPrincipal: id.localPrincipal || undefined,
      };
      recorder.end(result);
    };
    let finished = false;
    res.once('finish', () => {
      finished = true;
      finish(false);
    });
    res.once('close', () => finish(!finished));
    // The handler, and the request's and response's events (which the parser emits from the
    // connection's async context), run with the server span active.
    recorder.bind(req);
    recorder.bind(res);
    recorder.withContext(() => listener.call(this, request, response));
  };
}

/** The request body's bytes as the parser hands them to the stream (no 'data' listener: it would start the flow). */
function countRequestBytes(req: IncomingMessage, add: (n: number, chunk: unknown) => void): void {
  const push = req.push;
  req.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) add(byteLength(chunk, encoding), chunk);
    return push.call(this, chunk, encoding);
  };
}

function countResponseBytes(res: ServerResponse, add: (n: number, chunk: unknown) => void): void {
  const write = res.write;
  const end = res.end;
  // node:http2's compatibility response ends by calling its own write(): count a chunk once.
  let ending = false;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
    if (!ending && chunk !== null && chunk !== undefined) add(byteLength(chunk, typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : undefined), chunk);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]): ServerResponse {
    if (chunk !== null && chunk !== undefined && typeof chunk !== 'function') {
      add(byteLength(chunk, typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : undefined), chunk);
    }
    ending = true;
    try {
      return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } finally {
      ending = false;
    }
  } as ServerResponse['end'];
}

/** Counts gRPC messages in a byte stream: each is a 1-byte flag, a 4-byte big-endian length, the body. */
class GrpcMessageCounter {
  #header = 0;
  #length = 0;
  #body = 0;

  /** The messages whose prefix completes in this chunk. */
  feed(chunk: unknown): number {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : ArrayBuffer.isView(chunk) ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) : undefined;
    if (!bytes) return 0;
    let count = 0;
    let i = 0;
    while (i < bytes.length) {
      if (this.#body > 0) {
        const skip = Math.min(this.#body, bytes.length - i);
        this.#body -= skip;
        i += skip;
        continue;
      }
      // In a prefix: byte 0 is the compressed flag, bytes 1-4 the length.
      if (this.#header > 0) this.#length = this.#length * 256 + bytes[i]!;
      i++;
      if (++this.#header === 5) {
        count++;
        this.#body = this.#length;
        this.#header = 0;
        this.#length = 0;
      }
    }
    return count;
  }
}

function byteLength(chunk: unknown, encoding: BufferEncoding | undefined): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, encoding);
  if (ArrayBuffer.isView(chunk)) return chunk.byteLength;
  return 0;
}

/** mTLS as Istio's inbound side decides it: both sides presented a certificate with a URI SAN. */
function identity(socket: Socket | null | undefined): TlsIdentity {
  if (!socket || !(socket as TLSSocket).encrypted) return PLAINTEXT;
  let id = identities.get(socket);
  if (!id) {
    const tls = socket as TLSSocket;
    const peer = uriSan(tls.getPeerCertificate?.()?.subjectaltname);
    const own = tls.getCertificate?.() as { subjectaltname?: string } | null | undefined;
    const local = uriSan(own?.subjectaltname);
    id = { securityPolicy: peer && local ? 'mutual_tls' : 'none', peerPrincipal: peer, localPrincipal: local };
    identities.set(socket, id);
  }
  return id;
}

function uriSan(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  for (const part of subjectAltName.split(',')) {
    const p = part.trim();
    if (p.startsWith('URI:')) return p.slice(4);
  }
  return undefined;
}
