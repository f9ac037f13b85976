export { EndpointPools, type PoolFactory } from './endpoint-pools.js';
