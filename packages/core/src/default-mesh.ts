// One mesh per process by default (one ADS stream per xDS server), created on first use
// from the environment's bootstrap (GRPC_XDS_BOOTSTRAP / GRPC_XDS_BOOTSTRAP_CONFIG), as
// grpc-js-xds does. It lives in core so @meshlet/http and @meshlet/grpc share it.
// createMesh() makes independent ones, for tests and for applications that want several.
import { Mesh, type MeshOptions } from './mesh.js';

let defaultMesh: Mesh | undefined;

/** The process-wide mesh, created from the environment on first use. */
export function getDefaultMesh(): Mesh {
  defaultMesh ??= new Mesh();
  return defaultMesh;
}

/** A mesh of its own (its own xDS client), e.g. `createMesh({ bootstrap })`. */
export function createMesh(options: MeshOptions = {}): Mesh {
  return new Mesh(options);
}

/** Close the process-wide mesh (its xDS streams), if it was created. */
export function closeDefaultMesh(): void {
  defaultMesh?.close();
  defaultMesh = undefined;
}
