// Every DiscoveryRequest the server received, classified, so tests and operators can
// see exactly what a client sent (ACK, NACK with its error, subscription changes).

export type RequestKind = 'initial' | 'ack' | 'nack' | 'update';

export interface RecordedRequest {
  streamId: number;
  typeUrl: string;
  versionInfo: string;
  responseNonce: string;
  resourceNames: string[];
  errorDetail?: { code: number; message: string };
  /**
   * 'initial': the first request for the type on the stream (nothing sent yet, or no nonce);
   * 'nack': error_detail is set; 'update': the subscription changed; 'ack': none of those.
   */
  kind: RequestKind;
  /** The response_nonce was not the last one sent for the type: recorded, otherwise ignored. */
  stale?: boolean;
  /** The node, when this request carried one (clients send it on the first request of a stream). */
  node?: { id: string; cluster: string; metadata: unknown };
  /** Date.now() when received. */
  at: number;
}

interface Waiter {
  predicate: (r: RecordedRequest) => boolean;
  resolve: (r: RecordedRequest) => void;
}

export class RequestLog {
  readonly entries: RecordedRequest[] = [];
  private readonly waiters = new Set<Waiter>();

  /** `limit` caps memory for a long-running server: the oldest entries are dropped. */
  constructor(private readonly limit = Infinity) {}

  add(request: RecordedRequest): void {
    this.entries.push(request);
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
    for (const waiter of [...this.waiters]) {
      if (waiter.predicate(request)) {
        this.waiters.delete(waiter);
        waiter.resolve(request);
      }
    }
  }

  /** The first recorded request matching `predicate`, or the next one to arrive. */
  waitFor(predicate: (r: RecordedRequest) => boolean, timeoutMs: number): Promise<RecordedRequest> {
    const past = this.entries.find(predicate);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no matching DiscoveryRequest within ${timeoutMs} ms; received:\n${this.describe()}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** A short listing of the last requests, for test failure messages. */
  describe(last = 20): string {
    if (this.entries.length === 0) return '  (none)';
    return this.entries
      .slice(-last)
      .map(
        (r) =>
          `  stream ${r.streamId} ${r.kind}${r.stale ? ' (stale)' : ''} ${shortType(r.typeUrl)} version=${JSON.stringify(r.versionInfo)} ` +
          `nonce=${JSON.stringify(r.responseNonce)} names=${JSON.stringify(r.resourceNames)}` +
          (r.errorDetail ? ` error=${JSON.stringify(r.errorDetail.message)}` : ''),
      )
      .join('\n');
  }
}

export function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}
