// undici's two handler styles. Its connection pools speak the older one
// (onConnect/onHeaders/onData/onComplete/onError: a Request calls exactly these), and so
// do its own callers (`undici.request`, `fetch`). The request path speaks it too, so a
// request crosses MeshAgent with no conversion; a caller's handler of the newer style
// (onRequestStart/onResponseStart/...) is adapted once, here.
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

export type RawHeaders = Buffer[] | string[] | null;

/** The older handler style, as undici's Request calls it. */
export interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
  onError?(err: Error): void;
  onUpgrade?(statusCode: number, headers: RawHeaders, socket: Duplex): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: RawHeaders): void;
  /**
   * A piece of the request body was written: undici 7 passes the chunk itself (client-h1.js),
   * although its type declarations still say (chunkSize, totalBytesSent).
   */
  onBodySent?(chunk: BodyChunk): void;
}

/** What undici hands `onBodySent`: the piece of the request body it wrote. */
export type BodyChunk = Buffer | Uint8Array | string;

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

export function isNewStyle(h: object): h is Handler {
  return typeof (h as Handler).onRequestStart === 'function' || typeof (h as Handler).onResponseStart === 'function';
}

/** The caller's handler in the older style: as it is, or adapted once. */
export function asLegacy(h: Handler | LegacyHandler): LegacyHandler {
  return isNewStyle(h) ? new LegacyFromNew(h) : (h as LegacyHandler);
}

/** Raw [name, value, ...] headers as a record of lower-case names (values as latin1 strings). */
export function recordOfRaw(raw: RawHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const prev = out[name];
    out[name] = prev === undefined ? value : typeof prev === 'string' ? [prev, value] : [...prev, value];
  }
  return out;
}

/** A header record as raw [name, value, ...] buffers. */
export function rawOfRecord(record: Record<string, string | string[] | undefined>): Buffer[] {
  const raw: Buffer[] = [];
  for (const name in record) {
    const value = record[name];
    if (value === undefined) continue;
    if (typeof value === 'string') raw.push(Buffer.from(name, 'latin1'), Buffer.from(value, 'latin1'));
    else for (const v of value) raw.push(Buffer.from(name, 'latin1'), Buffer.from(v, 'latin1'));
  }
  return raw;
}

/**
 * A response made here (a direct response, a redirect, a fault abort), delivered through the
 * handler's callbacks as an upstream response would be; `onConnect` was already called.
 * `isAborted` is asked between callbacks (the caller may abort from inside one).
 */
export function deliverLocalResponse(
  h: LegacyHandler,
  status: number,
  headers: Record<string, string | string[]>,
  body: string | undefined,
  isAborted: () => Error | undefined = () => undefined,
): void {
  const bytes = body === undefined ? undefined : Buffer.from(body);
  if (bytes !== undefined) headers['content-length'] = String(bytes.length);
  h.onResponseStarted?.();
  h.onHeaders?.(status, rawOfRecord(headers), noop, '');
  if (bytes !== undefined && bytes.length > 0 && isAborted() === undefined) h.onData?.(bytes);
  const aborted = isAborted();
  if (aborted !== undefined) h.onError?.(aborted);
  else h.onComplete?.([]);
}

function noop(): void {}

class AdaptedController implements Controller {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  resumeFn: (() => void) | undefined;
  readonly #abort: (err?: Error) => void;

  constructor(abort: (err?: Error) => void) {
    this.#abort = abort;
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#abort(reason);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeFn?.();
  }
}

/** A handler of the newer style, called through the older style's methods. */
class LegacyFromNew implements LegacyHandler {
  readonly #h: Handler;
  #c: AdaptedController = new AdaptedController(() => {});

  constructor(h: Handler) {
    this.#h = h;
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.#c = new AdaptedController(abort);
    this.#h.onRequestStart?.(this.#c, context);
  }

  onUpgrade(statusCode: number, headers: RawHeaders, socket: Duplex): void {
    this.#h.onRequestUpgrade?.(this.#c, statusCode, recordOfRaw(headers) as never, socket);
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    this.#c.resumeFn = resume;
    this.#h.onResponseStart?.(this.#c, statusCode, recordOfRaw(headers) as never, statusText);
    return !this.#c.paused;
  }

  onData(chunk: Buffer): boolean {
    this.#h.onResponseData?.(this.#c, chunk);
    return !this.#c.paused;
  }

  onComplete(trailers: RawHeaders): void {
    this.#h.onResponseEnd?.(this.#c, recordOfRaw(trailers) as never);
  }

  onError(err: Error): void {
    this.#h.onResponseError?.(this.#c, err);
  }
}
