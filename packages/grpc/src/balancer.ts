// The channel's load balancer, registered with grpc-js as `meshlet_cluster_manager`: the
// resolver hands it the channel's ChannelState in the resolution attributes, and it picks for
// every call the subchannel of the cluster the config selector routed the call to. It plays
// the part grpc-js-xds gives a tree of policies (xds_cluster_manager → cds → priority →
// xds_cluster_impl → outlier_detection → weighted_target → round_robin); here that tree is
// core's snapshot and one ClusterPool per cluster called (cluster-pool.ts).
//
// The channel reports READY as soon as it has a configuration: connections are made per
// cluster when calls need them, so there is nothing to wait for before the first call.
import { connectivityState as ConnectivityState, experimental, status as Status, Metadata, type ChannelOptions } from '@grpc/grpc-js';
import type { Mesh, PickedHost } from '@meshlet/core';
import { tracer } from '@meshlet/xds-client';
import type { ChannelState, SnapshotListener } from './channel-state.js';
import { ClusterPool, type PoolOwner } from './cluster-pool.js';
import { PICK_CALL, PICK_CLUSTER, PICK_HASH } from './config-selector.js';
import { meshletStatus } from './status.js';

const trace = tracer('grpc');

export const LB_POLICY_NAME = 'meshlet_cluster_manager';

/** The resolution attribute carrying the ChannelState; the prefix keeps it out of subchannel args. */
export const CHANNEL_STATE_KEY = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.meshlet_channel_state`;

export class MeshletLbConfig implements experimental.TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return LB_POLICY_NAME;
  }
  toJsonObject(): object {
    return { [LB_POLICY_NAME]: {} };
  }
  static createFromJson(_obj: unknown): MeshletLbConfig {
    return new MeshletLbConfig();
  }
}

class MeshletPicker implements experimental.Picker {
  constructor(
    private readonly state: ChannelState,
    private readonly balancer: MeshletBalancer,
  ) {}

  pick(args: experimental.PickArgs): experimental.PickResult {
    const name = args.extraPickInfo[PICK_CLUSTER];
    const entry = name === undefined ? undefined : this.state.entries.get(name);
    if (entry === undefined) {
      return {
        pickResultType: experimental.PickResultType.DROP,
        subchannel: null,
        status: meshletStatus('MESHLET_NO_CLUSTER', name === undefined ? 'the call was not routed by meshlet' : `cluster "${name}" is not in the configuration`),
        onCallStarted: null,
        onCallEnded: null,
      };
    }
    const pool = (entry.pool ??= new ClusterPool(entry.cs, this.balancer));
    const hash = args.extraPickInfo[PICK_HASH];
    // extraPickInfo is the call's own object, the same on each of its picks (admit()).
    const call = args.extraPickInfo[PICK_CALL];
    return pool.pick(hash ? BigInt(hash) : undefined, call ? this.state.recorders.get(call) : undefined, args.extraPickInfo);
  }
}

export class MeshletBalancer implements experimental.LoadBalancer, PoolOwner, SnapshotListener {
  readonly #helper: experimental.ChannelControlHelper;
  #state: ChannelState | undefined;
  #subchannelOptions: ChannelOptions = {};
  #publishQueued = false;
  #destroyed = false;

  constructor(helper: experimental.ChannelControlHelper) {
    this.#helper = helper;
  }

  get mesh(): Mesh {
    return this.#state!.mesh;
  }

  updateAddressList(
    _endpoints: experimental.StatusOr<experimental.Endpoint[]>,
    _config: experimental.TypedLoadBalancingConfig,
    channelOptions: ChannelOptions,
  ): boolean {
    const state = (channelOptions as Record<string, unknown>)[CHANNEL_STATE_KEY] as ChannelState | undefined;
    if (state === undefined) {
      const details = `${LB_POLICY_NAME} was selected without the meshlet resolver (use an xds:/// target registered by @meshlet/grpc)`;
      this.#helper.updateState(ConnectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker({ code: Status.UNAVAILABLE, details, metadata: new Metadata() }), details);
      // Accepted, so grpc-js lets calls reach the picker (which fails them) instead of queueing them for a config.
      return true;
    }
    this.#destroyed = false;
    if (state !== this.#state) {
      this.#state?.closePools();
      this.#state?.attach(undefined);
      this.#state = state;
      state.attach(this);
    }
    // Subchannel args: the channel's own options, without the resolver's objects, so channels
    // with the same options share subchannels in grpc-js's pool.
    const options: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(channelOptions)) {
      if (k !== experimental.CHANNEL_ARGS_CONFIG_SELECTOR_KEY && !k.startsWith(experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX)) options[k] = v;
    }
    this.#subchannelOptions = options as ChannelOptions;
    this.#publish();
    return true;
  }

  exitIdle(): void {
    // Nothing to do: each cluster connects when a call is routed to it.
  }

  resetBackoff(): void {}

  destroy(): void {
    this.#destroyed = true;
    this.#state?.closePools();
    this.#state?.attach(undefined);
    this.#state = undefined;
    trace('balancer destroyed');
  }

  getTypeName(): string {
    return LB_POLICY_NAME;
  }

  snapshotChanged(): void {
    this.changed();
  }

  changed(): void {
    // Coalesced: many subchannels change state at once (a pool connecting, a server going
    // away), and grpc-js re-runs every queued pick on each new picker.
    if (this.#publishQueued) return;
    this.#publishQueued = true;
    queueMicrotask(() => {
      this.#publishQueued = false;
      this.#publish();
    });
  }

  createSubchannel(host: PickedHost): experimental.SubchannelInterface {
    const sc = this.#helper.createSubchannel({ host: host.address.host, port: host.address.port }, this.#subchannelOptions);
    sc.ref();
    // channelz shows the channel's subchannels, as grpc-js's own policies register theirs.
    this.#helper.addChannelzChild(sc.getChannelzRef());
    return sc;
  }

  createLeaf(host: PickedHost, onState: (state: ConnectivityState, errorMessage: string | null) => void): experimental.LeafLoadBalancer {
    const helper = experimental.createChildChannelControlHelper(this.#helper, {
      updateState: (state, _picker, errorMessage) => onState(state, errorMessage),
      // A LOGICAL_DNS name is resolved again on its own timer (core's dependency manager), and
      // EDS endpoints come from the control plane: nothing for the channel's resolver to do.
      requestReresolution: () => trace(() => `pick_first over ${host.key} and ${host.endpoint.addresses.length - 1} more address(es) asked for re-resolution`),
    });
    const endpoint = { addresses: host.endpoint.addresses.map((a) => ({ host: a.host, port: a.port })) };
    return new experimental.LeafLoadBalancer(endpoint, helper, this.#subchannelOptions, '');
  }

  releaseSubchannel(sc: experimental.SubchannelInterface): void {
    this.#helper.removeChannelzChild(sc.getChannelzRef());
    sc.unref();
  }

  #publish(): void {
    if (this.#destroyed || this.#state === undefined) return;
    this.#helper.updateState(ConnectivityState.READY, new MeshletPicker(this.#state, this), null);
  }
}
