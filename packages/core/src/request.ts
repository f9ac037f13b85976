// The transport-agnostic view of a request that routing, hashing and policy read.
// @meshlet/http and @meshlet/grpc each adapt their own request objects to it once
// per request; nothing here copies headers.

export interface RequestHeaders {
  /**
   * The value of a header (name in lower case), or undefined when absent. Several
   * values of one header are joined with "," as Envoy's header matcher sees them.
   */
  get(name: string): string | undefined;
}

export interface MeshRequest {
  /** Upper-case method (GET, POST, ...); "POST" for gRPC. */
  readonly method: string;
  /** The path with its query string, as in HTTP/2 :path (`/a/b?x=1`). */
  readonly path: string;
  /** host[:port] the request is for (HTTP/2 :authority, HTTP/1 Host). */
  readonly authority: string;
  /** "http" or "https". */
  readonly scheme: string;
  readonly headers: RequestHeaders;
  /** The caller's own address, for hash_policy connection_properties.source_ip. */
  readonly sourceIp?: string;
  /** A gRPC call (content-type application/grpc*): route `grpc` matchers and gRPC header rules apply. */
  readonly grpc?: boolean;
}

/** RequestHeaders over a plain record of lower-case names. */
export function headersFromRecord(record: Readonly<Record<string, string | readonly string[] | undefined>>): RequestHeaders {
  return new RecordView(record);
}

/**
 * A record of lower-case header names read as RequestHeaders: one small object with its method
 * on the prototype, since the HTTP path makes one per request.
 */
export class RecordView<R extends Readonly<Record<string, string | readonly string[] | undefined>>> implements RequestHeaders {
  constructor(protected readonly record: R) {}

  get(name: string): string | undefined {
    const v = this.record[name];
    if (v === undefined) return undefined;
    return typeof v === 'string' ? v : v.join(',');
  }
}
