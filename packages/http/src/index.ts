export { MeshAgent, type MeshAgentOptions, type OutboundTrafficPolicy } from './mesh-agent.js';
export { meshFetch, createMeshFetch, getDefaultAgent, type MeshFetch } from './mesh-fetch.js';
export { createMesh, getDefaultMesh, closeDefaultMesh } from '@meshlet/core';
export { EndpointPools, poolKey, type PoolEntry, type PoolFactory, type PoolOptions, type PoolScope } from './endpoint-pools.js';
export { withServerTelemetry, type ServerTelemetryOptions } from './server-telemetry.js';
