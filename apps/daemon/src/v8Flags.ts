/**
 * The V8 flags `opdbusd` runs with (its bin sets them before anything else is loaded;
 * `OPDBUSD_V8_FLAGS` replaces them). A long-running process with a small heap:
 *
 * - `--optimize-for-size`: V8's memory-saving heuristics (a young generation of 1 MiB instead of
 *   up to 32 MiB, a heap that grows less eagerly) take about 40 MiB off the resident size at rest,
 *   for somewhat more frequent collections.
 * - `--max-opt=1`: code runs in the interpreter and the baseline compiler (Sparkplug), never in the
 *   optimizing compiler (TurboFan): no optimized code and compiler zones on the heap, and the
 *   compiler's own pages of the node binary never read in: about 7 MiB less at rest with 1000
 *   managed resources. opdbusd waits on the kernel, the disk (fsync'd ledger) and its clients far
 *   more than it computes; drift detection and correction latency, and a 10k events/s storm, were
 *   measured with these flags (docs/benchmarks.md, daemon).
 */
export const defaultV8Flags = '--optimize-for-size --max-opt=1';
