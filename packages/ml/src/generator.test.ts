import { describe, expect, it } from 'vitest';
import { parseChangeEvents } from './events.js';
import { ANOMALY_KINDS, generateFleetHistory, toJsonl } from './generator.js';

describe('generateFleetHistory', () => {
  const a = generateFleetHistory({ seed: 5, weeks: 2, testWeeks: 1, hosts: 12 });

  it('is deterministic for a seed and different for another', () => {
    expect(generateFleetHistory({ seed: 5, weeks: 2, testWeeks: 1, hosts: 12 })).toEqual(a);
    expect(generateFleetHistory({ seed: 6, weeks: 2, testWeeks: 1, hosts: 12 }).history).not.toEqual(
      a.history,
    );
  });

  it('writes valid change events in time order, test after history, one label per test change', () => {
    const history = parseChangeEvents(toJsonl(a.history));
    const test = parseChangeEvents(toJsonl(a.test));
    expect(history.length).toBeGreaterThan(500);
    const times = [...history, ...test].map((e) => Date.parse(e.at));
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
    expect(a.labels).toHaveLength(test.length);
    expect(a.kinds).toHaveLength(test.length);
    a.labels.forEach((l, i) => expect(l).toBe(a.kinds[i] !== null));
  });

  it('injects every kind of anomaly into the test weeks only', () => {
    expect(new Set(a.kinds.filter((k) => k !== null))).toEqual(new Set(ANOMALY_KINDS));
    const rate = a.labels.filter(Boolean).length / a.labels.length;
    expect(rate).toBeGreaterThan(0.01);
    expect(rate).toBeLessThan(0.25);
  });
});
