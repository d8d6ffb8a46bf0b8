#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { defaultV8Flags } from './v8Flags.js';

// Set before anything else is loaded; the heuristics read the flags as they go (see v8Flags.ts and
// docs/benchmarks.md, daemon). OPDBUSD_V8_FLAGS replaces them.
setFlagsFromString(process.env.OPDBUSD_V8_FLAGS ?? defaultV8Flags);

const { main } = await import('./main.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Plugins may keep sockets open (netlink, D-Bus); the daemon has stopped everything it owns.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err: unknown) => {
    process.stderr.write(`opdbusd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
