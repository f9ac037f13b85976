// client_side_weighted_round_robin (gRFC A58). Its weights come from ORCA load reports
// (qps, utilization, error rate) sent by the backends; meshlet does not collect ORCA
// data yet, and A58 gives an endpoint without a reported weight the mean weight of
// the others, so with no reports at all every endpoint weighs the same: the policy is
// plain round robin with EDS endpoint weights ignored.
import { RotationPicker } from './lb-round-robin.js';
import type { LoadBalancerFactory } from './lb-types.js';

export const weightedRoundRobinFactory: LoadBalancerFactory = {
  scope: 'locality',
  create: (input) => new RotationPicker(input.hosts, input.random),
};
