import { readFile } from 'node:fs/promises';
import { OpdbusError } from '@opdbus/core';
import type { ChangeEvent } from './events.js';
import { resourceKeys } from './features.js';

/** ROC-AUC: the probability that a random anomaly scores above a random normal change (ties count half). */
export function rocAuc(scores: readonly number[], labels: readonly boolean[]): number {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  let positives = 0;
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]![1]]) {
        rankSum += avgRank;
        positives++;
      }
    }
    i = j + 1;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** PR-AUC as average precision (the mean of the precision at each anomaly, ranked by score). */
export function prAuc(scores: readonly number[], labels: readonly boolean[]): number {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]);
  const positives = labels.filter(Boolean).length;
  if (positives === 0) return Number.NaN;
  let tp = 0;
  let sum = 0;
  let i = 0;
  while (i < order.length) {
    let j = i;
    let groupTp = 0;
    while (j < order.length && order[j]![0] === order[i]![0]) {
      if (labels[order[j]![1]]) groupTp++;
      j++;
    }
    // Ties: every anomaly in the group gets the precision at the end of the group.
    tp += groupTp;
    sum += groupTp * (tp / j);
    i = j;
  }
  return sum / positives;
}

/**
 * The recall reached while at most `fpr` of the normal changes are flagged, and the threshold:
 * flagged = score strictly above the threshold (ties with a normal change are not counted).
 */
export function recallAtFpr(
  scores: readonly number[],
  labels: readonly boolean[],
  fpr: number,
): { recall: number; threshold: number } {
  const negatives = scores.filter((_, i) => !labels[i]).sort((a, b) => b - a);
  const positives = scores.filter((_, i) => labels[i]);
  if (positives.length === 0 || negatives.length === 0) return { recall: Number.NaN, threshold: Number.NaN };
  const allowed = Math.floor(fpr * negatives.length);
  const threshold = negatives[Math.min(allowed, negatives.length - 1)]!;
  return { recall: positives.filter((s) => s > threshold).length / positives.length, threshold };
}

/** The evaluation of one scorer on labelled test changes. */
export interface Evaluation {
  n: number;
  anomalies: number;
  rocAuc: number;
  prAuc: number;
  recallAt1: number;
  recallAt2: number;
  recallAt5: number;
  /** Per anomaly kind (when kinds are given): ROC-AUC against all normal changes, recall at 2 % FPR. */
  kinds: Record<string, { n: number; rocAuc: number; recallAt2: number }>;
}

/** Evaluate scores against labels (and, optionally, the kind of each anomaly). */
export function evaluateScores(
  scores: readonly number[],
  labels: readonly boolean[],
  kinds?: readonly (string | null | undefined)[],
): Evaluation {
  const r2 = recallAtFpr(scores, labels, 0.02);
  const out: Evaluation = {
    n: scores.length,
    anomalies: labels.filter(Boolean).length,
    rocAuc: rocAuc(scores, labels),
    prAuc: prAuc(scores, labels),
    recallAt1: recallAtFpr(scores, labels, 0.01).recall,
    recallAt2: r2.recall,
    recallAt5: recallAtFpr(scores, labels, 0.05).recall,
    kinds: {},
  };
  if (kinds !== undefined) {
    const names = [
      ...new Set(
        kinds.filter((k, i): k is string => labels[i] === true && typeof k === 'string' && k !== ''),
      ),
    ].sort();
    for (const kind of names) {
      const idx = scores.map((_, i) => i).filter((i) => !labels[i] || kinds[i] === kind);
      const s = idx.map((i) => scores[i]!);
      const l = idx.map((i) => labels[i]!);
      const positives = idx.filter((i) => labels[i]).map((i) => scores[i]!);
      out.kinds[kind] = {
        n: positives.length,
        rocAuc: rocAuc(s, l),
        recallAt2: positives.filter((x) => x > r2.threshold).length / positives.length,
      };
    }
  }
  return out;
}

/**
 * The baseline a lookup table gives: how often the history saw this (actor, plugin, resource,
 * op) — the resource with numbers and ids collapsed — as a surprise −ln((count + 1) / (N + V)).
 * What the detectors must beat.
 */
export class FrequencyBaseline {
  private readonly counts = new Map<string, number>();
  private total = 0;

  constructor(history: readonly ChangeEvent[]) {
    for (const e of history) {
      const key = FrequencyBaseline.key(e);
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      this.total++;
    }
  }

  private static key(e: ChangeEvent): string {
    // The resource with run-specific numbers and ids collapsed, as the detectors see it: a
    // baseline that counted every snapshot or pod interface as new would be a straw man.
    return `${e.actor}\u0001${resourceKeys(e.plugin, e.resource).template}\u0001${e.op}`;
  }

  score(events: readonly ChangeEvent[]): number[] {
    const v = this.counts.size + 1;
    return events.map(
      (e) => -Math.log(((this.counts.get(FrequencyBaseline.key(e)) ?? 0) + 1) / (this.total + v)),
    );
  }
}

/** Labels of test changes: one per change, and the kind of each anomaly when known. */
export interface Labels {
  labels: boolean[];
  kinds?: (string | null)[];
}

/**
 * Read a labels file: a JSON array of 0/1 (or booleans), or `{ "labels": [...], "kinds": [...] }`,
 * one entry per test change. Throws `OPDBUS_ERR_ML_LABELS` when it does not match `expected`.
 */
export async function readLabels(file: string, expected: number): Promise<Labels> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_ML_LABELS',
      `Cannot read labels from ${file}: ${(err as Error).message}.`,
      {
        data: { file },
        cause: err,
      },
    );
  }
  const raw = Array.isArray(value) ? value : (value as { labels?: unknown } | null)?.labels;
  const kinds = Array.isArray(value) ? undefined : (value as { kinds?: unknown } | null)?.kinds;
  if (!Array.isArray(raw) || raw.some((x) => x !== 0 && x !== 1 && typeof x !== 'boolean'))
    throw new OpdbusError(
      'OPDBUS_ERR_ML_LABELS',
      `${file} must hold an array of 0/1 or { "labels": [0/1…], "kinds": [...] }.`,
      {
        data: { file },
      },
    );
  if (raw.length !== expected)
    throw new OpdbusError(
      'OPDBUS_ERR_ML_LABELS',
      `${file} has ${raw.length} labels but the test file has ${expected} change events; give one label per event.`,
      {
        data: { file, labels: raw.length, events: expected },
      },
    );
  const out: Labels = { labels: raw.map((x) => x === 1 || x === true) };
  if (Array.isArray(kinds) && kinds.length === expected)
    out.kinds = kinds.map((k) => (typeof k === 'string' ? k : null));
  return out;
}
