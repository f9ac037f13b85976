// What one `xds:///` channel knows, shared by its resolver (which routes each call, see
// config-selector.ts) and its load balancer (which picks a subchannel, see balancer.ts):
// the target's snapshot in force, and an entry per cluster that calls have been routed to.
//
// Entries are created on first use, never for every cluster the route table names. A call
// holds its cluster's entry from routing until grpc-js commits it (gRFC A31's cluster
// references), so a config update that drops the cluster from the route table never strands
// a call between routing and picking: the entry, its balancer and its connections stay until
// the last such call has committed.
import type { ClusterSnapshot, Mesh, MeshTarget, TargetSnapshot } from '@meshlet/core';
import { tracer } from '@meshlet/xds-client';
import { RecorderRegistry } from './call-telemetry.js';
import type { ClusterPool } from './cluster-pool.js';

const trace = tracer('grpc');

export interface ClusterEntry {
  readonly name: string;
  /** The cluster as the newest snapshot has it (the last one that had it, once removed). */
  cs: ClusterSnapshot;
  /** Calls routed here and not yet committed. */
  refs: number;
  /** The newest snapshot no longer has this cluster. */
  removed: boolean;
  /** Subchannels and balancer; created by the load balancer on the first pick. */
  pool: ClusterPool | undefined;
}

/** The load balancer side, told when the snapshot changes. */
export interface SnapshotListener {
  snapshotChanged(): void;
}

export class ChannelState {
  readonly mesh: Mesh;
  readonly target: MeshTarget;
  #snapshot: TargetSnapshot;
  readonly entries = new Map<string, ClusterEntry>();
  /** Telemetry recorders of the calls in flight (only while telemetry listens). */
  readonly recorders = new RecorderRegistry();
  #listener: SnapshotListener | undefined;

  constructor(mesh: Mesh, target: MeshTarget, snapshot: TargetSnapshot) {
    this.mesh = mesh;
    this.target = target;
    this.#snapshot = snapshot;
  }

  get snapshot(): TargetSnapshot {
    return this.#snapshot;
  }

  /** The balancer that owns the pools (one at a time; grpc-js may replace it). */
  attach(listener: SnapshotListener | undefined): void {
    this.#listener = listener;
  }

  /** A new snapshot: entries follow their clusters; pools rebuild only what changed. */
  update(snapshot: TargetSnapshot): void {
    if (snapshot === this.#snapshot) return;
    this.#snapshot = snapshot;
    for (const entry of [...this.entries.values()]) {
      const cs = snapshot.clusters.get(entry.name);
      if (cs !== undefined) {
        entry.cs = cs;
        entry.removed = false;
        entry.pool?.update(cs);
      } else {
        entry.removed = true;
        this.#collect(entry);
      }
    }
    this.#listener?.snapshotChanged();
  }

  /** The entry of a cluster a call is routed to, held until `release`; undefined when the snapshot does not have it. */
  acquire(name: string): ClusterEntry | undefined {
    let entry = this.entries.get(name);
    if (entry === undefined) {
      const cs = this.#snapshot.clusters.get(name);
      if (cs === undefined) return undefined;
      entry = { name, cs, refs: 0, removed: false, pool: undefined };
      this.entries.set(name, entry);
    }
    entry.refs++;
    return entry;
  }

  release(entry: ClusterEntry): void {
    entry.refs--;
    if (entry.removed) this.#collect(entry);
  }

  /** Drop every pool (the balancer is going away); entries stay for the next one. */
  closePools(): void {
    for (const entry of this.entries.values()) {
      entry.pool?.destroy();
      entry.pool = undefined;
    }
  }

  #collect(entry: ClusterEntry): void {
    if (entry.refs > 0 || this.entries.get(entry.name) !== entry) return;
    this.entries.delete(entry.name);
    entry.pool?.destroy();
    entry.pool = undefined;
    trace(() => `${this.target.authority}: cluster ${entry.name} left the configuration; its connections are closed`);
  }
}
