// Shared by the retry and timeout tests: a manual clock that runs timers in order and
// lets promise continuations run between them, and builders for policies and requests.
import type { Clock, HeaderMatcher, RetryPolicy } from '@meshlet/xds-client';
import { headersFromRecord, type MeshRequest } from '../src/request.js';
import type { ResponseOutcome } from '../src/retry-outcome.js';

/** Let pending promise continuations run (no time passes on the manual clock). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly timers = new Map<number, { at: number; ms: number; callback: () => void }>();
  /** Every delay ever asked for, in order. */
  readonly requested: number[] = [];

  /**
   * Wall time (Clock.wallNow), only when the constructor is given `wallStart`: it moves with
   * now() from there. Without it, the clock is one with no wall reading, read with now().
   */
  readonly wallNow: (() => number) | undefined;

  constructor(start = 0, wallStart?: number) {
    this.#now = start;
    this.wallNow = wallStart === undefined ? undefined : () => wallStart + (this.#now - start);
  }

  now = (): number => this.#now;

  setTimeout = (callback: () => void, ms: number): unknown => {
    const id = ++this.#seq;
    this.timers.set(id, { at: this.#now + ms, ms, callback });
    this.requested.push(ms);
    return id;
  };

  clearTimeout = (handle: unknown): void => {
    this.timers.delete(handle as number);
  };

  /** Pending timer delays, in creation order. */
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.ms);
  }

  /** Move time forward by `ms`, running due timers in order with continuations between. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flush();
    for (;;) {
      let nextId: number | undefined;
      let next: { at: number; callback: () => void } | undefined;
      for (const [id, t] of this.timers) {
        if (t.at <= target && (next === undefined || t.at < next.at)) {
          next = t;
          nextId = id;
        }
      }
      if (next === undefined || nextId === undefined) break;
      this.timers.delete(nextId);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      await flush();
    }
    this.#now = target;
  }
}

export function retryPolicy(p: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    retryOn: [],
    numRetries: 1,
    perTryTimeout: undefined,
    perTryIdleTimeout: undefined,
    retriableStatusCodes: [],
    retriableHeaders: [],
    retriableRequestHeaders: [],
    retryBackOff: undefined,
    rateLimitedRetryBackOff: undefined,
    retryHostPredicates: [],
    hostSelectionRetryMaxAttempts: 0,
    ...p,
  };
}

export function request(headers: Record<string, string> = {}, extra: Partial<MeshRequest> = {}): MeshRequest {
  return { method: 'GET', path: '/', authority: 'svc:80', scheme: 'http', headers: headersFromRecord(headers), ...extra };
}

export function response(status: number, headers: Record<string, string> = {}, host?: string): ResponseOutcome & { host?: string } {
  const h = headersFromRecord(headers);
  return host === undefined ? { kind: 'response', status, headers: h } : { kind: 'response', status, headers: h, host };
}

export function exactHeader(name: string, value: string): HeaderMatcher {
  return { name, match: { kind: 'exact', value, ignoreCase: false }, invertMatch: false, treatMissingHeaderAsEmpty: false };
}
