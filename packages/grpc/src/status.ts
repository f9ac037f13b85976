// How meshlet's errors reach a gRPC caller: a status object (code, details, metadata) whose
// details begin with the Envoy response flag and the meshlet code, so a failed call reads the
// same as a sidecar's access log line (`UH MESHLET_NO_HEALTHY_UPSTREAM: cluster "x" ...`).
// Every local failure on the request path is UNAVAILABLE unless a gRFC says otherwise (A28: no
// route; A32: circuit breaker overflow; A33 picks its own code).
import { Metadata, status as Status, type StatusObject } from '@grpc/grpc-js';
import { ERROR_CODES, type MeshletErrorCode } from '@meshlet/xds-client';

/** A status for a meshlet error code: `<flag> <code>: <message>`. */
export function meshletStatus(code: MeshletErrorCode, message: string, grpcCode: Status = Status.UNAVAILABLE): StatusObject {
  const flag = ERROR_CODES[code];
  return { code: grpcCode, details: `${flag ? `${flag} ` : ''}${code}: ${message}`, metadata: new Metadata() };
}
