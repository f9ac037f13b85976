export { ControlPlane, type ControlPlaneOptions, type ListeningAddress } from './control-plane.js';
export type { RecordedRequest, RequestKind } from './request-log.js';
export type { ResourceInput, EncodedResourceInput, EncodedAny, StoredResource } from './resource-input.js';
export type { TypeChange } from './snapshot-store.js';
export { loadConfigDir, type ConfigLoadResult, type ConfigFileError, type LoadedResource } from './config-dir.js';
export { ADS_SERVICE_NAME, SOTW_METHOD_PATH } from './ads-service.js';
export { runControlPlaneCommand } from './cli.js';
