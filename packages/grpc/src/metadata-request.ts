// A grpc-js call as core's MeshRequest, built once per call by the config selector. gRFC A28's
// header rules for route matching and hashing:
// - only the call's metadata is visible (grpc-js keeps pseudo-headers and its own reserved
//   headers out of it);
// - a `-bin` header is treated as absent (its value is bytes, not text);
// - `content-type` reads "application/grpc" whatever the application put in its metadata;
// - several values of one header are joined with ",".
import type { Metadata } from '@grpc/grpc-js';
import type { MeshRequest, RequestHeaders } from '@meshlet/core';

class MetadataHeaders implements RequestHeaders {
  constructor(private readonly metadata: Metadata) {}

  get(name: string): string | undefined {
    if (name.endsWith('-bin')) return undefined;
    if (name === 'content-type') return 'application/grpc';
    const values = this.metadata.get(name);
    if (values.length === 0) return undefined;
    if (values.length === 1) return String(values[0]);
    return values.map(String).join(',');
  }
}

/** The request core routes: POST `/service/method` on the target's authority. */
export function requestFromCall(method: string, metadata: Metadata, authority: string): MeshRequest {
  return { method: 'POST', path: method, authority, scheme: 'http', headers: new MetadataHeaders(metadata), grpc: true };
}
