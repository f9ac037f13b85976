// The subchannels of one cluster on one channel, and the pick for a call routed to it.
//
// Lazy by construction: a pool exists only once a call has been routed to its cluster
// (the balancer creates it on the first pick), so a route table that names 1,000 clusters
// costs nothing until they are called. Within a pool, when to connect follows the policy:
// - 'all' (round robin, least request, random, WRR and their wrr_locality forms): every
//   endpoint connects when the pool is created, and reconnects (with grpc-js's backoff) when
//   its connection drops, as gRPC's round_robin does; picks go to READY endpoints only;
// - 'on_demand' (ring_hash, maglev, pick_first): an endpoint connects when a pick lands on
//   it (gRFC A42's picker; A62's pick_first connects addresses one at a time in order);
//   picks skip endpoints in TRANSIENT_FAILURE, so the next ring entry or the next address
//   is tried.
// The choice among endpoints is core's balancer (grpc-balancer.ts), given the endpoints not
// to pick: not usable (see above) or ejected by outlier detection (gRFC A50, one detector
// per priority). Priorities fail over on connectivity, as gRPC's priority policy does (A56):
// a priority all of whose endpoints have failed to connect is left out of the balancer until
// one of them is READY again, so its load moves to the next priority. When every endpoint is
// left out, a call waits (QUEUE) while any endpoint is still connecting, and fails with
// UNAVAILABLE (UH) once all are in TRANSIENT_FAILURE, unless it is wait-for-ready (grpc-js
// queues those).
//
// Per call: the circuit breaker (gRFC A32: max_requests; over it the call is dropped with
// UNAVAILABLE, flag UO), EDS drop_overloads (A27, flag DO), the active-request count least request
// reads (A48), and the call's status for outlier detection.
//
// The breaker slot is taken when the pick completes, as grpc-go does, so that a burst of calls
// picked in one tick cannot all pass the limit (grpc-js-xds counts from the call's start).
// grpc-js starts a picked call a microtask later, or never (the call was cancelled meanwhile,
// its stream failed to open, or the subchannel stopped being READY and it picks again). A slot
// whose call has not started by the next turn of the event loop is given back, and such a
// call, should it start later, is counted from its start (over the limit if need be: A32
// checks the limit at the pick and counts every stream created), so no call runs uncounted
// and no slot is lost. Picks of calls whose credentials take longer than a turn can thus
// pass a full breaker together, as every pick does in grpc-js-xds.
import { setImmediate } from 'node:timers';
import { connectivityState as ConnectivityState, experimental, Metadata, status as Status } from '@grpc/grpc-js';
import {
  OutlierDetector,
  requestClock,
  selectDropOverload,
  type CallRecorder,
  type ClusterCircuitBreaker,
  type ClusterLoadBalancer,
  type ClusterSnapshot,
  type Mesh,
  type PickContext,
  type PickedHost,
} from '@meshlet/core';
import { MeshletError, systemClock, tracer, type ClusterResource, type DropOverload, type EndpointsResource } from '@meshlet/xds-client';
import { buildGrpcBalancer } from './grpc-balancer.js';
import { orcaReportOf } from './orca.js';
import { OrcaWeightedPicker, wrrConfigOf } from './wrr-orca.js';
import { meshletStatus } from './status.js';

type SubchannelInterface = experimental.SubchannelInterface;
type PickResult = experimental.PickResult;

const trace = tracer('grpc');

export type ConnectMode = 'all' | 'on_demand';

/** What a pool needs from its channel's balancer. */
export interface PoolOwner {
  readonly mesh: Mesh;
  createSubchannel(host: PickedHost): SubchannelInterface;
  /** The subchannel is no longer used by this pool. */
  releaseSubchannel(sc: SubchannelInterface): void;
  /**
   * grpc-js's pick_first over the addresses of an endpoint that has several (see Slot.leaf);
   * `onState` hears its connectivity. Optional for tests of one-address endpoints.
   */
  createLeaf?(host: PickedHost, onState: (state: ConnectivityState, errorMessage: string | null) => void): experimental.LeafLoadBalancer;
  /** Something a queued pick waits for changed: publish a new picker (coalesced). */
  changed(): void;
}

interface Slot {
  readonly key: string;
  /** The subchannel of an endpoint with one address. */
  readonly sc: SubchannelInterface | undefined;
  /**
   * An endpoint with several addresses: a LOGICAL_DNS cluster's logical host inside an
   * aggregate cluster (gRFC A37: every resolved address, pick_first) or an EDS endpoint with
   * additional_addresses (gRFC A61). grpc-js's own pick_first runs over them, in order, with
   * its happy eyeballs; the slot is as READY as it is, and a call goes to the subchannel its
   * picker returns.
   */
  readonly leaf: experimental.LeafLoadBalancer | undefined;
  /** The leaf has been given its endpoint (its first startConnecting). */
  leafStarted: boolean;
  readonly priority: number;
  state: ConnectivityState;
  /** In TRANSIENT_FAILURE since it was last READY (reconnect attempts included). */
  failing: boolean;
  lastError: string | undefined;
  readonly listener: experimental.ConnectivityStateListener;
}

/** Start (or restart, from IDLE) a slot's connection attempts. */
function connect(slot: Slot): void {
  if (slot.sc !== undefined) {
    slot.sc.startConnecting();
    return;
  }
  if (!slot.leafStarted) {
    slot.leafStarted = true;
    slot.leaf!.startConnecting();
  } else {
    slot.leaf!.exitIdle();
  }
}

const LEAF_PICK: experimental.PickArgs = { metadata: new Metadata(), extraPickInfo: {} };

/** gRPC's view of which policies connect on demand (A42 ring hash, A62 pick_first). */
export function connectModeOf(policy: string): ConnectMode {
  return /(^|\/)(ring_hash|maglev|pick_first)$/.test(policy) ? 'on_demand' : 'all';
}

const NO_HOSTS: readonly PickedHost[] = [];

// grpc-js's `experimental` exports are getters on a dictionary-mode object: read once here,
// not on every pick.
const COMPLETE = experimental.PickResultType.COMPLETE;
const QUEUE_TYPE = experimental.PickResultType.QUEUE;
const DROP = experimental.PickResultType.DROP;
const TRANSIENT_FAILURE = experimental.PickResultType.TRANSIENT_FAILURE;

const PENDING = 0;
const STARTED = 1;
const RETURNED = 2;

/** Where a call's pick information keeps the admission of its latest pick. */
export const LATEST_PICK: unique symbol = Symbol('meshlet.latestPick');

/** A call's pick information, as admit() sees it: grpc-js gives every pick of one call (and of its retry attempts) the same object. */
export interface CallPicks {
  [LATEST_PICK]?: Admission | undefined;
}

/**
 * The A32 breaker slot of a completed pick (none when the cluster has no breaker). Its state
 * follows the attempt: taken at the pick, the attempt's from its start to its end, or given
 * back unused.
 */
export class Admission {
  state: typeof PENDING | typeof STARTED | typeof RETURNED = PENDING;
  constructor(readonly breaker: ClusterCircuitBreaker | undefined) {}

  /** The call started on its subchannel: the slot is its own until it ends. */
  started(): void {
    if (this.state === PENDING) {
      this.state = STARTED;
      return;
    }
    if (this.state !== RETURNED) return;
    // Started after its slot went back (its call credentials took longer than a turn): it is
    // counted from its start whatever the limit, as A32 counts every stream created.
    this.breaker?.count('request');
    this.state = STARTED;
  }

  ended(): void {
    if (this.state !== STARTED) return;
    this.state = RETURNED;
    this.breaker?.give('request');
  }

  /** The slot goes back unused (the call never started on this pick). */
  returnUnused(): void {
    if (this.state !== PENDING) return;
    this.state = RETURNED;
    this.breaker?.give('request');
  }
}

/** Slots taken by picks since the last turn of the event loop. */
let unstarted: Admission[] = [];
let sweepScheduled = false;

function returnUnstarted(): void {
  sweepScheduled = false;
  const list = unstarted;
  unstarted = [];
  for (const a of list) a.returnUnused();
}

/**
 * @internal A call picks again: its earlier pick was not used (the subchannel it got stopped
 * being READY, say), so that pick's slot goes back now rather than at the next turn, and one
 * call never holds two, nor finds the breaker full with its own slot. `call` is the call's pick
 * information.
 */
export function returnEarlierPick(call: object): void {
  (call as CallPicks)[LATEST_PICK]?.returnUnused();
}

/**
 * @internal Take a slot of `admission`'s breaker for a completed pick of `call` (its pick
 * information); false when the breaker is full. The admission is kept on the pick information
 * itself (no WeakMap entry per call), and its slot is counted with take()/give() (no release
 * closure).
 */
function takeSlot(admission: Admission, call: object | undefined): boolean {
  const breaker = admission.breaker;
  if (breaker === undefined) return true;
  if (breaker.take('request') !== undefined) return false;
  if (call !== undefined) (call as CallPicks)[LATEST_PICK] = admission;
  unstarted.push(admission);
  if (!sweepScheduled) {
    sweepScheduled = true;
    // node:timers' own setImmediate: an application's fake timers (which replace the global)
    // must not stop slots from coming back.
    setImmediate(returnUnstarted);
  }
  return true;
}

/** @internal A slot for a completed pick of `call`; undefined when the breaker is full. */
export function admit(breaker: ClusterCircuitBreaker, call?: object): Admission | undefined {
  const admission = new Admission(breaker);
  return takeSlot(admission, call) ? admission : undefined;
}

/**
 * A completed pick: the result grpc-js reads, and then what its attempt settles when it starts
 * and ends (the breaker slot, the host's active requests for least request (A48), the call's
 * telemetry, ORCA weights (A58), outlier detection (A50)). One object and two bound functions
 * per attempt, where there were a slot object, a result literal and two closures with their
 * context (docs/design.md, "Objects that live as long as a call").
 */
class PickedCall extends Admission implements PickResult {
  readonly pickResultType = COMPLETE;
  readonly status = null;
  // Bound: grpc-js calls onCallEnded with its own call as `this`.
  readonly onCallStarted: () => void;
  readonly onCallEnded: (code: Status, details: string, metadata: Metadata) => void;

  constructor(
    readonly subchannel: SubchannelInterface,
    breaker: ClusterCircuitBreaker | undefined,
    private readonly host: PickedHost,
    private readonly rec: CallRecorder | undefined,
    private readonly wrr: OrcaWeightedPicker | undefined,
    private readonly detector: OutlierDetector | undefined,
  ) {
    super(breaker);
    this.onCallStarted = this.#start.bind(this);
    this.onCallEnded = this.#end.bind(this);
  }

  #start(): void {
    this.host.stats.activeRequests++;
    this.rec?.attempt(this.host);
    // A32: the slot is this attempt's until it ends.
    this.started();
  }

  #end(code: Status, _details: string, trailers: Metadata): void {
    const host = this.host;
    host.stats.activeRequests--;
    this.ended();
    this.rec?.attemptEnd({ status: 200 });
    if (this.wrr !== undefined) {
      const report = orcaReportOf(trailers);
      if (report !== undefined) this.wrr.record(host.key, report);
    }
    // A50: OK is a success, any other status a failure.
    this.detector?.record(host.key, code === Status.OK ? 'success' : 'failure');
  }
}

export class ClusterPool {
  readonly name: string;
  readonly #owner: PoolOwner;
  readonly #slots = new Map<string, Slot>();
  /** Hosts a pick must not return now: rebuilt whenever a connectivity state or an ejection changes. */
  #exclude: Set<string> = new Set();
  #ctx: PickContext = {};
  /** The balancer picks use: `#full`, less the priorities that are down. */
  #lb: ClusterLoadBalancer | undefined;
  /** Every endpoint gRPC uses (A27): the pool keeps a subchannel for each it has connected. */
  #full: ClusterLoadBalancer | undefined;
  /** Priorities none of whose endpoints can be reached, as a key ("0,2"). */
  #downKey = '';
  #lbError: MeshletError | undefined;
  #mode: ConnectMode = 'all';
  #snapshot: ClusterSnapshot;
  #builtFrom: { cluster: ClusterResource | undefined; endpoints: EndpointsResource | undefined; error: unknown } | undefined;
  #drops: readonly DropOverload[] = [];
  /** A58: weights from ORCA load reports, for client_side_weighted_round_robin clusters. */
  #wrr: OrcaWeightedPicker | undefined;
  #wrrConfig: unknown;
  /** gRFC A50: one detector per priority, gRPC's flavor of the algorithm. */
  readonly #detectors = new Map<number, { detector: OutlierDetector; unsubscribe: () => void }>();
  #destroyed = false;

  constructor(snapshot: ClusterSnapshot, owner: PoolOwner) {
    this.name = snapshot.name;
    this.#owner = owner;
    this.#snapshot = snapshot;
    this.update(snapshot);
  }

  get mode(): ConnectMode {
    return this.#mode;
  }

  /** The hosts of the balancer in force (empty when it has none). */
  get hosts(): readonly PickedHost[] {
    return this.#full?.hosts ?? NO_HOSTS;
  }

  /** A new snapshot of the cluster: rebuild the balancer if its inputs changed, keep every connection that stays. */
  update(snapshot: ClusterSnapshot): void {
    if (this.#destroyed) return;
    this.#snapshot = snapshot;
    const from = { cluster: snapshot.lbCluster ?? snapshot.cluster, endpoints: snapshot.endpoints, error: snapshot.error };
    const b = this.#builtFrom;
    if (b && b.cluster === from.cluster && b.endpoints === from.endpoints && b.error === from.error) {
      this.#updateDetectors();
      return;
    }
    this.#builtFrom = from;
    const built = buildGrpcBalancer(snapshot, this.#owner.mesh);
    if (built instanceof MeshletError) {
      // A cluster that fails to build keeps serving from its last good balancer (the last
      // good config stays in force); one that never built fails its calls with the reason.
      trace(() => `cluster ${this.name}: ${built.message}${this.#lb ? ' (keeping the previous balancer)' : ''}`);
      if (!this.#lb) this.#lbError = built;
      return;
    }
    this.#full = built;
    this.#lb = built;
    this.#downKey = '';
    this.#lbError = undefined;
    this.#mode = connectModeOf(built.policy);
    this.#drops = snapshot.endpoints?.dropOverloads ?? [];
    const keep = new Set<string>();
    for (const h of built.hosts) keep.add(h.key);
    for (const [key, slot] of this.#slots) if (!keep.has(key)) this.#removeSlot(slot);
    const wrrConfig = from.cluster ? wrrConfigOf(from.cluster.lbPolicy, built.policy) : undefined;
    if (wrrConfig === undefined) this.#wrr = undefined;
    else if (wrrConfig !== this.#wrrConfig || !this.#wrr) this.#wrr = new OrcaWeightedPicker(wrrConfig, this.#owner.mesh.clock);
    this.#wrrConfig = wrrConfig;
    this.#wrr?.retain(keep);
    if (this.#mode === 'all') for (const h of built.hosts) if (!this.#slots.has(h.key)) this.#addSlot(h);
    trace(() => `cluster ${this.name}: ${built.policy} over ${built.hosts.length} endpoint(s), connecting ${this.#mode === 'all' ? 'all' : 'on demand'}`);
    this.#updateDetectors();
    this.#rebuildExclude();
    this.#checkPriorities();
    this.#owner.changed();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const slot of [...this.#slots.values()]) this.#removeSlot(slot);
    for (const d of this.#detectors.values()) {
      d.unsubscribe();
      d.detector.dispose();
    }
    this.#detectors.clear();
    trace(() => `cluster ${this.name}: pool closed`);
  }

  /** The subchannel for one call (or one retry attempt) routed to this cluster. */
  pick(hash: bigint | undefined, rec?: CallRecorder, call?: object): PickResult {
    if (call !== undefined) returnEarlierPick(call);
    const lb = this.#lb;
    if (!lb) {
      const e = this.#lbError;
      return failure(meshletStatus(e?.code ?? 'MESHLET_NO_HEALTHY_UPSTREAM', e?.message ?? `cluster "${this.name}" has no endpoints`), false);
    }
    // EDS drop_overloads (A27): categories of calls dropped by the control plane's say.
    const dropped = this.#drops.length > 0 ? selectDropOverload(this.#drops, this.#owner.mesh.random) : undefined;
    if (dropped !== undefined) {
      return failure(meshletStatus('MESHLET_DROP_OVERLOAD', `cluster "${this.name}": EDS-configured drop: ${dropped.category}`), true);
    }
    const breaker = this.#snapshot.breaker;
    if (breaker !== undefined && !breaker.canAcquire('request')) return this.#overflow(breaker);
    const ctx = hash === undefined ? this.#ctx : { exclude: this.#exclude, hash };
    const host = (this.#wrr !== undefined ? this.#wrr.pick(lb.hosts, this.#ctx.exclude) : undefined) ?? lb.pick(ctx);
    if (!host) {
      return failure(meshletStatus('MESHLET_NO_HEALTHY_UPSTREAM', `cluster "${this.name}" has no healthy endpoint`), false);
    }
    let slot = this.#slots.get(host.key);
    if (slot === undefined) slot = this.#addSlot(host);
    switch (slot.state) {
      case ConnectivityState.READY:
        return this.#complete(slot, host, rec, call);
      case ConnectivityState.IDLE:
        connect(slot);
        return QUEUE;
      case ConnectivityState.CONNECTING:
        return QUEUE;
      default:
        // Only reached when every endpoint is left out (core then ignores the exclusions).
        return this.#noReadyEndpoint();
    }
  }

  #noReadyEndpoint(): PickResult {
    let lastError: string | undefined;
    let failed = 0;
    for (const s of this.#slots.values()) {
      if (s.state === ConnectivityState.CONNECTING || s.state === ConnectivityState.IDLE) {
        if (s.state === ConnectivityState.IDLE) connect(s);
        return QUEUE;
      }
      if (s.state === ConnectivityState.TRANSIENT_FAILURE) failed++;
      lastError = s.lastError ?? lastError;
    }
    if (this.#mode === 'on_demand' && this.#slots.size < this.hosts.length) {
      // Endpoints never tried yet: connect the first of them (A42: try the next one).
      for (const h of this.hosts) {
        if (!this.#slots.has(h.key)) {
          connect(this.#addSlot(h));
          return QUEUE;
        }
      }
    }
    return failure(
      meshletStatus(
        'MESHLET_NO_HEALTHY_UPSTREAM',
        `cluster "${this.name}": no endpoint is reachable (${failed} of ${this.hosts.length} in TRANSIENT_FAILURE)${lastError ? `; last error: ${lastError}` : ''}`,
      ),
      false,
    );
  }

  #complete(slot: Slot, host: PickedHost, rec: CallRecorder | undefined, call: object | undefined): PickResult {
    let sc = slot.sc;
    if (sc === undefined) {
      // A several-address endpoint: the subchannel grpc-js's pick_first connected.
      const r = slot.leaf!.getPicker().pick(LEAF_PICK);
      if (r.pickResultType !== COMPLETE || r.subchannel === null) return QUEUE;
      sc = r.subchannel;
    }
    const breaker = this.#snapshot.breaker;
    const picked = new PickedCall(sc, breaker, host, rec, this.#wrr, this.#detectors.get(slot.priority)?.detector);
    if (!takeSlot(picked, call)) return this.#overflow(breaker!);
    return picked;
  }

  #overflow(breaker: ClusterCircuitBreaker): PickResult {
    const limit = breaker.thresholds().maxRequests;
    return failure(meshletStatus('MESHLET_OVERFLOW', `cluster "${this.name}": circuit breaker max_requests (${limit}) reached`), true);
  }

  #addSlot(host: PickedHost): Slot {
    const several = host.endpoint.addresses.length > 1 && this.#owner.createLeaf !== undefined;
    const sc = several ? undefined : this.#owner.createSubchannel(host);
    const leaf = several
      ? this.#owner.createLeaf!(host, (state, errorMessage) => {
          if (state !== slot.state) this.#onState(slot, state, errorMessage ?? undefined);
        })
      : undefined;
    const slot: Slot = {
      key: host.key,
      sc,
      leaf,
      leafStarted: false,
      priority: host.priority,
      state: sc?.getConnectivityState() ?? ConnectivityState.IDLE,
      failing: false,
      lastError: undefined,
      listener: (_sc, _prev, next, _keepalive, errorMessage) => this.#onState(slot, next, errorMessage),
    };
    // A subchannel shared with another channel may already have failed.
    slot.failing = slot.state === ConnectivityState.TRANSIENT_FAILURE;
    this.#slots.set(host.key, slot);
    sc?.addConnectivityStateListener(slot.listener);
    if (this.#mode === 'all' && slot.state !== ConnectivityState.READY) connect(slot);
    trace(() => `cluster ${this.name}: subchannel for ${host.key} (${ConnectivityState[slot.state]})`);
    this.#rebuildExclude();
    if (slot.failing) this.#checkPriorities();
    return slot;
  }

  #removeSlot(slot: Slot): void {
    this.#slots.delete(slot.key);
    if (slot.sc !== undefined) {
      slot.sc.removeConnectivityStateListener(slot.listener);
      this.#owner.releaseSubchannel(slot.sc);
    } else {
      slot.leaf!.destroy();
    }
  }

  #onState(slot: Slot, state: ConnectivityState, errorMessage: string | undefined): void {
    if (this.#destroyed || this.#slots.get(slot.key) !== slot) return;
    const before = slot.state;
    slot.state = state;
    const wasFailing = slot.failing;
    if (state === ConnectivityState.TRANSIENT_FAILURE) slot.failing = true;
    else if (state === ConnectivityState.READY) slot.failing = false;
    if (errorMessage) slot.lastError = errorMessage;
    trace(() => `cluster ${this.name}: ${slot.key} ${ConnectivityState[before]} -> ${ConnectivityState[state]}${errorMessage ? ` (${errorMessage})` : ''}`);
    // round_robin keeps every endpoint connected: a dropped or failed connection is tried
    // again (grpc-js applies its reconnect backoff to a subchannel in TRANSIENT_FAILURE).
    if (this.#mode === 'all' && (state === ConnectivityState.IDLE || state === ConnectivityState.TRANSIENT_FAILURE)) connect(slot);
    this.#rebuildExclude();
    if (wasFailing !== slot.failing) this.#checkPriorities();
    this.#owner.changed();
  }

  /**
   * Leave out of the balancer the priorities whose endpoints have all failed to connect and
   * not been READY since (unless all have): like gRPC's priority policy, a priority that
   * failed stays out while it retries, and comes back once an endpoint connects.
   */
  #checkPriorities(): void {
    const full = this.#full;
    if (!full) return;
    const reachable = new Set<number>();
    const all = new Set<number>();
    for (const h of full.hosts) {
      all.add(h.priority);
      if (this.#slots.get(h.key)?.failing !== true) reachable.add(h.priority);
    }
    const down = [...all].filter((p) => !reachable.has(p)).sort((a, b) => a - b);
    // With nothing reachable at all, keep every priority: the calls then wait or fail (UH).
    const key = down.length === all.size ? '' : down.join(',');
    if (key === this.#downKey) return;
    this.#downKey = key;
    if (key === '') {
      this.#lb = full;
    } else {
      const built = buildGrpcBalancer(this.#snapshot, this.#owner.mesh, new Set(down));
      this.#lb = built instanceof MeshletError ? full : built;
    }
    trace(() => `cluster ${this.name}: ${key === '' ? 'every priority reachable' : `priority ${key} unreachable, failing over`}`);
  }

  #rebuildExclude(): void {
    const exclude = new Set<string>();
    const all = this.#mode === 'all';
    for (const s of this.#slots.values()) {
      if (all ? s.state !== ConnectivityState.READY : s.state === ConnectivityState.TRANSIENT_FAILURE) exclude.add(s.key);
    }
    if (all) {
      // Endpoints with no subchannel yet (added by an update) are not usable either.
      for (const h of this.hosts) if (!this.#slots.has(h.key)) exclude.add(h.key);
    }
    for (const d of this.#detectors.values()) for (const k of d.detector.ejected()) exclude.add(k);
    this.#exclude = exclude;
    this.#ctx = exclude.size === 0 ? {} : { exclude };
  }

  #updateDetectors(): void {
    const cluster = this.#snapshot.lbCluster ?? this.#snapshot.cluster;
    const config = cluster?.outlierDetection;
    const byPriority = new Map<number, string[]>();
    if (config !== undefined) {
      for (const h of this.hosts) {
        let list = byPriority.get(h.priority);
        if (!list) byPriority.set(h.priority, (list = []));
        list.push(h.key);
      }
    }
    for (const [p, d] of this.#detectors) {
      if (byPriority.has(p)) continue;
      d.unsubscribe();
      d.detector.dispose();
      this.#detectors.delete(p);
    }
    for (const [p, keys] of byPriority) {
      let d = this.#detectors.get(p);
      if (!d) {
        const mesh = this.#owner.mesh;
        // Detection is background work: on the default clock its timer must not keep the
        // process alive (the xDS client's clock unrefs its timers).
        const detector = new OutlierDetector(config, { flavor: 'grpc', clock: mesh.clock === requestClock ? systemClock : mesh.clock, random: mesh.random });
        const unsubscribe = detector.subscribe((event) => {
          trace(() => `cluster ${this.name}: outlier detection ${event.action}s ${event.host}`);
          this.#rebuildExclude();
          this.#owner.changed();
        });
        this.#detectors.set(p, (d = { detector, unsubscribe }));
      } else {
        d.detector.update(config);
      }
      d.detector.setHosts(keys);
    }
  }
}

const QUEUE: PickResult = {
  pickResultType: QUEUE_TYPE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};

/**
 * A failed pick. `drop` calls fail at once and are never retried (A32 overflow, A27 drops,
 * an unresolvable cluster); the others are TRANSIENT_FAILURE, which a wait-for-ready call waits out.
 */
function failure(status: ReturnType<typeof meshletStatus>, drop: boolean): PickResult {
  return {
    pickResultType: drop ? DROP : TRANSIENT_FAILURE,
    subchannel: null,
    status,
    onCallStarted: null,
    onCallEnded: null,
  };
}
