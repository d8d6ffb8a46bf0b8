import { describe, expect, it } from 'vitest';
import { evaluateScores, FrequencyBaseline, prAuc, recallAtFpr, rocAuc } from './evaluate.js';

describe('metrics', () => {
  it('ROC-AUC counts pairs, ties half', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [false, false, true, true])).toBe(1);
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [false, false, true, true])).toBe(0);
    expect(rocAuc([0.5, 0.5], [false, true])).toBe(0.5);
    // 3 positives × 2 negatives: pairs (0.7>0.4, 0.7>0.6, 0.5>0.4, 0.3<…): 3 of 6.
    expect(rocAuc([0.7, 0.5, 0.3, 0.4, 0.6], [true, true, true, false, false])).toBe(0.5);
  });

  it('PR-AUC is average precision', () => {
    expect(prAuc([0.9, 0.8, 0.1], [true, false, true])).toBeCloseTo((1 + 2 / 3) / 2, 10);
  });

  it('recall at a false-positive rate counts only scores above every allowed normal', () => {
    const scores = [...Array.from({ length: 100 }, (_, i) => i / 100), 0.985, 0.995, 0.5];
    const labels = [...new Array<boolean>(100).fill(false), true, true, true];
    // 2 % of 100 normals: 0.99 and 0.98 may be above; the threshold is the third highest (0.97).
    expect(recallAtFpr(scores, labels, 0.02)).toEqual({ recall: 2 / 3, threshold: 0.97 });
    expect(recallAtFpr(scores, labels, 0).recall).toBe(1 / 3);
  });

  it('reports per kind', () => {
    const e = evaluateScores([0.1, 0.2, 0.9, 0.15], [false, false, true, true], [null, null, 'a', 'b']);
    expect(e.kinds.a).toEqual({ n: 1, rocAuc: 1, recallAt2: 1 });
    expect(e.kinds.b!.rocAuc).toBe(0.5);
  });
});

describe('FrequencyBaseline', () => {
  it('scores unseen (actor, resource, op) combinations above frequent ones, ids collapsed', () => {
    const e = (actor: string, resource: string) => ({
      at: '2026-01-01T00:00:00Z',
      host: 'h',
      actor,
      plugin: 'network',
      resource,
      op: 'create' as const,
      before: null,
      after: null,
    });
    const b = new FrequencyBaseline([
      e('kubelet', 'links/cali0a1b2c3d4e5'),
      e('kubelet', 'links/cali9f8e7d6c5b4'),
    ]);
    const [seen, fresh] = b.score([
      e('kubelet', 'links/cali1234567890a'),
      e('mallory', 'links/cali1234567890a'),
    ]);
    expect(fresh!).toBeGreaterThan(seen!);
  });
});
