// Test plumbing for @meshlet/grpc: a control plane with a mesh of its own registered under a
// scheme, raw-bytes echo calls that report the status instead of throwing, and a TCP server
// that only counts connections (to show a cluster never called was never connected).
import { createServer, type Server, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, type Mesh, type MeshOptions } from '@meshlet/core';
import { register } from '@meshlet/grpc';
import { TYPE_URLS } from '@meshlet/xds-client';
import { ECHO_SERVICE } from './grpc-echo.js';
import { bootstrapFor } from './xds-resources.js';

export interface GrpcMeshEnv {
  readonly cp: ControlPlane;
  readonly mesh: Mesh;
  readonly scheme: string;
  readonly address: string;
  client(authority: string, options?: grpc.ChannelOptions): EchoCaller;
  close(): Promise<void>;
}

let schemeCounter = 0;

/** A control plane on loopback and a mesh bootstrapped to it, registered under a fresh scheme. */
export async function startGrpcMesh(resources: Record<string, unknown[]> = {}, meshOptions: MeshOptions = {}): Promise<GrpcMeshEnv> {
  const cp = new ControlPlane();
  const { address } = await cp.start();
  for (const [type, list] of Object.entries(resources)) cp.setResources(type, list as Parameters<ControlPlane['setResources']>[1]);
  const mesh = createMesh({ bootstrap: bootstrapFor(address), listenerCatalog: false, ...meshOptions });
  const scheme = `meshlet-test${schemeCounter++}`;
  register({ scheme, mesh });
  const clients: EchoCaller[] = [];
  return {
    cp,
    mesh,
    scheme,
    address,
    client(authority, options) {
      const c = echoCaller(`${scheme}:///${authority}`, options);
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      mesh.close();
      await cp.stop();
    },
  };
}

export interface CallResult {
  readonly ok: boolean;
  readonly reply: string;
  readonly code: grpc.status;
  readonly details: string;
}

export interface CallOptions {
  readonly metadata?: Record<string, string | Buffer>;
  readonly deadlineMs?: number;
  readonly waitForReady?: boolean;
}

export interface EchoCaller {
  readonly client: grpc.Client;
  call(message: string, options?: CallOptions): Promise<CallResult>;
  /** The backend name of each reply (`name:message`), failing on the first error. */
  names(n: number, options?: CallOptions): Promise<string[]>;
  close(): void;
}

const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'EchoService');

export function echoCaller(target: string, options: grpc.ChannelOptions = {}): EchoCaller {
  const client = new EchoClient(target, grpc.credentials.createInsecure(), options) as unknown as grpc.Client & {
    Echo: (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;
  };
  const call = (message: string, o: CallOptions = {}): Promise<CallResult> => {
    const md = new grpc.Metadata(o.waitForReady ? { waitForReady: true } : undefined);
    for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v);
    return new Promise((resolve) =>
      client.Echo(Buffer.from(message), md, { deadline: Date.now() + (o.deadlineMs ?? 10_000) }, (err, res) =>
        resolve(
          err
            ? { ok: false, reply: '', code: err.code, details: err.details }
            : { ok: true, reply: res!.toString(), code: grpc.status.OK, details: '' },
        ),
      ),
    );
  };
  return {
    client,
    call,
    async names(n, o) {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await call(`m${i}`, o);
        if (!r.ok) throw new Error(`call ${i} failed: ${grpc.status[r.code]} ${r.details}`);
        out.push(r.reply.split(':')[0]!);
      }
      return out;
    },
    close: () => client.close(),
  };
}

/** A TCP listener that accepts and counts connections and never answers: a backend that must stay untouched. */
export async function startConnectionCounter(): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { port: 0, connections: 0, close: () => Promise.resolve() };
  const server: Server = createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as { port: number }).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}

/** A clock that moves only when told: timers run in order as advance() passes them. */
export class ManualClock {
  #now = 1_000_000;
  #timers: Array<{ at: number; id: number; fn: () => void }> = [];
  #next = 1;
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): number {
    const id = this.#next++;
    this.#timers.push({ at: this.#now + Math.max(0, ms), id, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.#timers[0];
      if (!t || t.at > end) break;
      this.#timers.shift();
      this.#now = t.at;
      t.fn();
    }
    this.#now = end;
  }
}

export function count(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

export { TYPE_URLS };
