// The OpenTelemetry API, loaded when something needs it: a process in which nothing registers
// an OpenTelemetry provider, propagator or context manager, and no provider is given to the
// mesh, records nothing (docs/telemetry.md) and never loads the API, about 0.5 MB of live heap
// that every major collection would mark (docs/design.md, "Resident heap costs every call").
// Its CommonJS build is what Node resolves for `import` too, so this is the module instance an
// application that imports the API has.
import { createRequire } from 'node:module';

type Api = typeof import('@opentelemetry/api');

let api: Api | undefined;

/** The API module, loaded on first use (synchronously). */
export function otel(): Api {
  return (api ??= createRequire(import.meta.url)('@opentelemetry/api') as Api);
}

// Where API 1.x keeps what registerGlobal() set (its internal/global-utils.ts); the entry
// exists once anything has been registered, whichever copy of the API registered it.
const GLOBAL_KEY = Symbol.for('opentelemetry.js.api.1');

/** Whether anything registered an OpenTelemetry global, read without loading the API. */
export function otelGlobalsRegistered(): boolean {
  return (globalThis as Record<symbol, unknown>)[GLOBAL_KEY] !== undefined;
}
