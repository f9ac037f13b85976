// Request bodies that a retry can send again. Strings and bytes already can; a streamed
// body (fetch's, a Readable) is collected before the first attempt, up to a limit. A
// stream longer than the limit is sent once, as it comes, and the request is not retried
// (Envoy's router gives up retrying when its buffer limit is exceeded, likewise).
import type { Dispatcher } from 'undici';

/** The most a streamed request body is buffered for retries: 1 MiB. */
export const MAX_REPLAY_BODY_BYTES = 1 << 20;

export type Body = Dispatcher.DispatchOptions['body'];

export interface ReplayBody {
  readonly body: Body;
  /** Whether `body` can be sent more than once. */
  readonly replayable: boolean;
}

/**
 * A body's (or a written chunk's) size in bytes when it is known before sending (nothing, a
 * string, bytes; strings count as UTF-8, as undici writes them), else
 * undefined (a stream or iterable: counted as undici writes it). Telemetry counts a known
 * size up front: undici reports written chunks only through its older handler style, which a
 * composed dispatcher's handler wrapper does not pass on.
 */
export function knownBodyBytes(body: Body): number | undefined {
  if (body === undefined || body === null) return 0;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return undefined;
}

/** Whether a body can be sent again as it is. */
export function isReplayable(body: Body): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** Collect a streamed body up to `limit` bytes; past it, the body to send once (what was read, then the rest). */
export async function bufferBody(body: Body, limit = MAX_REPLAY_BODY_BYTES): Promise<ReplayBody> {
  if (isReplayable(body)) return { body, replayable: true };
  const iterable = body as unknown as AsyncIterable<Uint8Array | string>;
  if (typeof iterable[Symbol.asyncIterator] !== 'function') return { body, replayable: false }; // FormData and the like
  const it = iterable[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return { body: Buffer.concat(chunks), replayable: true };
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) return { body: rest(chunks, it) as unknown as Body, replayable: false };
  }
}

async function* rest(read: Buffer[], it: AsyncIterator<Uint8Array | string>): AsyncGenerator<Uint8Array | string> {
  yield* read;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield r.value;
  }
}
