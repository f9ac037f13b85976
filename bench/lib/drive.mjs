// The loop every benchmark client runs: `call` at `concurrency` calls in flight, for a count
// or for a span of time, measured by the rate and the process's CPU per completed call.
// `call` resolves with true when that call failed (a client whose calls throw instead lets
// the run reject).

/** Calls while `more()` says so: the rate, client CPU per completed call, and failures. */
async function drive(call, concurrency, more) {
  let done = 0;
  let errors = 0;
  const start = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (more()) {
        if ((await call()) === true) errors++;
        done++;
      }
    }),
  );
  const used = process.cpuUsage(c0);
  return {
    rps: done / ((performance.now() - start) / 1000),
    cpuPerRequest: (used.user + used.system) / done,
    userPerRequest: used.user / done,
    systemPerRequest: used.system / done,
    errors,
  };
}

/** `n` calls. */
export function run(call, n, concurrency) {
  let next = 0;
  return drive(call, concurrency, () => next++ < n);
}

/** Calls for `ms` milliseconds (bench/paired.mjs). */
export function runFor(call, ms, concurrency) {
  const end = performance.now() + ms;
  return drive(call, concurrency, () => performance.now() < end);
}
