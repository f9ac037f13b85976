// Envoy's request mirroring (route request_mirror_policies): a copy of the request to each
// mirror cluster, its host suffixed "-shadow", never waited for and never failing the
// request.
import { selectMirrorClusters, type ForwardDecision, type TargetSnapshot } from '@meshlet/core';
import type { Dispatcher } from 'undici';
import { poolKey, type EndpointPools } from './endpoint-pools.js';
import type { LegacyHandler } from './legacy-handler.js';

type Body = Dispatcher.DispatchOptions['body'];

const DISCARD: LegacyHandler = {
  onConnect() {},
  onHeaders: () => true,
  onData: () => true,
  onComplete() {},
  onError() {},
};

export interface MirrorTarget {
  readonly snapshot: TargetSnapshot;
  readonly scheme: string;
  /** The Host the caller sent (the mirror's is this with "-shadow"). */
  readonly host: string;
}

/**
 * Send the mirrors of a request; returns the body to send upstream. A streamed body (fetch's)
 * is passed through a tee that keeps a copy, and the mirrors go out once the request has sent
 * it all. FormData bodies are not mirrored.
 */
export function mirrorRequest(
  pools: EndpointPools,
  target: MirrorTarget,
  method: Dispatcher.HttpMethod,
  body: Body,
  decision: ForwardDecision,
  headers: Record<string, string | string[]>,
  path: string,
): Body {
  const clusters = selectMirrorClusters(decision);
  if (clusters.length === 0) return body;
  const send = (copyBody: string | Uint8Array | null): void => {
    for (const name of clusters) {
      const cluster = target.snapshot.clusters.get(name);
      const host = cluster?.lb?.pick();
      if (!cluster || !host) continue;
      const copy = { ...headers, host: `${target.host}-shadow` };
      const origin = `${target.scheme}://${host.key}`;
      try {
        pools.get(origin, poolKey(name, origin), cluster).dispatch({ method, path, headers: copy, body: copyBody, origin }, DISCARD as Dispatcher.DispatchHandler);
      } catch {
        // A mirror never fails the request (max_connection_pools reached, say).
      }
    }
  };
  if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array) {
    send(body ?? null);
    return body;
  }
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') return body; // FormData: not mirrored
  // undici takes any async iterable as a body (fetch hands it one); its types name only Readable.
  return teeBody(body as AsyncIterable<Uint8Array | string>, send) as unknown as Body;
}

/** Pass a streamed body through, keeping a copy; hand the copy over when the stream ends. */
async function* teeBody(body: AsyncIterable<Uint8Array | string>, done: (copy: Uint8Array) => void): AsyncGenerator<Uint8Array | string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    yield chunk;
  }
  done(Buffer.concat(chunks));
}
