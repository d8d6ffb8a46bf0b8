#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// A long-running process with a small heap: V8's memory-saving heuristics (a young generation of
// 1 MiB instead of up to 32 MiB, a heap that grows less eagerly) take about 40 MiB off the resident
// size at rest, for somewhat more frequent collections. Set before anything else is loaded; the
// heuristics read the flag as they go (see docs/benchmarks.md, daemon). OPDBUSD_V8_FLAGS replaces it.
setFlagsFromString(process.env.OPDBUSD_V8_FLAGS ?? '--optimize-for-size');

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
