// The `xds:///host:port` resolver for grpc-js: a target's resolution is its MeshTarget in
// @meshlet/core (the mesh owns the one xDS client and compiles the snapshot; nothing here
// speaks xDS). What it hands grpc-js:
// - no addresses (clusters are resolved per call, lazily);
// - a service config selecting the `meshlet_cluster_manager` balancer;
// - attributes: the config selector that routes each call, and the ChannelState the
//   balancer picks from.
// The first complete config is reported once (again only when grpc-js restarts the resolver
// after the channel was idle); later snapshots only update the ChannelState
// (the selector and the balancer read it live), and errors after the first config change
// nothing: the last good config stays in force (gRFC A88), so a control plane that restarts
// or sends a bad update never fails a call.
import { experimental, Metadata, status as Status, type ChannelOptions } from '@grpc/grpc-js';
import { MeshletError, tracer } from '@meshlet/xds-client';
import type { Mesh, MeshTarget } from '@meshlet/core';
import { CHANNEL_STATE_KEY, LB_POLICY_NAME } from './balancer.js';
import { ChannelState } from './channel-state.js';
import { createConfigSelector } from './config-selector.js';
import { meshletStatus } from './status.js';

const trace = tracer('grpc');

type ResolverConstructor = Parameters<typeof experimental.registerResolver>[1];

const SERVICE_CONFIG = { loadBalancingConfig: [{ [LB_POLICY_NAME]: {} }], methodConfig: [] };

/** A grpc-js resolver class for one registered scheme, resolving through `getMesh()`. */
export function resolverClass(scheme: string, getMesh: () => Mesh): ResolverConstructor {
  return class MeshletResolver implements experimental.Resolver {
    readonly #uri: string;
    readonly #listener: experimental.ResolverListener;
    #target: MeshTarget | undefined;
    #mesh: Mesh | undefined;
    #state: ChannelState | undefined;
    #unsubscribe: (() => void) | undefined;
    #reportQueued = false;
    /** Set when grpc-js has not been given the current resolution (before the first, after a restart). */
    #needsReport = true;
    #destroyed = false;

    constructor(target: experimental.GrpcUri, listener: experimental.ResolverListener, _options: ChannelOptions) {
      this.#uri = experimental.uriToString(target);
      this.#listener = listener;
      try {
        const mesh = getMesh();
        // Core names targets the grpc-js-xds way: xds://[authority]/host:port (gRFC A47). A
        // channel learns that its Listener does not exist from the server's responses and
        // A57's timer, as with grpc-js-xds, not from the listener catalog fetch uses; so a
        // gRPC-only process opens one ADS stream, not two.
        const t = mesh.target(`xds://${target.authority ?? ''}/${target.path}`, { listenerCatalog: false });
        this.#mesh = mesh;
        this.#target = t;
        trace(() => `${this.#uri}: resolving ${t.authority} (Listener "${t.listenerName}") for scheme ${scheme}`);
        this.#subscribe();
      } catch (err) {
        const e = err instanceof MeshletError ? err : new MeshletError('MESHLET_INVALID_OPTION', String(err));
        trace(() => `${this.#uri}: ${e.message}`);
        process.nextTick(() => this.#reportError(e));
      }
    }

    static getDefaultAuthority(target: experimental.GrpcUri): string {
      return target.path;
    }

    updateResolution(): void {
      if (this.#destroyed) {
        // grpc-js destroys the resolver when the channel goes idle and calls this to start
        // it again: follow the target again and report what it has now.
        this.#destroyed = false;
        this.#needsReport = true;
        this.#subscribe();
        return;
      }
      // grpc-js asks again after a failure or a reconnection: answer with what we have.
      if (this.#state) this.#queueReport();
      else if (this.#target?.error) {
        const error = this.#target.error;
        process.nextTick(() => this.#reportError(error));
      }
    }

    destroy(): void {
      this.#destroyed = true;
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }

    #subscribe(): void {
      const t = this.#target;
      const mesh = this.#mesh;
      if (!t || !mesh || this.#unsubscribe) return;
      this.#unsubscribe = t.onChange(() => this.#onTarget(mesh, t));
      if (t.snapshot || t.state !== 'pending') this.#onTarget(mesh, t);
    }

    #onTarget(mesh: Mesh, target: MeshTarget): void {
      if (this.#destroyed) return;
      const snapshot = target.snapshot;
      if (snapshot) {
        if (this.#state) {
          this.#state.update(snapshot);
          // After a restart (the channel left idle) grpc-js needs the resolution again.
          if (this.#needsReport) this.#queueReport();
          return;
        }
        this.#state = new ChannelState(mesh, target, snapshot);
        trace(() => `${this.#uri}: configuration ready (route configuration "${snapshot.routeTable.name}", ${snapshot.clusters.size} cluster(s) named)`);
        this.#queueReport();
        return;
      }
      // No config yet: the Listener does not exist, or its chain cannot be resolved.
      if (target.error) {
        const error = target.error;
        process.nextTick(() => this.#reportError(error));
      }
    }

    #queueReport(): void {
      if (this.#reportQueued) return;
      this.#reportQueued = true;
      // grpc-js: never call the listener synchronously from the constructor or updateResolution.
      process.nextTick(() => {
        this.#reportQueued = false;
        if (this.#destroyed || !this.#state) return;
        this.#needsReport = false;
        this.#listener(
          experimental.statusOrFromValue([]),
          { [CHANNEL_STATE_KEY]: this.#state, [experimental.CHANNEL_ARGS_CONFIG_SELECTOR_KEY]: createConfigSelector(this.#state) },
          experimental.statusOrFromValue(SERVICE_CONFIG as never),
          '',
        );
      });
    }

    #reportError(error: MeshletError): void {
      if (this.#destroyed || this.#state) return;
      const status = meshletStatus(error.code, `${this.#uri}: ${error.message}`);
      this.#listener(experimental.statusOrFromError({ code: Status.UNAVAILABLE, details: status.details, metadata: new Metadata() }), {}, null, '');
    }
  };
}
