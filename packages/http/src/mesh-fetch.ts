// meshFetch: the signature and result of the global fetch, sent through a MeshAgent.
// It is undici's fetch (the implementation Node's global fetch bundles) with the mesh
// as its dispatcher, so bodies, abort signals, redirects and errors behave as fetch's.
import { fetch as undiciFetch } from 'undici';
import type { Mesh } from '@meshlet/core';
import { MeshAgent, type MeshAgentOptions } from './mesh-agent.js';

let defaultAgent: MeshAgent | undefined;

/** The MeshAgent meshFetch uses: the process-wide mesh, ALLOW_ANY. */
export function getDefaultAgent(): MeshAgent {
  defaultAgent ??= new MeshAgent();
  return defaultAgent;
}

/** `fetch`, routed by xDS. A `dispatcher` in `init` is replaced by the mesh's. */
export function meshFetch(input: Parameters<typeof undiciFetch>[0], init?: Parameters<typeof undiciFetch>[1]): ReturnType<typeof undiciFetch> {
  return undiciFetch(input, withDispatcher(init, getDefaultAgent()));
}

type FetchInit = Parameters<typeof undiciFetch>[1];

/** `init` with `dispatcher` set, copied key by key (an object spread with an override is slow on Node 20). */
function withDispatcher(init: FetchInit, dispatcher: MeshAgent): NonNullable<FetchInit> {
  const out: Record<string, unknown> = {};
  if (init != null) for (const k in init) out[k] = (init as Record<string, unknown>)[k];
  out['dispatcher'] = dispatcher;
  return out as NonNullable<FetchInit>;
}

export type MeshFetch = typeof meshFetch;

/** A fetch bound to its own mesh or options (for tests and for several meshes in one process). */
export function createMeshFetch(options: MeshAgentOptions & { mesh?: Mesh } = {}): MeshFetch & { agent: MeshAgent } {
  const agent = new MeshAgent(options);
  const f = ((input, init) => undiciFetch(input, withDispatcher(init, agent))) as MeshFetch & { agent: MeshAgent };
  f.agent = agent;
  return f;
}
