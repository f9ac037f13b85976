// What a watcher of one resource is told, and what an admin (CSDS-like) view of the
// cache shows.
import type { MeshletError } from './errors.js';
import type { AnyMessage } from './resource-type.js';

export interface XdsWatcher<T> {
  /** A new value (first one, or a change). */
  onChanged(value: T): void;
  /**
   * The resource was NACKed (its last good value, if any, stays in force), or the
   * stream to its server failed (an ambient error in gRFC A88's terms).
   */
  onError(error: MeshletError): void;
  /** The server does not have it: deleted, or never sent before the timer ran out (gRFC A57). */
  onDoesNotExist(): void;
  /**
   * For a wildcard (`*`) watch of a type whose every response is the whole set (LDS, CDS):
   * the names of every resource in the response just processed, valid or not. Not called
   * for a response holding a resource that could not even be named.
   */
  onResourceNames?(names: ReadonlySet<string>): void;
}

/** CSDS's ClientResourceStatus, the states meshlet uses. */
export type ResourceState = 'requested' | 'does_not_exist' | 'acked' | 'nacked';

export interface ResourceErrorState {
  readonly message: string;
  /** version_info of the response that carried the rejected resource. */
  readonly version: string;
  readonly time: number;
}

export interface ResourceSnapshot {
  readonly serverUri: string;
  readonly typeUrl: string;
  readonly name: string;
  readonly state: ResourceState;
  /** version_info of the response that last changed or confirmed the accepted value. */
  readonly version: string;
  readonly lastUpdated?: number;
  readonly error?: ResourceErrorState;
  readonly value?: unknown;
  readonly raw?: AnyMessage;
  /** The rejected resource of the last NACK (CSDS's failed_configuration), while state is nacked. */
  readonly rejected?: AnyMessage;
  /**
   * Known only through a wildcard (`*`) subscription: nobody watches it by name, so it has
   * no per-resource timestamp and `version` is the type's last ACKed version_info.
   */
  readonly viaWildcard?: true;
}

export interface TypeSnapshot {
  readonly serverUri: string;
  readonly typeUrl: string;
  /** The last version_info ACKed for the type. */
  readonly versionInfo: string;
  /** The nonce of the last response received for the type on the current stream. */
  readonly nonce: string;
}

export interface XdsClientDump {
  readonly types: readonly TypeSnapshot[];
  readonly resources: readonly ResourceSnapshot[];
}
