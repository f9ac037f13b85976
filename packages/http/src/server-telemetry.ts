// Inbound telemetry for a node:http (or https, or http2 compat) server: wrap its request
// listener and every request it takes is reported as Istio's reporter="destination" metrics,
// a server span continuing the caller's trace (traceparent / b3), and an access log line, as
// an Envoy sidecar's inbound listener would report it. A caller that sends Istio's peer
// metadata headers (an Envoy sidecar, or meshlet) is named in source_* and gets ours back.
//
//   http.createServer(withServerTelemetry((req, res) => { ... }, { mesh }))
import type { IncomingMessage, ServerResponse } from 'node:http';
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
export function withServerTelemetry<Req extends IncomingMessage, Res extends ServerResponse>(
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
  return function meshletServerTelemetry(this: unknown, req: Req, res: Res): void {
    const headers = req.headers;
    const recorder = resolve().startCall({
      reporter: 'destination',
      protocol: headers['content-type']?.startsWith('application/grpc') ? 'grpc' : 'http',
      method: req.method,
      path: req.url,
      authority: options.service ?? headers.host ?? headers[':authority']?.toString() ?? '',
      headers: headersFromRecord(headers),
    });
    if (!recorder) {
      listener.call(this, req, res);
      return;
    }
    // A named service is what an Istio sidecar's inbound cluster names (its metadata's host):
    // destination_service_name and _namespace come from the FQDN, and the access log shows
    // the inbound cluster.
    if (options.service) recorder.route(`inbound|${req.socket?.localPort ?? ''}||${options.service}`);
    // Istio's metadata exchange: a caller that sent its workload gets ours back.
    recorder.injectHeaders((name, value) => res.setHeader(name, value));
    countRequestBytes(req, (n) => recorder.requestBytes(n));
    countResponseBytes(res, (n) => recorder.responseBytes(n));
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
        ...(grpcStatus !== undefined && Number.isInteger(grpcStatus) ? { grpcStatus } : {}),
        ...(id.peerPrincipal ? { peerPrincipal: id.peerPrincipal } : {}),
        ...(id.localPrincipal ? { localPrincipal: id.localPrincipal } : {}),
      };
      recorder.end(result);
    };
    res.once('finish', () => finish(false));
    res.once('close', () => finish(!res.writableFinished));
    // The handler, and the request's and response's events (which the parser emits from the
    // connection's async context), run with the server span active.
    recorder.bind(req);
    recorder.bind(res);
    recorder.withContext(() => listener.call(this, req, res));
  };
}

/** The request body's bytes as the parser hands them to the stream (no 'data' listener: it would start the flow). */
function countRequestBytes(req: IncomingMessage, add: (n: number) => void): void {
  const push = req.push;
  req.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) add(byteLength(chunk, encoding));
    return push.call(this, chunk, encoding);
  };
}

function countResponseBytes(res: ServerResponse, add: (n: number) => void): void {
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
    if (chunk !== null && chunk !== undefined) add(byteLength(chunk, typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : undefined));
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]): ServerResponse {
    if (chunk !== null && chunk !== undefined && typeof chunk !== 'function') {
      add(byteLength(chunk, typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : undefined));
    }
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as ServerResponse['end'];
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
