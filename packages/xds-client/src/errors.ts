// One error class for every meshlet package, with stable codes. Codes on the request
// path map to Envoy's response flags (access log %RESPONSE_FLAGS%), so a metric or a
// log line reads the same as a sidecar's.

/** Stable error codes and the Envoy response flag each maps to ('' when none). */
export const ERROR_CODES = {
  MESHLET_BOOTSTRAP_INVALID: '',
  MESHLET_BOOTSTRAP_NOT_FOUND: '',
  MESHLET_INVALID_OPTION: '',
  MESHLET_XDS_RESOURCE_INVALID: '',
  MESHLET_XDS_RESOURCE_DOES_NOT_EXIST: '',
  MESHLET_XDS_UNAVAILABLE: '',
  MESHLET_NO_ROUTE: 'NR',
  MESHLET_NO_CLUSTER: 'NC',
  MESHLET_NO_HEALTHY_UPSTREAM: 'UH',
  MESHLET_UPSTREAM_CONNECT_FAILURE: 'UF',
  MESHLET_OVERFLOW: 'UO',
  MESHLET_DROP_OVERLOAD: 'DO',
  MESHLET_UPSTREAM_TIMEOUT: 'UT',
  MESHLET_STREAM_DURATION_EXCEEDED: 'DT',
  MESHLET_RETRY_LIMIT_EXCEEDED: 'URX',
  MESHLET_UPSTREAM_RESET: 'UR',
  MESHLET_UPSTREAM_CONNECTION_TERMINATED: 'UC',
  MESHLET_LOCAL_RESET: 'LR',
  MESHLET_DELAY_INJECTED: 'DI',
  MESHLET_FAULT_INJECTED: 'FI',
  MESHLET_RATE_LIMITED: 'RL',
  MESHLET_DOWNSTREAM_TERMINATED: 'DC',
  MESHLET_UNAUTHORIZED: 'UAEX',
  MESHLET_REGISTRY_ONLY: 'NR',
} as const;

export type MeshletErrorCode = keyof typeof ERROR_CODES;

/**
 * The status of the local reply Envoy would send for a request-path error (router.cc and
 * the HTTP connection manager's local replies): a caller, a metric or an access log that
 * wants Envoy's response code reads it as `error.status`.
 */
const LOCAL_REPLY_STATUS: Partial<Record<MeshletErrorCode, number>> = {
  MESHLET_NO_ROUTE: 404,
  MESHLET_NO_CLUSTER: 503, // cluster_not_found_response_code's default, SERVICE_UNAVAILABLE
  MESHLET_NO_HEALTHY_UPSTREAM: 503,
  MESHLET_UPSTREAM_CONNECT_FAILURE: 503,
  MESHLET_OVERFLOW: 503,
  MESHLET_DROP_OVERLOAD: 503,
  MESHLET_UPSTREAM_TIMEOUT: 504,
  MESHLET_STREAM_DURATION_EXCEEDED: 408,
  MESHLET_RETRY_LIMIT_EXCEEDED: 503,
  MESHLET_UPSTREAM_RESET: 503,
  MESHLET_UPSTREAM_CONNECTION_TERMINATED: 503,
  MESHLET_LOCAL_RESET: 503,
  MESHLET_RATE_LIMITED: 429,
  MESHLET_UNAUTHORIZED: 403,
  // Istio sends a host outside the registry to its BlackHoleCluster, answered with 502.
  MESHLET_REGISTRY_ONLY: 502,
};

const BRAND = Symbol.for('meshlet.error');

export class MeshletError extends Error {
  readonly code: MeshletErrorCode;
  /** Envoy response flag for this code ('' when the error is not on the request path). */
  readonly responseFlag: string;
  /** The status of Envoy's local reply for this error (504 for UT, 503 for UO...); undefined off the request path. */
  readonly status: number | undefined;
  readonly [BRAND] = true;

  constructor(code: MeshletErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeshletError';
    this.code = code;
    this.responseFlag = ERROR_CODES[code];
    this.status = LOCAL_REPLY_STATUS[code];
  }

  /** True for a MeshletError from any copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses keep the ordinary prototype check; the base class also accepts a
    // MeshletError made by another copy of the package (a second install, say).
    if (this !== MeshletError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** A bootstrap that cannot be used. `field` is the JSON path of the offending field. */
export class BootstrapError extends MeshletError {
  readonly field: string;
  constructor(field: string, reason: string) {
    super('MESHLET_BOOTSTRAP_INVALID', `invalid xDS bootstrap: ${field}: ${reason}`);
    this.name = 'BootstrapError';
    this.field = field;
  }
}
