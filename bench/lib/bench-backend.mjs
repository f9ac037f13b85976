// The HTTP backend the request-path benchmarks share: a small JSON body, keep-alive on.
import { createServer } from 'node:http';

export const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** Listen on 127.0.0.1 on an ephemeral port; resolves to { server, port }. */
export async function startBenchBackend() {
  const body = Buffer.from(JSON.stringify({ ok: true, pad: 'x'.repeat(100) }));
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: server.address().port };
}
