// One trace() per component, switched on by MESHLET_TRACE (a comma-separated list of
// component names, `all` or `*` for every one, `-name` to switch one off), the way
// grpc-js uses GRPC_TRACE. Output goes to stderr, one line per event.

let enabled = new Set<string>();
let disabled = new Set<string>();
let all = false;

export function setTraceSpec(spec: string | undefined): void {
  enabled = new Set();
  disabled = new Set();
  all = false;
  for (const raw of (spec ?? '').split(',')) {
    const name = raw.trim();
    if (!name) continue;
    if (name === 'all' || name === '*') all = true;
    else if (name.startsWith('-')) disabled.add(name.slice(1));
    else enabled.add(name);
  }
}

setTraceSpec(process.env.MESHLET_TRACE);

export function isTraceEnabled(component: string): boolean {
  if (disabled.has(component)) return false;
  return all || enabled.has(component);
}

/** Log one line for a component when MESHLET_TRACE names it. */
export function trace(component: string, message: string | (() => string)): void {
  if (!isTraceEnabled(component)) return;
  const text = typeof message === 'function' ? message() : message;
  process.stderr.write(`${new Date().toISOString()} meshlet ${component} | ${text}\n`);
}

/** A trace function bound to one component name. */
export function tracer(component: string): (message: string | (() => string)) => void {
  return (message) => trace(component, message);
}
