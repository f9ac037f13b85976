// A grpc-js echo backend whose behaviour each call chooses through its metadata, for the
// @meshlet/grpc resilience and balancing tests:
// - `x-call-id` + `x-fail-times` (+ `x-fail-code`, default UNAVAILABLE): fail the first N
//   attempts of that call id, then answer with the attempt number;
// - `x-fail-code` alone: always fail with that code;
// - `x-hold`: keep the call open until release() (for in-flight limits);
// - `x-delay-ms`: answer after that long (with `x-headers-first`, send response headers at once).
// It records the deadline each call arrived with (grpc-timeout) and the calls in flight.
import * as grpc from '@grpc/grpc-js';
import { ECHO_SERVICE } from './grpc-echo.js';

export interface BehaviorBackend {
  readonly name: string;
  readonly port: number;
  calls: number;
  inFlight: number;
  readonly attempts: Map<string, number>;
  /** Milliseconds left to each call's deadline when it arrived (Infinity: none). */
  readonly deadlinesMs: number[];
  /** Each call's metadata, in arrival order. */
  readonly metadata: grpc.Metadata[];
  /** Answer every held call. */
  release(): void;
  /** Resolves once `n` calls are in flight. */
  waitInFlight(n: number): Promise<void>;
  close(): Promise<void>;
}

function first(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return v === undefined ? undefined : String(v);
}

export interface BehaviorOptions {
  /** Fail every call with this code, whatever its metadata says. */
  readonly failCode?: grpc.status;
  /** Hold every call until release(). */
  readonly holdAll?: boolean;
  /** End each successful call with this ORCA load report (gRFC A51's endpoint-load-metrics-bin trailer). */
  readonly orca?: { readonly cpuUtilization: number; readonly qps: number };
}

/** An xds.data.orca.v3.OrcaLoadReport with cpu_utilization (1) and rps_fractional (6), in wire format. */
export function encodeOrcaReport(cpuUtilization: number, qps: number): Buffer {
  const out = Buffer.alloc(18);
  out[0] = (1 << 3) | 1;
  out.writeDoubleLE(cpuUtilization, 1);
  out[9] = (6 << 3) | 1;
  out.writeDoubleLE(qps, 10);
  return out;
}

export async function startBehaviorBackend(name: string, port = 0, options: BehaviorOptions = {}): Promise<BehaviorBackend> {
  const server = new grpc.Server();
  const held: Array<() => void> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const b: BehaviorBackend = {
    name,
    port: 0,
    calls: 0,
    inFlight: 0,
    attempts: new Map(),
    deadlinesMs: [],
    metadata: [],
    release() {
      for (const h of held.splice(0)) h();
    },
    waitInFlight(n) {
      if (b.inFlight >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    close: () => Promise.resolve(),
  };
  server.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      b.calls++;
      b.inFlight++;
      for (const w of [...waiters]) if (b.inFlight >= w.n) waiters.splice(waiters.indexOf(w), 1), w.resolve();
      const deadline = call.getDeadline();
      const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline === Infinity ? Infinity : Number(deadline) - Date.now();
      b.deadlinesMs.push(ms);
      b.metadata.push(call.metadata);
      const md = call.metadata;
      const done = (err: grpc.ServiceError | null, reply?: string): void => {
        b.inFlight--;
        if (err) cb(err);
        else if (options.orca) {
          const trailer = new grpc.Metadata();
          trailer.set('endpoint-load-metrics-bin', encodeOrcaReport(options.orca.cpuUtilization, options.orca.qps));
          cb(null, Buffer.from(reply!), trailer);
        } else cb(null, Buffer.from(reply!));
      };
      if (options.failCode !== undefined) {
        done({ code: options.failCode, details: `${name} fails every call` } as grpc.ServiceError);
        return;
      }
      const id = first(md, 'x-call-id');
      const failTimes = first(md, 'x-fail-times');
      const failCode = first(md, 'x-fail-code');
      if (id !== undefined) {
        const n = (b.attempts.get(id) ?? 0) + 1;
        b.attempts.set(id, n);
        if (failTimes !== undefined && n <= Number(failTimes)) {
          done({ code: Number(failCode ?? grpc.status.UNAVAILABLE), details: `${name} fails attempt ${n}` } as grpc.ServiceError);
          return;
        }
      } else if (failCode !== undefined) {
        done({ code: Number(failCode), details: `${name} always fails` } as grpc.ServiceError);
        return;
      }
      const reply = `${name}:${call.request.toString()}`;
      if (options.holdAll || first(md, 'x-hold') !== undefined) {
        held.push(() => done(null, reply));
        return;
      }
      const delay = first(md, 'x-delay-ms');
      if (first(md, 'x-headers-first') !== undefined) call.sendMetadata(new grpc.Metadata());
      if (delay !== undefined) setTimeout(() => done(null, reply), Number(delay));
      else done(null, reply);
    },
  });
  (b as { port: number }).port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  b.close = () =>
    new Promise<void>((resolve) => {
      b.release();
      server.tryShutdown(() => resolve());
      // Calls still open (held) must not keep the shutdown waiting.
      setTimeout(() => server.forceShutdown(), 200).unref();
    });
  return b;
}

const bytes = (b: Buffer): Buffer => b;

/** Streaming methods over raw bytes: `Count` streams n replies; `Chat` echoes each message. */
export const STREAM_SERVICE: grpc.ServiceDefinition = {
  Count: { path: '/meshlet.test.StreamService/Count', requestStream: false, responseStream: true, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes },
  Chat: { path: '/meshlet.test.StreamService/Chat', requestStream: true, responseStream: true, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes },
};

export async function startStreamBackend(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(STREAM_SERVICE, {
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      for (let i = 0; i < n; i++) call.write(Buffer.from(`${name}:${i}`));
      call.end();
    },
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (m: Buffer) => call.write(Buffer.from(`${name}:${m.toString()}`)));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}
