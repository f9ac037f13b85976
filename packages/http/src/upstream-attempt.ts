// One upstream attempt of a routed request, and the controller the caller holds for the
// whole request while attempts come and go (retry-loop.ts drives them).
//
// The retry decision is made at response start (status and headers), as Envoy's router
// makes it: the attempt pauses the upstream body there and settles its outcome. The loop
// then either delivers the response to the caller (the body streams through, nothing of it
// is buffered) or discards it: the body is drained so the connection can be reused. A
// chunk that undici parsed before the pause took effect is held until the decision.
import {
  applyResponseHeaderMutations,
  mutableHeadersFromRecord,
  type AttemptOutcome,
  type ForwardDecision,
  type HostStats,
  type HostTagged,
  type ResponseHeaderView,
} from '@meshlet/core';
import { MeshletError } from '@meshlet/xds-client';
import type { Dispatcher } from 'undici';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type ResponseHeaders = Record<string, string | string[] | undefined>;

/** What an attempt settles with: the loop's outcome, tagged with the attempt (and its error, for failures). */
export type UpstreamOutcome = AttemptOutcome & HostTagged & { readonly attempt?: UpstreamAttempt; readonly error?: Error };

/**
 * The controller handed to the caller's onRequestStart: it outlives attempts. abort()
 * cancels the retry loop and the attempt in flight; pause()/resume() act on the response
 * being delivered.
 */
export class DownstreamController implements Controller {
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  readonly #cancel = new CancelSignal();
  /** The upstream controller of the attempt whose response is being delivered. */
  upstream: Controller | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  /** Aborts when the caller aborts: the retry loop's cancellation signal. */
  get signal(): AbortSignal {
    return this.#cancel as unknown as AbortSignal;
  }

  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason ?? new Error('aborted');
    this.#cancel.fire(this.#reason);
    this.upstream?.abort(this.#reason);
  }

  pause(): void {
    this.#paused = true;
    this.upstream?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.upstream?.resume();
  }
}

/**
 * The part of AbortSignal that the retry loop and the fault delay use (aborted, reason,
 * 'abort' listeners). An AbortController per request costs more CPU than the rest of the
 * request path (EventTarget set-up); this one is a field and an array.
 */
class CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Array<() => void> = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.#listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.#listeners.indexOf(listener);
    if (i >= 0) this.#listeners.splice(i, 1);
  }

  fire(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    for (const l of this.#listeners.splice(0)) l();
  }
}

type State = 'connecting' | 'held' | 'delivering' | 'discarding';

/** The handler of one attempt, given to the endpoint's pool. */
export class UpstreamAttempt implements Handler {
  readonly hostKey: string;
  readonly #down: Handler;
  readonly #dc: DownstreamController;
  readonly #decision: ForwardDecision;
  readonly #stats: HostStats;
  readonly #signal: AbortSignal;
  readonly #settle: (o: UpstreamOutcome) => void;
  readonly #fail: (err: unknown) => void;
  readonly #started: (() => void) | undefined;
  /** No retry can follow: deliver the response as it starts, without pausing for the loop. */
  readonly #eager: boolean;
  #state: State = 'connecting';
  #controller: Controller | undefined;
  #finished = false;
  // The response held while the loop decides.
  #status = 0;
  #headers: ResponseHeaders = {};
  #statusMessage: string | undefined;
  #held: Buffer[] = [];
  #trailers: ResponseHeaders | undefined;
  #error: Error | undefined;

  constructor(
    down: Handler,
    dc: DownstreamController,
    decision: ForwardDecision,
    stats: HostStats,
    hostKey: string,
    signal: AbortSignal,
    settle: (o: UpstreamOutcome) => void,
    fail: (err: unknown) => void,
    started?: () => void,
    eager = false,
  ) {
    this.#started = started;
    this.#eager = eager;
    this.#down = down;
    this.#dc = dc;
    this.#decision = decision;
    this.#stats = stats;
    this.hostKey = hostKey;
    this.#signal = signal;
    this.#settle = settle;
    this.#fail = fail;
    stats.activeRequests++;
  }

  readonly #onAbort = (): void => {
    // Per-try or overall timeout, or the caller gave up: only an attempt with no
    // response yet is aborted by the loop.
    if (this.#state === 'connecting') this.#controller?.abort(this.#signal.reason as Error);
  };

  onRequestStart(controller: Controller): void {
    // undici starts a request once a connection has it: it is no longer pending.
    this.#started?.();
    this.#controller = controller;
    if (this.#signal.aborted) controller.abort(this.#signal.reason as Error);
    else this.#signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  onResponseStart(controller: Controller, statusCode: number, headers: ResponseHeaders, statusMessage?: string): void {
    if (this.#state !== 'connecting') return;
    this.#controller = controller;
    this.#state = 'held';
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#status = statusCode;
    this.#headers = headers;
    this.#statusMessage = statusMessage;
    if (this.#eager) {
      this.#settle({ kind: 'response', status: statusCode, headers: headerView(headers), host: this.hostKey, attempt: this });
      this.deliver();
      return;
    }
    controller.pause();
    this.#settle({ kind: 'response', status: statusCode, headers: headerView(headers), host: this.hostKey, attempt: this });
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.#state === 'delivering') this.#down.onResponseData?.(this.#dc, chunk);
    else if (this.#state === 'held') this.#held.push(chunk);
  }

  onResponseEnd(_controller: Controller, trailers: ResponseHeaders): void {
    this.#finish();
    if (this.#state === 'delivering') this.#down.onResponseEnd?.(this.#dc, trailers as never);
    else if (this.#state === 'held') this.#trailers = trailers;
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.#finish();
    switch (this.#state) {
      case 'connecting': {
        this.#state = 'discarding';
        const outcome = outcomeOfError(error, this.#signal.aborted);
        if (outcome === undefined) this.#fail(error);
        else this.#settle({ ...outcome, host: this.hostKey, attempt: this, error });
        return;
      }
      case 'held':
        this.#error = error;
        return;
      case 'delivering':
        this.#down.onResponseError?.(this.#dc, upstreamError(error, this.hostKey));
        return;
      case 'discarding':
        return;
    }
  }

  // The older handler style, for a PoolFactory's dispatcher that calls it (undici's own
  // dispatchers see onRequestStart and use the methods above).
  #legacy: LegacyController | undefined;

  onConnect(abort: (err?: Error) => void): void {
    this.#legacy = new LegacyController(abort);
    this.onRequestStart(this.#legacy);
  }

  onHeaders(statusCode: number, raw: Buffer[] | string[] | null, resume: () => void, statusText: string): boolean {
    const c = (this.#legacy ??= new LegacyController(() => {}));
    c.resumeFn = resume;
    if (statusCode < 200) return true; // informational: not the response
    this.onResponseStart(c, statusCode, recordOf(raw), statusText);
    return !c.paused;
  }

  onData(chunk: Buffer): boolean {
    const c = this.#legacy!;
    this.onResponseData(c, chunk);
    return !c.paused;
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.onResponseEnd(this.#legacy ?? new LegacyController(() => {}), recordOf(trailers));
  }

  onError(err: Error): void {
    this.onResponseError(this.#legacy ?? new LegacyController(() => {}), err);
  }

  /** Hand this attempt's response to the caller: the request's final answer. */
  deliver(): void {
    if (this.#state !== 'held') return;
    this.#state = 'delivering';
    const c = this.#controller!;
    this.#dc.upstream = c;
    if (this.#decision.responseHeaderOps.length > 0) {
      applyResponseHeaderMutations(this.#decision, mutableHeadersFromRecord(this.#headers as Record<string, string | string[]>), {
        upstreamRemoteAddress: this.hostKey,
      });
    }
    this.#down.onResponseStart?.(this.#dc, this.#status, this.#headers as never, this.#statusMessage);
    for (const chunk of this.#held.splice(0)) this.#down.onResponseData?.(this.#dc, chunk);
    if (this.#trailers !== undefined) {
      this.#down.onResponseEnd?.(this.#dc, this.#trailers as never);
    } else if (this.#error !== undefined) {
      this.#down.onResponseError?.(this.#dc, upstreamError(this.#error, this.hostKey));
    } else if (this.#dc.aborted) {
      c.abort(this.#dc.reason!);
    } else if (!this.#dc.paused && !this.#eager) {
      c.resume(); // paused at response start for the loop's decision
    }
  }

  /** This attempt's response is not the answer (retried, or the loop moved on): drain it. */
  discard(): void {
    if (this.#state === 'delivering' || this.#state === 'discarding') return;
    const wasHeld = this.#state === 'held';
    this.#state = 'discarding';
    this.#held = [];
    if (wasHeld && !this.#finished) this.#controller?.resume();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#stats.activeRequests--;
    this.#started?.();
    this.#signal.removeEventListener('abort', this.#onAbort);
  }
}

/**
 * The caller's handler for the whole request: gives back what the request held (its
 * circuit breaker 'request' slot) once the request is over, however it ends.
 */
export class RequestScope implements Handler {
  readonly #h: Handler;
  #release: (() => void) | undefined;

  constructor(h: Handler) {
    this.#h = h;
  }

  /** Give `release` back when the request is over. */
  hold(release: () => void): void {
    this.#release = release;
  }

  #done(): void {
    const r = this.#release;
    this.#release = undefined;
    r?.();
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#h.onRequestStart?.(controller, context);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: ResponseHeaders, statusMessage?: string): void {
    this.#h.onResponseStart?.(controller, statusCode, headers as never, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.#h.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: ResponseHeaders): void {
    this.#done();
    this.#h.onResponseEnd?.(controller, trailers as never);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.#done();
    this.#h.onResponseError?.(controller, error);
  }
}

/** A Controller over the older style's abort function and resume callback. */
class LegacyController implements Controller {
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

/** Raw [name, value, ...] headers as a record of lower-case names. */
function recordOf(raw: Buffer[] | string[] | null): ResponseHeaders {
  const out: Record<string, string | string[]> = {};
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString().toLowerCase();
    const value = raw[i + 1]!.toString();
    const prev = out[name];
    out[name] = prev === undefined ? value : typeof prev === 'string' ? [prev, value] : [...prev, value];
  }
  return out;
}

function headerView(headers: ResponseHeaders): ResponseHeaderView {
  return {
    get(name: string): string | undefined {
      const v = headers[name];
      return v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
    },
  };
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const RESETS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * The retry loop's view of an attempt that failed before a response: a connect failure,
 * a reset (the connection dropped or the peer broke the protocol), or, when the loop
 * aborted it, a local reset. Anything else (a bad request option, say) is not an upstream
 * outcome and fails the request as it is.
 */
function outcomeOfError(error: Error, abortedByLoop: boolean): AttemptOutcome | undefined {
  if (abortedByLoop) return { kind: 'reset', reason: 'local' };
  const code = (error as { code?: string }).code;
  if (code === undefined) return undefined;
  if (CONNECT_FAILURES.has(code)) return { kind: 'connect_failure' };
  if (RESETS.has(code)) return { kind: 'reset', reason: 'connection_termination' };
  if (code.startsWith('HPE_')) return { kind: 'reset', reason: 'protocol_error' };
  return undefined;
}

/** Connection failures to the picked endpoint carry UF; other errors pass through as undici made them. */
export function upstreamError(error: Error, hostKey: string): Error {
  const code = (error as { code?: string }).code;
  if (code !== undefined && CONNECT_FAILURES.has(code)) {
    return new MeshletError('MESHLET_UPSTREAM_CONNECT_FAILURE', `upstream connect error to ${hostKey}: ${error.message}`, { cause: error });
  }
  return error;
}
