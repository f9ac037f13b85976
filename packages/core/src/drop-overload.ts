// EDS ClusterLoadAssignment.policy.drop_overloads: the control plane tells clients to shed a
// share of their requests to a cluster (each category with a drop_percentage). A dropped
// request never reaches an upstream: Envoy answers 503 with flag DO (DropOverLoad) before
// any circuit breaker or host pick; gRPC fails the call with UNAVAILABLE (gRFC A27). Each
// category is drawn in order, as gRPC does; Envoy accepts only one category.
import type { DropOverload } from '@meshlet/xds-client';
import type { Random } from './random.js';

/** The category this request is dropped for, or undefined when it goes through. */
export function selectDropOverload(drops: readonly DropOverload[], random: Random): DropOverload | undefined {
  for (const d of drops) {
    if (d.ppm > 0 && random.nextUint32() % 1_000_000 < d.ppm) return d;
  }
  return undefined;
}
