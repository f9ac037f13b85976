export { register, type RegisterOptions } from './register.js';
export { LB_POLICY_NAME } from './balancer.js';
export { GRPC_RING_SIZE_CAP } from './grpc-balancer.js';
