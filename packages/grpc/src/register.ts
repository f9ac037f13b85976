// register(): plug meshlet into the application's @grpc/grpc-js through its experimental
// API, the way @grpc/grpc-js-xds does: a resolver for the scheme (default `xds`) and the
// `meshlet_cluster_manager` load balancer. Idempotent; registering a scheme again with
// another mesh points new channels of that scheme at it. Under another scheme name
// (`register({ scheme: 'meshlet-xds' })`) it leaves `xds` to grpc-js-xds in the same process.
import { experimental } from '@grpc/grpc-js';
import { getDefaultMesh, Mesh } from '@meshlet/core';
import { MeshletError, tracer } from '@meshlet/xds-client';
import { LB_POLICY_NAME, MeshletBalancer, MeshletLbConfig } from './balancer.js';
import { resolverClass } from './resolver.js';

const trace = tracer('grpc');

export interface RegisterOptions {
  /** The URI scheme to resolve (default "xds"): `new Client('<scheme>:///host:port', creds)`. */
  readonly scheme?: string;
  /**
   * The mesh to resolve through (from @meshlet/core's createMesh({ bootstrap })); default
   * the process-wide mesh, created from GRPC_XDS_BOOTSTRAP / GRPC_XDS_BOOTSTRAP_CONFIG on the
   * first channel, and shared with @meshlet/http.
   */
  readonly mesh?: Mesh;
}

// RFC 3986 scheme syntax.
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** Scheme → the mesh it resolves through (undefined: the default mesh). */
const registered = new Map<string, Mesh | undefined>();
let balancerRegistered = false;

function invalid(option: string, reason: string): MeshletError {
  return new MeshletError('MESHLET_INVALID_OPTION', `@meshlet/grpc register(): ${option}: ${reason}`);
}

export function register(options: RegisterOptions = {}): void {
  if (typeof options !== 'object' || options === null) throw invalid('options', `want an object, got ${options === null ? 'null' : typeof options}`);
  const scheme = options.scheme ?? 'xds';
  if (typeof scheme !== 'string' || !SCHEME_RE.test(scheme)) {
    throw invalid('scheme', `want a URI scheme name such as "xds" or "meshlet-xds", got ${JSON.stringify(scheme)}`);
  }
  const mesh = options.mesh;
  if (mesh !== undefined && !(mesh instanceof Mesh)) throw invalid('mesh', 'want a Mesh from @meshlet/core (createMesh())');
  if (!balancerRegistered) {
    experimental.registerLoadBalancerType(LB_POLICY_NAME, MeshletBalancer, MeshletLbConfig);
    balancerRegistered = true;
  }
  if (registered.has(scheme) && registered.get(scheme) === mesh) return;
  registered.set(scheme, mesh);
  experimental.registerResolver(scheme, resolverClass(scheme, () => mesh ?? getDefaultMesh()));
  trace(() => `registered scheme "${scheme}" (${mesh ? 'a given mesh' : 'the default mesh'})`);
}
