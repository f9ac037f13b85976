// Routing for each call (gRFC A28 with A31's config selector): grpc-js asks the channel's
// config selector once per call, before any attempt, for the call's config. meshlet answers
// from the snapshot in force:
// 1. route: core's compiled route table, on the call's method path and metadata
//    (metadata-request.ts has A28's header rules); weighted clusters and runtime fractions
//    draw fresh random values per call, as A28 asks (route-table.ts);
// 2. the route's policy as grpc-js's method config: the timeout from max_stream_duration /
//    grpc_timeout_header_max (A31, core's grpcCallTimeout) and the retry policy (A44, core's
//    grpcRetryPolicy, run by grpc-js's own retry machinery);
// 3. the request hash for ring hash (A42: the route's hash_policy over metadata, and the
//    channel id for `filter_state io.grpc.channel_id`);
// 4. fault injection (A33) as a per-call filter, only for a call that gets a fault;
// 5. the cluster, passed to the picker with the hash in the call's pick information.
// A call that cannot be routed fails with UNAVAILABLE and a status naming why (NR, NC).
import { experimental, status as Status, type Metadata } from '@grpc/grpc-js';
import {
  computeRequestHash,
  grpcCallTimeout,
  grpcRetryPolicy,
  xxhash64,
  type CallRecorder,
  type ForwardDecision,
  type TargetSnapshot,
} from '@meshlet/core';
import { ERROR_CODES, MeshletError, tracer, type Millis, type Route } from '@meshlet/xds-client';
import { telemetryFilterFactory } from './call-telemetry.js';
import { LATEST_PICK, type Admission, type CallPicks } from './cluster-pool.js';
import type { ChannelState, ClusterEntry } from './channel-state.js';
import { failFilterFactory, faultFilterFactory } from './local-filters.js';
import { requestFromCall } from './metadata-request.js';
import { meshletStatus } from './status.js';

const trace = tracer('grpc');

export type CallConfig = ReturnType<experimental.ConfigSelector['invoke']>;
type MethodConfig = CallConfig['methodConfig'];

/** Keys of the pick information the config selector hands the picker. */
export const PICK_CLUSTER = 'meshlet.cluster';
export const PICK_HASH = 'meshlet.hash';
/** The call's telemetry recorder id (only while telemetry listens). */
export const PICK_CALL = 'meshlet.call';

const CHANNEL_ID_KEY = 'io.grpc.channel_id';

/** What the config selector derives from a snapshot once, not per call. */
interface SnapshotContext {
  readonly snapshot: TargetSnapshot;
  /** The Listener's HttpConnectionManager max_stream_duration (A31). */
  readonly hcmMaxStreamDuration: Millis | undefined;
  /** Method configs by route: the same object for every call on a route. */
  readonly methodConfigs: Map<Route, MethodConfig>;
}

function contextOf(snapshot: TargetSnapshot): SnapshotContext {
  return { snapshot, hcmMaxStreamDuration: snapshot.config.listener.apiListener?.maxStreamDuration, methodConfigs: new Map() };
}

function duration(ms: Millis): { seconds: number; nanos: number } {
  const whole = Math.floor(ms);
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1_000_000 };
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

function methodConfigFor(context: SnapshotContext, d: ForwardDecision): MethodConfig {
  let mc = context.methodConfigs.get(d.route);
  if (mc !== undefined) return mc;
  mc = { name: [] };
  const timeout = grpcCallTimeout(d.action, undefined, context.hcmMaxStreamDuration);
  if (timeout !== undefined) mc.timeout = duration(timeout);
  const retry = grpcRetryPolicy(d.retryPolicy);
  if (retry !== undefined) {
    mc.retryPolicy = {
      maxAttempts: retry.maxAttempts,
      initialBackoff: seconds(retry.initialBackoffMs),
      maxBackoff: seconds(retry.maxBackoffMs),
      backoffMultiplier: retry.backoffMultiplier,
      retryableStatusCodes: [...retry.retryableStatusCodes],
    };
  }
  context.methodConfigs.set(d.route, mc);
  return mc;
}

const NO_FILTERS: experimental.FilterFactory<experimental.Filter>[] = [];

/**
 * One call as grpc-js sees it from the config selector. The object is three things at once:
 * - the call's config (method config, status, per-call filters);
 * - its pick information: grpc-js hands the same object to every pick of the call, retries
 *   included; the picker reads the cluster and request hash from it, and cluster-pool.ts keeps
 *   the latest pick on it (admit());
 * - the holder of the call's reference to its cluster until grpc-js commits the call
 *   (`onCommitted`), or an injected abort ends it before any pick.
 * Where a call had a config literal, a pick-information object and a commit closure with its
 * context, it now has this object and one bound function. Whatever lives as long as a call is
 * copied by every scavenge that finds the call in flight (docs/design.md, "Objects that live
 * as long as a call").
 */
class MeshletCall implements CallPicks {
  readonly status = Status.OK;
  readonly methodConfig: MethodConfig;
  readonly pickInformation: Record<string, string>;
  dynamicFilterFactories: experimental.FilterFactory<experimental.Filter>[] = NO_FILTERS;
  /** Bound, so it does not depend on the `this` grpc-js calls it with. */
  readonly onCommitted: () => void;
  // Literal keys (PICK_CLUSTER, PICK_HASH, PICK_CALL: '' without telemetry).
  readonly 'meshlet.cluster': string;
  readonly 'meshlet.hash': string;
  'meshlet.call' = '';
  [LATEST_PICK]: Admission | undefined = undefined;
  #state: ChannelState | undefined;
  readonly #entry: ClusterEntry;

  constructor(state: ChannelState, entry: ClusterEntry, methodConfig: MethodConfig, cluster: string, hash: string) {
    this.methodConfig = methodConfig;
    // The picker reads only the string keys above from it.
    this.pickInformation = this as unknown as Record<string, string>;
    this.onCommitted = this.#commit.bind(this);
    this['meshlet.cluster'] = cluster;
    this['meshlet.hash'] = hash;
    this.#state = state;
    this.#entry = entry;
  }

  /** grpc-js commits a call once; an aborted call (fault filter) may commit it again. */
  #commit(): void {
    const state = this.#state;
    if (state === undefined) return;
    this.#state = undefined;
    state.release(this.#entry);
  }
}

const NO_METHOD_CONFIG: MethodConfig = { name: [] };
const NO_PICK_INFO: Record<string, string> = {};

function localFailure(code: 'MESHLET_NO_ROUTE' | 'MESHLET_NO_CLUSTER' | 'MESHLET_INVALID_OPTION', message: string, rec?: CallRecorder): CallConfig {
  trace(() => `call failed before leaving: ${code}: ${message}`);
  rec?.end({ status: 200, grpcStatus: Status.UNAVAILABLE, flags: ERROR_CODES[code] || '-' });
  // The status travels in a filter: grpc-js replaces a config selector status's details.
  return {
    methodConfig: NO_METHOD_CONFIG,
    pickInformation: NO_PICK_INFO,
    status: Status.OK,
    dynamicFilterFactories: [failFilterFactory(meshletStatus(code, message))],
  };
}

function requestHash(d: ForwardDecision, channelId: number): string {
  const policies = d.hashPolicies;
  if (policies.length === 0) return '';
  let hash = computeRequestHash(policies, d.request);
  // A42: `filter_state` with key io.grpc.channel_id hashes the channel's id, which only the
  // gRPC layer knows (core yields nothing for filter_state).
  if (hash === undefined && policies.some((p) => p.kind === 'filter_state' && p.key === CHANNEL_ID_KEY)) {
    hash = xxhash64(String(channelId));
  }
  return hash === undefined ? '' : hash.toString();
}

function route(state: ChannelState, context: SnapshotContext, method: string, metadata: Metadata, channelId: number): CallConfig {
  const snapshot = context.snapshot;
  const req = requestFromCall(method, metadata, snapshot.authority);
  const d = snapshot.routeTable.route(req, state.mesh.random);
  const telemetry = state.mesh.telemetry;
  const rec = telemetry.wantsCalls()
    ? telemetry.startCall({ reporter: 'source', protocol: 'grpc', method: 'POST', path: method, authority: snapshot.authority, headers: req.headers })
    : undefined;
  switch (d.kind) {
    case 'no_route':
      return localFailure(
        'MESHLET_NO_ROUTE',
        `no route for ${method} on ${snapshot.authority}${d.virtualHost ? ` in virtual host "${d.virtualHost.name}"` : ' (no virtual host matches)'}`,
        rec,
      );
    case 'forward':
      break;
    default:
      // A28: a gRPC client can only forward; any other action fails the call.
      return localFailure('MESHLET_NO_ROUTE', `route "${d.route.name}" for ${method} has a ${d.kind} action, which gRPC calls cannot take`, rec);
  }
  if (d.cluster === undefined) {
    return localFailure(
      'MESHLET_NO_CLUSTER',
      d.clusterNotFound
        ? `route "${d.route.name}" takes its cluster from header "${d.action.cluster.kind === 'cluster_header' ? d.action.cluster.header : ''}", which the call does not carry`
        : `route "${d.route.name}" names a cluster specifier plugin ("${d.clusterSpecifierPlugin ?? ''}"), which meshlet does not support`,
      rec,
    );
  }
  const entry = state.acquire(d.cluster);
  if (entry === undefined) return localFailure('MESHLET_NO_CLUSTER', `cluster "${d.cluster}" (route "${d.route.name}") is not in the configuration`, rec);
  const call = new MeshletCall(state, entry, methodConfigFor(context, d), d.cluster, requestHash(d, channelId));
  const fault = faultFilter(state, snapshot, d, call.onCommitted);
  if (fault !== undefined) call.dynamicFilterFactories = [fault.filter];
  if (rec !== undefined) {
    rec.route(entry.cs.cluster ?? d.cluster);
    const id = state.recorders.add(rec);
    call[PICK_CALL] = id;
    call.dynamicFilterFactories = [...call.dynamicFilterFactories, telemetryFilterFactory(rec, fault?.delayed ? DELAYED : NO_FLAGS, () => state.recorders.delete(id))];
  }
  return call as unknown as CallConfig;
}

const DELAYED: readonly string[] = ['DI'];
const NO_FLAGS: readonly string[] = [];

function faultFilter(
  state: ChannelState,
  snapshot: TargetSnapshot,
  d: ForwardDecision,
  committed: () => void,
): { readonly filter: experimental.FilterFactory<experimental.Filter>; readonly delayed: boolean } | undefined {
  const mesh = state.mesh;
  const fault = mesh.injectFault(snapshot, d);
  if (fault === undefined) return undefined;
  trace(() => `fault filter: ${fault.flags.join('+')} for ${d.request.path}${fault.delayMs !== undefined ? ` (delay ${fault.delayMs} ms)` : ''}`);
  // An aborted call never reaches a picker, so grpc-js never commits it: release its cluster here.
  return { filter: faultFilterFactory(fault, mesh.clock, committed), delayed: fault.delayMs !== undefined };
}

/** The config selector of one channel: routes every call against the snapshot in force. */
export function createConfigSelector(state: ChannelState): experimental.ConfigSelector {
  // Derived when a call first sees a new snapshot, then read by every call on it.
  let context = contextOf(state.snapshot);
  return {
    invoke(method: string, metadata: Metadata, channelId: number): CallConfig {
      try {
        if (context.snapshot !== state.snapshot) context = contextOf(state.snapshot);
        return route(state, context, method, metadata, channelId);
      } catch (err) {
        // Routing reads only compiled config; an exception here is a bug, reported on the call.
        const message = err instanceof MeshletError ? err.message : String(err);
        return localFailure('MESHLET_INVALID_OPTION', `routing ${method} failed: ${message}`);
      }
    },
    unref(): void {},
  };
}
