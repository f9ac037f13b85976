// The ADS stream's gRPC transport over node:http2 (src/grpc-stream.ts), against a raw HTTP/2
// server on loopback that writes exactly the frames each case needs. The real grpc-js server
// side is covered by every ADS test (test/helpers/ads-server.ts is a grpc-js server).
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectSession, GrpcBidiStream, parseServerUri } from '../src/grpc-stream.js';

describe('parseServerUri (gRPC naming doc forms the bootstrap accepts)', () => {
  it.each([
    ['127.0.0.1:15010', { authority: '127.0.0.1:15010', host: '127.0.0.1', port: 15010 }],
    ['istiod.istio-system.svc:15012', { authority: 'istiod.istio-system.svc:15012', host: 'istiod.istio-system.svc', port: 15012 }],
    // The authority as written, no port added (grpc-js); the connection goes to 443.
    ['istiod', { authority: 'istiod', host: 'istiod', port: 443 }],
    ['[::1]:8080', { authority: '[::1]:8080', host: '::1', port: 8080 }],
    ['dns:///xds.example.com:443', { authority: 'xds.example.com:443', host: 'xds.example.com', port: 443 }],
    ['dns:xds.example.com', { authority: 'xds.example.com', host: 'xds.example.com', port: 443 }],
    ['ipv4:10.0.0.1:80,10.0.0.2:80', { authority: '10.0.0.1:80', host: '10.0.0.1', port: 80 }],
    ['ipv6:[2001:db8::1]:15010', { authority: '[2001:db8::1]:15010', host: '2001:db8::1', port: 15010 }],
    ['ipv6:2001:db8::1', { authority: '2001:db8::1', host: '2001:db8::1', port: 443 }],
    ['unix:///etc/istio/proxy/XDS', { authority: 'localhost', path: '/etc/istio/proxy/XDS' }],
    ['unix:./XDS', { authority: 'localhost', path: './XDS' }],
    ['unix-abstract:xds', { authority: 'localhost', path: '\0xds' }],
  ])('%s', (uri, target) => {
    expect(parseServerUri(uri)).toEqual(target);
  });

  it('names what it cannot read', () => {
    expect(() => parseServerUri('host:99999')).toThrow(/server_uri "host:99999": "99999" is not a port/);
    expect(() => parseServerUri('[::1:80')).toThrow(/no "]" after the IPv6 address/);
    expect(() => parseServerUri('dns:///:80')).toThrow(/no host/);
    // Forms the naming doc has that this client does not support: rejected, not ignored.
    expect(() => parseServerUri('dns://8.8.8.8/xds.example.com:15010')).toThrow(/a DNS server \("8\.8\.8\.8"\) is not supported/);
    expect(() => parseServerUri('unix:%2Ftmp%2Fxds')).toThrow(/percent-encoded names are not supported/);
    // The naming doc's unix://absolute_path has an empty authority.
    expect(() => parseServerUri('unix://host/abs')).toThrow(/unix:\/\/ takes an absolute path/);
    expect(() => parseServerUri('ipv4:xds.example.com:80')).toThrow(/"xds\.example\.com" is not an IPv4 address/);
    expect(() => parseServerUri('ipv6:[10.0.0.1]:80')).toThrow(/"10\.0\.0\.1" is not an IPv6 address/);
  });
});

type Serve = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

const servers: http2.Http2Server[] = [];
const sessions: http2.ClientHttp2Session[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A raw HTTP/2 server answering every stream with `serve`; a session to it. */
async function sessionTo(serve: Serve): Promise<http2.ClientHttp2Session> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {}); // a reset the case itself makes
    serve(stream, headers);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const session = connectSession(parseServerUri(`127.0.0.1:${port}`), { type: 'insecure' });
  sessions.push(session);
  return session;
}

/** gRPC length-prefixed message frame. */
function frame(bytes: Buffer, flag = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** Open a stream and collect what it reports until its status. */
function call(session: http2.ClientHttp2Session, write?: Buffer[]) {
  const messages: Buffer[] = [];
  let stream!: GrpcBidiStream;
  const status = new Promise<{ code: number; details: string }>((resolve) => {
    stream = new GrpcBidiStream(session, '/test.S/M', 'xds.test:15010', {
      onMessage: (m) => messages.push(Buffer.from(m)),
      onStatus: (code, details) => resolve({ code, details }),
    }, 'test-agent');
  });
  for (const m of write ?? []) stream.write(m);
  return { stream, messages, status };
}

describe('GrpcBidiStream', () => {
  it('sends gRPC headers and framed messages; reads messages however the bytes are split, then the trailers status', async () => {
    const big = Buffer.alloc(200_000, 7);
    let seen: { headers: http2.IncomingHttpHeaders; body: Buffer } | undefined;
    const session = await sessionTo((stream, headers) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => {
        parts.push(d);
        if (Buffer.concat(parts).length < 5 + 3 + 5 + 2) return;
        seen = { headers, body: Buffer.concat(parts) };
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        // Two messages in one write, then a large one split mid-header and mid-body.
        stream.write(Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two'))]));
        const third = frame(big);
        stream.write(third.subarray(0, 3));
        stream.write(third.subarray(3, 70_000));
        stream.end(third.subarray(70_000));
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      });
    });
    const c = call(session, [Buffer.from('abc'), Buffer.from('de')]);
    expect(await c.status).toEqual({ code: 0, details: '' });
    expect(c.messages.map((m) => m.length)).toEqual([3, 3, 200_000]);
    expect(c.messages[0]!.toString()).toBe('one');
    expect(c.messages[1]!.toString()).toBe('two');
    expect(c.messages[2]!.equals(big)).toBe(true);
    expect(seen!.headers).toMatchObject({
      ':method': 'POST',
      ':path': '/test.S/M',
      ':authority': 'xds.test:15010',
      ':scheme': 'http',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'test-agent',
      'grpc-accept-encoding': 'identity',
    });
    expect(seen!.body.equals(Buffer.concat([frame(Buffer.from('abc')), frame(Buffer.from('de'))]))).toBe(true);
  });

  it('reads the status of a trailers-only response, with its percent-encoded message', async () => {
    const session = await sessionTo((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'going%20away%3A%20100%25' }, { endStream: true });
    });
    expect(await call(session).status).toEqual({ code: 14, details: 'going away: 100%' });
  });

  it.each([
    [503, 14],
    [404, 12],
    [401, 16],
    [500, 2],
  ])('maps HTTP %i without a grpc-status to code %i', async (httpStatus, code) => {
    const session = await sessionTo((stream) => stream.respond({ ':status': httpStatus }, { endStream: true }));
    const { status } = call(session);
    expect(await status).toEqual({ code, details: `HTTP status ${httpStatus} without a grpc-status` });
  });

  it('reports a reset stream as UNAVAILABLE', async () => {
    const session = await sessionTo((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    const s = await call(session).status;
    expect(s.code).toBe(14);
    expect(s.details).toMatch(/NGHTTP2_REFUSED_STREAM|code 7/);
  });

  it('reports UNKNOWN for a response that ends without a grpc-status, cleanly or by a reset', async () => {
    for (const rst of [http2.constants.NGHTTP2_NO_ERROR, http2.constants.NGHTTP2_CANCEL, http2.constants.NGHTTP2_PROTOCOL_ERROR]) {
      const reset = await sessionTo((stream) => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        setTimeout(() => stream.close(rst), 10);
      });
      expect(await call(reset).status).toEqual({ code: 2, details: 'the stream ended without a grpc-status' });
    }
    const session = await sessionTo((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(frame(Buffer.from('ok')));
    });
    const c = call(session);
    expect(await c.status).toEqual({ code: 2, details: 'the stream ended without a grpc-status' });
    expect(c.messages.map(String)).toEqual(['ok']);
  });

  it('fails a stream that ends inside a message with INTERNAL, whatever its trailers say', async () => {
    const session = await sessionTo((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.end(frame(Buffer.from('truncated')).subarray(0, 8));
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    });
    expect(await call(session).status).toEqual({ code: 13, details: 'the stream ended inside a message (8 bytes of it received)' });
  });

  it('fails a compressed message it never offered to take with INTERNAL, and cancels the stream', async () => {
    let closed!: Promise<number>;
    const session = await sessionTo((stream) => {
      closed = new Promise((r) => stream.on('close', () => r(stream.rstCode)));
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.write(frame(Buffer.from('zz'), 1));
    });
    const c = call(session);
    expect(await c.status).toEqual({ code: 13, details: 'the server sent a compressed message (flag 1), though none was offered' });
    expect(c.messages).toEqual([]);
    expect(await closed).toBe(http2.constants.NGHTTP2_CANCEL);
  });

  it('reports nothing after cancel()', async () => {
    let serverClosed!: Promise<void>;
    const session = await sessionTo((stream) => {
      serverClosed = new Promise((r) => stream.on('close', () => r()));
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    });
    const statuses: number[] = [];
    const stream = new GrpcBidiStream(session, '/test.S/M', 'x', { onMessage: () => {}, onStatus: (code) => statuses.push(code) }, 'ua');
    await new Promise((r) => setTimeout(r, 20));
    stream.cancel();
    await serverClosed;
    await new Promise((r) => setTimeout(r, 20));
    expect(statuses).toEqual([]);
  });

  it('reports a connection that cannot be made as UNAVAILABLE', async () => {
    const probe = http2.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const session = connectSession(parseServerUri(`127.0.0.1:${port}`), { type: 'insecure' });
    session.on('error', () => {});
    sessions.push(session);
    const s = await call(session).status;
    expect(s.code).toBe(14);
    expect(s.details).toMatch(/ECONNREFUSED/);
  });
});
