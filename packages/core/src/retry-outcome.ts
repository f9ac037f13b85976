// What one upstream attempt came to, as the retry logic sees it: a tagged union the
// HTTP and gRPC layers build from their own results (an undici response or error, a
// grpc-js status). Nothing here knows a transport.

/** Response headers as the retry logic reads them (lower-case names). */
export interface ResponseHeaderView {
  /** The value of a header, or undefined when absent; several values joined with ",". */
  get(name: string): string | undefined;
}

/** The upstream answered with headers (any status). */
export interface ResponseOutcome {
  readonly kind: 'response';
  readonly status: number;
  readonly headers: ResponseHeaderView;
}

/**
 * The stream was reset or the connection dropped before a response (Envoy's
 * remote reset, connection termination, local reset, protocol error).
 */
export interface ResetOutcome {
  readonly kind: 'reset';
  /**
   * Whether any byte of the request reached the wire (Envoy's
   * first_upstream_tx_byte_sent); decides `reset-before-request`. Default true,
   * the conservative answer.
   */
  readonly requestSent?: boolean;
  /** For the response flag and local reply status; default 'remote'. */
  readonly reason?: 'remote' | 'connection_termination' | 'local' | 'protocol_error';
}

/** No connection could be made (refused, connect timeout, TLS handshake failure). */
export interface ConnectFailureOutcome {
  readonly kind: 'connect_failure';
}

/** The upstream reset the stream with REFUSED_STREAM (HTTP/2): it did not process it. */
export interface RefusedStreamOutcome {
  readonly kind: 'refused_stream';
}

/** The per-try timeout expired (the attempt was aborted). */
export interface TimeoutOutcome {
  readonly kind: 'timeout';
}

/** A local resource limit (connection pool or circuit breaker overflow): never retried. */
export interface OverflowOutcome {
  readonly kind: 'overflow';
}

export type AttemptOutcome =
  | ResponseOutcome
  | ResetOutcome
  | ConnectFailureOutcome
  | RefusedStreamOutcome
  | TimeoutOutcome
  | OverflowOutcome;

/** An outcome may name the host it was sent to (PickedHost.key), for previous_hosts. */
export interface HostTagged {
  readonly host?: string;
}

/** Whether the attempt put request bytes on the wire (see ResetOutcome.requestSent). */
export function requestWasSent(outcome: AttemptOutcome): boolean {
  switch (outcome.kind) {
    case 'connect_failure':
    case 'overflow':
      return false;
    case 'reset':
      return outcome.requestSent !== false;
    default:
      return true;
  }
}

/**
 * The local reply and response flag for an outcome that ends a request without an
 * upstream response, as Envoy's router answers (router.cc onUpstreamReset,
 * streamResetReasonToResponseFlag; a per-try timeout is 504 UT).
 */
export function failureReply(
  outcome: Exclude<AttemptOutcome, ResponseOutcome>,
): { readonly status: number; readonly flag: 'UF' | 'UC' | 'LR' | 'UR' | 'UO' | 'UT' | 'UPE' } {
  switch (outcome.kind) {
    case 'connect_failure':
      return { status: 503, flag: 'UF' };
    case 'refused_stream':
      return { status: 503, flag: 'UR' };
    case 'timeout':
      return { status: 504, flag: 'UT' };
    case 'overflow':
      return { status: 503, flag: 'UO' };
    case 'reset':
      switch (outcome.reason) {
        case 'connection_termination':
          return { status: 503, flag: 'UC' };
        case 'local':
          return { status: 503, flag: 'LR' };
        case 'protocol_error':
          return { status: 502, flag: 'UPE' };
        default:
          return { status: 503, flag: 'UR' };
      }
  }
}
