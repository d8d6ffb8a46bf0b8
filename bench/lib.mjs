// Shared helpers for benchmark suites: timing, statistics, spawning a reference tool, tables.
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** Run `fn` `warmup` times unmeasured, then `iterations` times; milliseconds per run. */
export async function measure(fn, { iterations = 20, warmup = 3 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const samples = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

/** Median, p95, min and mean of samples (ms). */
export function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const pick = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return {
    n: sorted.length,
    median: pick(0.5),
    p95: pick(0.95),
    min: sorted[0],
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

/** Run a command to completion; throws with its stderr when it fails. */
export function sh(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** Whether a binary is installed. */
export function has(binary) {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

/** A markdown table. */
export function table(header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Format milliseconds. */
export function ms(value) {
  if (value === undefined) return 'n/a';
  return value >= 100
    ? `${value.toFixed(0)} ms`
    : value >= 1
      ? `${value.toFixed(2)} ms`
      : `${(value * 1000).toFixed(0)} µs`;
}

/** A ratio "12.3×". */
export function ratio(a, b) {
  return `${(a / b).toFixed(1)}×`;
}
