export { MeshletError, BootstrapError, ERROR_CODES, type MeshletErrorCode } from './errors.js';
export { trace, tracer, isTraceEnabled, setTraceSpec } from './trace.js';
export type { AnyMessage, DecodeContext, DecodeResult, XdsResourceType } from './resource-type.js';
export { TYPE_URLS } from './proto.js';
export {
  loadBootstrap,
  parseBootstrap,
  parseBootstrapJson,
  parseDurationMs,
  formatResourceNameTemplate,
  type Bootstrap,
  type BootstrapSource,
  type ChannelCredentialsConfig,
  type XdsServerConfig,
  type NodeConfig,
  type NodeLocality,
  type AuthorityConfig,
  type CertificateProviderConfig,
  type FileWatcherConfig,
} from './bootstrap.js';
export { ExponentialBackoff, type BackoffOptions } from './backoff.js';
export { systemClock, ManualClock, wallTimeOf, type Clock, type TimerHandle } from './clock.js';
export { parseResourceName, type ParsedResourceName } from './resource-names.js';
export { XdsClient, type XdsClientOptions } from './xds-client.js';
export type {
  XdsWatcher,
  ResourceState,
  ResourceErrorState,
  ResourceSnapshot,
  TypeSnapshot,
  XdsClientDump,
} from './watchers.js';
export * from './resources/index.js';
export { buildClientConfig, buildClientStatusResponse, clientStatusJson, clientStatusJsonChunks, csdsClientList, encodeClientStatusResponse, type ClientStatusJsonOptions, type ClientStatusOptions, type CsdsClient, type CsdsClientEntry, type CsdsClients } from './csds.js';
export { addCsdsService, csdsServiceDefinition, CSDS_SERVICE_NAME } from './csds-service.js';
