// Request mirroring (route_components.proto RouteAction.RequestMirrorPolicy). The
// policies in force are the most specific non-empty list: the route's, else the
// virtual host's, else the route configuration's; they are never merged (the
// decision carries that list). Envoy's router mirrors to each policy whose
// runtime_fraction admits the request's random value (the stream id, shared with
// route matching), every request when the fraction is unset; a cluster_header policy
// takes the cluster from the request and is skipped when the header is absent or empty.
import type { ForwardDecision } from './route-decision.js';
import { fractionEnabled } from './route-table.js';

const NONE: readonly string[] = Object.freeze([]);

/** The clusters to mirror this request to, in policy order. */
export function selectMirrorClusters(decision: ForwardDecision): readonly string[] {
  const policies = decision.mirrorPolicies;
  if (policies.length === 0) return NONE;
  let out: string[] | undefined;
  for (const p of policies) {
    if (p.runtimeFraction !== undefined && !fractionEnabled(p.runtimeFraction, decision.randomValue)) continue;
    const cluster = p.cluster || (p.clusterHeader ? decision.request.headers.get(p.clusterHeader) : undefined);
    if (!cluster) continue;
    (out ??= []).push(cluster);
  }
  return out ?? NONE;
}
