// retry_host_predicate for one request: envoy.retry_host_predicates.previous_hosts
// (source/extensions/retry/host/previous_hosts) rejects every host an earlier attempt
// of the request was sent to. Envoy's load balancer then picks again, up to
// host_selection_retry_max_attempts more times (default 1: the policy's 0 means 1),
// and when every pick is rejected it uses the last host picked anyway
// (LoadBalancerBase::chooseHost).
//
// meshlet's pickers take the rejected hosts as PickContext.exclude and skip them
// themselves, so a pick succeeds at once when any other host is left; the bounded
// re-pick loop still applies to a picker that ignores `exclude` (a user's policy).
// Other predicates (omit_canary_hosts, omit_host_metadata) are not supported and are
// ignored, as is retry_priority.
import type { RetryPolicy } from '@meshlet/xds-client';

export const PREVIOUS_HOSTS_PREDICATE = 'envoy.retry_host_predicates.previous_hosts';

const EMPTY: ReadonlySet<string> = new Set();

export class RetryHostSelector {
  /** Made on the first attempted host, when previous_hosts is on (most requests never need it). */
  private tried: Set<string> | undefined;
  /** Picks allowed when a picked host is rejected: host_selection_retry_max_attempts + 1. */
  readonly maxPicks: number;

  constructor(
    /** Whether previous_hosts is configured. */
    readonly enabled: boolean,
    hostSelectionRetryMaxAttempts = 1,
  ) {
    this.maxPicks = Math.max(1, hostSelectionRetryMaxAttempts) + 1;
  }

  /** Record that an attempt went to `key` (PickedHost.key); Envoy's onHostAttempted. */
  attempted(key: string): void {
    if (this.enabled) (this.tried ??= new Set()).add(key);
  }

  /** The hosts the next pick must avoid (empty unless previous_hosts is configured). */
  get exclude(): ReadonlySet<string> {
    return this.tried !== undefined && this.tried.size > 0 ? this.tried : EMPTY;
  }

  /**
   * Pick a host for the next attempt through `pick` (a ClusterLoadBalancer.pick, say),
   * with Envoy's rules: re-pick a rejected host up to maxPicks times; when no other
   * host is left, take the last one picked (or, when the picker excluded every host,
   * one picked without exclusions). The host picked counts as attempted at once, as
   * Envoy records it when it is selected (so an attempt that times out still counts).
   */
  select<H extends { readonly key: string }>(pick: (ctx: { readonly exclude?: ReadonlySet<string> }) => H | undefined): H | undefined {
    const host = this.choose(pick);
    if (host !== undefined) this.attempted(host.key);
    return host;
  }

  private choose<H extends { readonly key: string }>(pick: (ctx: { readonly exclude?: ReadonlySet<string> }) => H | undefined): H | undefined {
    const exclude = this.exclude;
    if (exclude.size === 0) return pick({});
    let host: H | undefined;
    for (let i = 0; i < this.maxPicks; i++) {
      const h = pick({ exclude });
      if (h === undefined) break;
      host = h;
      if (!exclude.has(h.key)) return h;
    }
    return host ?? pick({});
  }
}

/** A selector for one request under `policy` (the retried requests' host predicates). */
export function retryHostSelector(policy: RetryPolicy | undefined): RetryHostSelector {
  if (policy === undefined) return new RetryHostSelector(false);
  const enabled = policy.retryHostPredicates.includes(PREVIOUS_HOSTS_PREDICATE);
  return new RetryHostSelector(enabled, policy.hostSelectionRetryMaxAttempts);
}
