// One gRPC bidirectional-streaming call over node:http2, for the ADS stream: gRPC's wire
// format (PROTOCOL-HTTP2.md in grpc/grpc) without grpc-js. A process that meshes only HTTP
// then never loads grpc-js (about 2.9 MB of live heap), and in a gRPC app the app's grpc-js
// carries only the app's calls (docs/design.md, "The ADS stream does not use grpc-js").
//
// What it does: the target forms of gRPC's naming doc that the bootstrap accepts (host:port,
// dns:, ipv4:, ipv6:, unix:, unix-abstract:), plaintext or TLS (gRFC A65 files), request and
// response messages framed as gRPC length-prefixed messages, and the call's status from the
// trailers (or a trailers-only response, or the HTTP status, or the stream's reset).
// What it does not: compression (none is offered, so a server must not compress), keepalive
// pings, and trying more than the first address of an ipv4:/ipv6: list.
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { ChannelCredentialsConfig } from './bootstrap.js';

// node:tls is loaded with the first TLS connection: about 215 KB of live heap that a plaintext
// ADS stream (Istio's agent serves it on a Unix socket) never needs.
const requireBuiltin = createRequire(import.meta.url);

/** gRPC status codes this file produces (grpc/grpc doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNIMPLEMENTED: 12,
  PERMISSION_DENIED: 7,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** A status code's name (its number when unknown). */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? String(code);
}

/** Where a server_uri points: a TCP host and port, or a Unix socket path; and the :authority to send. */
export interface GrpcTarget {
  readonly authority: string;
  readonly host?: string;
  readonly port?: number;
  /** A Unix socket (an abstract one starts with NUL). */
  readonly path?: string;
}

/** host[:port], [v6][:port] or a bare v6 address; gRPC's default port is 443. */
function hostPort(s: string, uri: string): { host: string; port: number } {
  const bad = (why: string): never => {
    throw new Error(`server_uri ${JSON.stringify(uri)}: ${why}`);
  };
  let host = s;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) bad(`no "]" after the IPv6 address in ${JSON.stringify(s)}`);
    host = s.slice(1, end);
    const after = s.slice(end + 1);
    if (after !== '') {
      if (!after.startsWith(':')) bad(`unexpected ${JSON.stringify(after)} after the IPv6 address`);
      portText = after.slice(1);
    }
  } else if (isIP(s) !== 6) {
    const colon = s.lastIndexOf(':');
    if (colon >= 0) {
      host = s.slice(0, colon);
      portText = s.slice(colon + 1);
    }
  }
  if (host === '') bad('no host');
  if (portText === undefined) return { host, port: 443 };
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port > 65535) bad(`${JSON.stringify(portText)} is not a port`);
  return { host, port };
}

/**
 * Read a server_uri as gRPC's naming doc (doc/naming.md in grpc/grpc) does for the schemes the
 * bootstrap accepts. The default :authority is the name as written (no port added), as in
 * grpc-js; a Unix socket's is "localhost". Not supported, and rejected rather than ignored: a
 * DNS server in `dns://server/name`, and percent-encoded names.
 */
export function parseServerUri(uri: string): GrpcTarget {
  const bad = (why: string): never => {
    throw new Error(`server_uri ${JSON.stringify(uri)}: ${why}`);
  };
  if (uri.includes('%')) bad('percent-encoded names are not supported');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/.exec(uri);
  const name = scheme?.[1]?.toLowerCase();
  const rest = scheme?.[2] ?? '';
  switch (name) {
    case 'unix': {
      // unix:path, or unix://absolute_path (the authority must be empty).
      if (rest.startsWith('//') && !rest.startsWith('///')) bad('unix:// takes an absolute path (unix:///path)');
      const path = rest.startsWith('//') ? rest.slice(2) : rest;
      return { authority: 'localhost', path };
    }
    case 'unix-abstract':
      return { authority: 'localhost', path: `\0${rest}` };
    case 'dns': {
      // dns:[//authority/]host[:port]
      const named = /^\/\/([^/]*)\/(.*)$/.exec(rest);
      if (named && named[1] !== '') bad(`a DNS server (${JSON.stringify(named[1])}) is not supported; use dns:///name`);
      const text = named ? named[2]! : rest;
      const { host, port } = hostPort(text, uri);
      return { authority: text, host, port };
    }
    case 'ipv4':
    case 'ipv6': {
      const first = rest.split(',')[0] ?? '';
      const { host, port } = hostPort(first, uri);
      if (isIP(host) !== (name === 'ipv4' ? 4 : 6)) bad(`${JSON.stringify(host)} is not an ${name === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
      return { authority: first, host, port };
    }
    default: {
      const { host, port } = hostPort(uri, uri);
      return { authority: uri, host, port };
    }
  }
}

export interface GrpcConnectionOptions {
  /** TLS: the name the server's certificate must carry, and the SNI, instead of the target's host (grpc-js's grpc.ssl_target_name_override). */
  readonly tlsServerName?: string;
  /** The :authority of each call, instead of the target's (grpc-js's grpc.default_authority). */
  readonly authority?: string;
  /** gRFC A8: a PING every this many ms (grpc-js's grpc.keepalive_time_ms); none by default. */
  readonly keepaliveTimeMs?: number;
  /** gRFC A8: close the connection when a PING is not answered within this many ms (grpc.keepalive_timeout_ms); default 20 s. */
  readonly keepaliveTimeoutMs?: number;
}

/** Open an HTTP/2 session to a gRPC server. TLS files (gRFC A65) are read now, so a new connection sees rotated files. */
export function connectSession(
  target: GrpcTarget,
  creds: ChannelCredentialsConfig,
  options: GrpcConnectionOptions = {},
): http2.ClientHttp2Session {
  const secure = creds.type === 'tls';
  const where = target.path !== undefined ? { path: target.path } : { host: target.host!, port: target.port! };
  const createConnection = (): Socket => {
    if (creds.type !== 'tls') return netConnect(where);
    const read = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file));
    // SNI: the override, else a host name (never an IP address), else "localhost" for a Unix socket, as grpc-js sends.
    const servername = options.tlsServerName ?? (target.host === undefined ? 'localhost' : isIP(target.host) === 0 ? target.host : undefined);
    const { connect: tlsConnect } = requireBuiltin('node:tls') as typeof import('node:tls');
    return tlsConnect({
      ...where,
      ...(servername !== undefined ? { servername } : {}),
      ALPNProtocols: ['h2'],
      ...(creds.caCertificateFile !== undefined ? { ca: read(creds.caCertificateFile) } : {}),
      ...(creds.certificateFile !== undefined ? { cert: read(creds.certificateFile), key: read(creds.privateKeyFile) } : {}),
    });
  };
  // The URL only names the scheme; the connection is createConnection's. The options are
  // grpc-js's (the same shape for the same reason as the request headers': GrpcBidiStream), and
  // with them no session memory limit, under which Node's http2 degrades with large responses.
  return http2.connect(`${secure ? 'https' : 'http'}://localhost`, {
    createConnection,
    settings: { initialWindowSize: http2.getDefaultSettings().initialWindowSize ?? 65535 },
    maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
    maxSessionMemory: Number.MAX_SAFE_INTEGER,
  });
}

export interface GrpcStreamHandler {
  /** One message from the server (its bytes, without the gRPC frame). */
  onMessage(message: Buffer): void;
  /** The call ended (once; never after cancel()). */
  onStatus(code: number, details: string): void;
}

// gRPC over HTTP/2: an HTTP status other than 200 without a grpc-status maps to a code
// (doc/http-grpc-status-mapping.md in grpc/grpc).
function codeForHttpStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

function decodeGrpcMessage(value: unknown): string {
  if (typeof value !== 'string') return '';
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A gRPC bidirectional-streaming call on an HTTP/2 session. */
export class GrpcBidiStream {
  readonly #stream: http2.ClientHttp2Stream;
  readonly #handler: GrpcStreamHandler;
  /** Bytes received and not yet framed into messages. */
  #chunks: Buffer[] = [];
  #buffered = 0;
  #ended = false;
  #httpStatus: number | undefined;
  #status: { code: number; details: string } | undefined;
  #error: string | undefined;

  constructor(session: http2.ClientHttp2Session, method: string, authority: string, handler: GrpcStreamHandler, userAgent: string) {
    this.#handler = handler;
    // The headers object gets its properties in the order grpc-js gives its own (metadata,
    // then the fixed headers), and request() no options, as grpc-js calls it: so Node's
    // http2 request path, which every call of a gRPC app runs, sees one shape of argument
    // and not two (an ADS stream shaped otherwise made a gRPC app's calls ~6 % dearer;
    // BENCHMARKS.md). The scheme comes from the session's URL; POST leaves the stream open.
    const headers: http2.OutgoingHttpHeaders = {};
    headers['grpc-accept-encoding'] = 'identity';
    headers['accept-encoding'] = 'identity';
    headers[':authority'] = authority;
    headers['user-agent'] = userAgent;
    headers['content-type'] = 'application/grpc';
    headers[':method'] = 'POST';
    headers[':path'] = method;
    headers.te = 'trailers';
    const stream = session.request(headers);
    this.#stream = stream;
    stream.on('response', (headers) => {
      this.#httpStatus = Number(headers[':status']);
      // A trailers-only response carries the status in its headers.
      if (headers['grpc-status'] !== undefined) this.#status = { code: Number(headers['grpc-status']), details: decodeGrpcMessage(headers['grpc-message']) };
    });
    stream.on('trailers', (trailers) => {
      if (trailers['grpc-status'] !== undefined) this.#status = { code: Number(trailers['grpc-status']), details: decodeGrpcMessage(trailers['grpc-message']) };
    });
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    // The server's end of the stream: every message has been read. grpc-js ends a call there
    // too, without waiting for its own side to close. Node 20 ends a stream the same way
    // whether the server sent END_STREAM or reset it (the reset's code comes with a 'close'
    // some turns later), so a stream without a status ends here as UNKNOWN, as grpc-js reports
    // a clean end without one.
    stream.on('end', () => this.#finish());
    stream.on('close', () => this.#finish());
    // Listeners in grpc-js's order, for the same reason as the headers'.
    stream.on('error', (err: Error) => {
      this.#error = err.message;
    });
  }

  /** Send one message. */
  write(message: Uint8Array): void {
    if (this.#ended) return;
    const frame = Buffer.allocUnsafe(5 + message.byteLength);
    frame[0] = 0; // not compressed
    frame.writeUInt32BE(message.byteLength, 1);
    frame.set(message, 5);
    this.#stream.write(frame);
  }

  /** End the call from this side; no status is reported. */
  cancel(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#stream.closed) this.#stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  #onData(chunk: Buffer): void {
    if (this.#ended) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= 5) {
      let head = this.#chunks[0]!;
      if (head.length < 5) head = this.#join();
      const length = head.readUInt32BE(1);
      if (this.#buffered < 5 + length) return;
      if (head[0] !== 0) {
        this.#fail(GrpcStatus.INTERNAL, `the server sent a compressed message (flag ${head[0]}), though none was offered`);
        return;
      }
      const frame = head.length >= 5 + length ? head : this.#join();
      // A copy: a view would keep Node's whole read buffer alive for as long as anything
      // decoded from the message (an Any's bytes kept for CSDS) lives.
      const message = Buffer.from(frame.subarray(5, 5 + length));
      const rest = frame.subarray(5 + length);
      this.#chunks[0] = rest;
      this.#buffered -= 5 + length;
      if (rest.length === 0) this.#chunks.shift();
      this.#handler.onMessage(message);
      if (this.#ended) return;
    }
  }

  /** Every buffered chunk as one. */
  #join(): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [all];
    return all;
  }

  #fail(code: number, details: string): void {
    this.#ended = true;
    if (!this.#stream.closed) this.#stream.close(http2.constants.NGHTTP2_CANCEL);
    this.#handler.onStatus(code, details);
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    // rstCode means something only once the stream has closed (it reads NO_ERROR before).
    const rst = this.#stream.closed ? this.#stream.rstCode : undefined;
    if (!this.#stream.closed) this.#stream.close();
    const [code, details] = this.#outcome(rst);
    this.#handler.onStatus(code, details);
  }

  /** The call's status, as PROTOCOL-HTTP2.md and the HTTP-to-gRPC mapping give it. */
  #outcome(rst: number | undefined): [number, string] {
    const status = this.#status;
    if (status !== undefined && Number.isInteger(status.code)) {
      if (status.code === GrpcStatus.OK && this.#buffered > 0) {
        return [GrpcStatus.INTERNAL, `the stream ended inside a message (${this.#buffered} bytes of it received)`];
      }
      return [status.code, status.details];
    }
    const http = this.#httpStatus;
    if (http !== undefined && http !== 200) return [codeForHttpStatus(http), `HTTP status ${http} without a grpc-status`];
    // The connection failed under the stream (a keepalive timeout, a reset connection).
    if (http !== undefined && this.#error !== undefined) return [GrpcStatus.UNAVAILABLE, this.#error];
    // No response at all: the connection failed, or the stream was refused or reset first.
    if (http === undefined) return [GrpcStatus.UNAVAILABLE, this.#error ?? (rst ? `the stream was reset before a response (HTTP/2 code ${rst})` : 'the stream closed before a response')];
    return [GrpcStatus.UNKNOWN, 'the stream ended without a grpc-status'];
  }
}

