export { MeshletError, BootstrapError, ERROR_CODES, type MeshletErrorCode } from './errors.js';
export { trace, tracer, isTraceEnabled, setTraceSpec } from './trace.js';
export type { AnyMessage, DecodeContext, DecodeResult, XdsResourceType } from './resource-type.js';
export { TYPE_URLS } from './proto.js';
