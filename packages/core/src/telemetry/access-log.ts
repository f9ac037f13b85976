// One JSON line per call, with the keys of Istio's default JSON access log (Envoy command
// operators in comments), so the tools that read a sidecar's log read meshlet's. Values the
// process cannot know are null, as Envoy's JSON formatter writes an absent value.

/** Where access log lines go: a stream, a logger, anything with write(). */
export interface AccessLogSink {
  write(line: string): unknown;
}

export interface AccessLogEntry {
  /** %START_TIME%: ISO 8601 with milliseconds, UTC. */
  readonly startTimeMs: number;
  readonly reporter: 'source' | 'destination';
  /** %REQ(:METHOD)% */
  readonly method: string | undefined;
  /** %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% */
  readonly path: string | undefined;
  /** %RESPONSE_CODE% (0 when no response was received, as Envoy logs it). */
  readonly responseCode: number;
  /** %RESPONSE_FLAGS% */
  readonly responseFlags: string;
  /** %GRPC_STATUS_NUMBER% */
  readonly grpcStatus: number | undefined;
  /** %BYTES_RECEIVED%: request body bytes. */
  readonly bytesReceived: number;
  /** %BYTES_SENT%: response body bytes. */
  readonly bytesSent: number;
  /** %DURATION%: whole milliseconds. */
  readonly durationMs: number;
  /** %REQ(:AUTHORITY)% */
  readonly authority: string;
  /** %UPSTREAM_HOST% */
  readonly upstreamHost: string | undefined;
  /** %UPSTREAM_CLUSTER% */
  readonly upstreamCluster: string | undefined;
  /** %UPSTREAM_REQUEST_ATTEMPT_COUNT% */
  readonly attempts: number;
  readonly xForwardedFor: string | undefined;
  readonly userAgent: string | undefined;
  /** %REQ(X-REQUEST-ID)% */
  readonly requestId: string | undefined;
  /** The call's trace id, when it was traced. */
  readonly traceId: string | undefined;
}

export function formatAccessLogLine(e: AccessLogEntry): string {
  return (
    JSON.stringify({
      start_time: new Date(e.startTimeMs).toISOString(),
      reporter: e.reporter,
      method: e.method ?? null,
      path: e.path ?? null,
      response_code: e.responseCode,
      response_flags: e.responseFlags,
      grpc_status: e.grpcStatus ?? null,
      bytes_received: e.bytesReceived,
      bytes_sent: e.bytesSent,
      duration: Math.max(0, Math.floor(e.durationMs)),
      authority: e.authority,
      upstream_host: e.upstreamHost ?? null,
      upstream_cluster: e.upstreamCluster ?? null,
      upstream_request_attempt_count: e.attempts,
      x_forwarded_for: e.xForwardedFor ?? null,
      user_agent: e.userAgent ?? null,
      request_id: e.requestId ?? null,
      trace_id: e.traceId ?? null,
    }) + '\n'
  );
}
