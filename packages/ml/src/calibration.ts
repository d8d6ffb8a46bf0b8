// Rank calibration against the model's own held-out history: a raw detector value becomes the
// probability that a change of that history scored at least as high (its upper-tail p-value).
// Beyond the top of the sample the tail is extrapolated as an exponential (peaks over
// threshold with shape 0), so the order of very unusual changes is kept instead of tying at the
// smallest empirical p-value. Nothing here depends on how the history was made.

/** A sorted sample of one statistic, with its fitted upper tail. */
export interface TailModel {
  /** Sorted ascending (at most {@link MAX_CALIBRATION} values). */
  sorted: number[];
  /** Values at or above this are in the extrapolated tail. */
  threshold: number;
  /** Fraction of the sample at or above the threshold. */
  tailMass: number;
  /** Mean excess over the threshold (the exponential's scale). */
  scale: number;
}

/** Largest calibration sample kept per statistic. */
export const MAX_CALIBRATION = 20_000;

/** The fraction of the sample in the fitted tail. */
const TAIL_FRACTION = 0.05;

/**
 * Fit the tail model of a sample. `minScale` bounds the exponential's scale from below (a
 * statistic whose held-out values are all equal has no spread to measure).
 */
export function fitTail(values: readonly number[], minScale: number): TailModel {
  let sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length > MAX_CALIBRATION) {
    const step = sorted.length / MAX_CALIBRATION;
    sorted = Array.from({ length: MAX_CALIBRATION }, (_, i) => sorted[Math.floor(i * step)]!);
  }
  const n = sorted.length;
  if (n === 0) return { sorted, threshold: 0, tailMass: 1, scale: minScale };
  const m = Math.max(5, Math.min(n, Math.ceil(n * TAIL_FRACTION)));
  const threshold = sorted[n - m]!;
  let excess = 0;
  let count = 0;
  for (let i = n - m; i < n; i++) {
    excess += sorted[i]! - threshold;
    count++;
  }
  const scale = Math.max(minScale, count === 0 ? 0 : excess / count);
  // The mass at or above the threshold (ties with it included).
  const atOrAbove = n - lowerBound(sorted, threshold);
  return { sorted, threshold, tailMass: (atOrAbove + 1) / (n + 1), scale };
}

/** Index of the first element ≥ x. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The upper-tail p-value of `x`: (1 + #{sample ≥ x}) / (n + 1) up to the threshold, then the
 * exponential tail. In (0, 1]; smaller = more unusual.
 */
export function tailProbability(model: TailModel, x: number): number {
  const n = model.sorted.length;
  if (n === 0) return 1;
  if (x <= model.threshold) {
    const atOrAbove = n - lowerBound(model.sorted, x);
    return Math.min(1, (atOrAbove + 1) / (n + 1));
  }
  return model.tailMass * Math.exp(-(x - model.threshold) / model.scale);
}

/** −ln of {@link tailProbability}, computed without underflow far in the tail. */
export function tailSurprise(model: TailModel, x: number): number {
  const n = model.sorted.length;
  if (n === 0) return 0;
  if (x <= model.threshold) return -Math.log(tailProbability(model, x));
  return -Math.log(model.tailMass) + (x - model.threshold) / model.scale;
}
