// Real HTTP backends on loopback that answer with what they saw, for routing tests.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  backend: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpBackend {
  readonly name: string;
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

export async function startHttpBackend(name: string): Promise<HttpBackend> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const s: Seen = { backend: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-backend', name);
      res.end(JSON.stringify(s));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Close servers at once, dropping their open connections (held responses included). */
export async function closeServers(servers: readonly Server[]): Promise<void> {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A request's outcome as a code: 200 when it resolved, else its error's code. */
export function codeOf(p: Promise<unknown>): Promise<string | number> {
  return p.then(
    () => 200,
    (e: unknown) => (e as { code?: string }).code ?? String(e),
  );
}
