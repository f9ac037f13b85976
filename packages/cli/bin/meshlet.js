#!/usr/bin/env node
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // main() reports its own errors; this is only for a bug in it.
    process.stderr.write(`meshlet: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
