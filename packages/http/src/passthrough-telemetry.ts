// Telemetry for a request to a host outside the mesh, sent through the pass-through
// dispatcher (ALLOW_ANY): Istio reports these against its PassthroughCluster, so a
// dashboard shows traffic leaving the mesh.
import type { CallRecorder } from '@meshlet/core';
import type { Duplex } from 'node:stream';
import { type BodyChunk, type LegacyHandler, type RawHeaders } from './legacy-handler.js';
import { knownBodyBytes, type Body } from './replay-body.js';

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';

/** The caller's handler, with the call's status, bytes and end reported to `rec`. */
export class RecordingHandler implements LegacyHandler {
  readonly #h: LegacyHandler;
  readonly #rec: CallRecorder;
  #status = 0;
  /** The body's size was known and counted up front. */
  readonly #bodyCounted: boolean;

  constructor(h: LegacyHandler, rec: CallRecorder, body: Body) {
    this.#h = h;
    this.#rec = rec;
    const size = knownBodyBytes(body);
    if (size !== undefined && size > 0) rec.requestBytes(size);
    this.#bodyCounted = size !== undefined;
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.#h.onConnect?.(abort, context);
  }

  onResponseStarted(): void {
    this.#h.onResponseStarted?.();
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode >= 200) this.#status = statusCode;
    return this.#h.onHeaders ? this.#h.onHeaders(statusCode, headers, resume, statusText) : true;
  }

  onData(chunk: Buffer): boolean {
    this.#rec.responseBytes(chunk.length);
    return this.#h.onData ? this.#h.onData(chunk) : true;
  }

  onBodySent(chunk: BodyChunk): void {
    if (!this.#bodyCounted) this.#rec.requestBytes(knownBodyBytes(chunk) ?? 0);
    this.#h.onBodySent?.(chunk);
  }

  onUpgrade(statusCode: number, headers: RawHeaders, socket: Duplex): void {
    this.#rec.end({ status: statusCode });
    this.#h.onUpgrade?.(statusCode, headers, socket);
  }

  onComplete(trailers: RawHeaders): void {
    this.#rec.end({ status: this.#status });
    this.#h.onComplete?.(trailers);
  }

  onError(err: Error): void {
    const code = (err as { code?: string }).code;
    // Envoy's flags for a pass-through request that failed: no connection (UF), else a reset.
    const flags = code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' ? 'UF' : 'UR';
    this.#rec.end({ status: this.#status, flags });
    this.#h.onError?.(err);
  }
}
