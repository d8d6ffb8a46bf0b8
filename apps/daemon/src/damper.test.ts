import { describe, expect, it } from 'vitest';
import { FlapDamper } from './damper.js';

describe('FlapDamper', () => {
  it('puts a resource on hold after threshold drifts in the window, and releases it after the hold', () => {
    const d = new FlapDamper({ threshold: 3, windowMs: 1000, holdMs: 5000 });
    expect(d.drifted('k', 0)).toBeUndefined();
    expect(d.drifted('k', 100)).toBeUndefined();
    const hold = d.drifted('k', 200);
    expect(hold).toMatchObject({ key: 'k', drifts: 3 });
    expect(d.held('k', 1000)).toBeDefined();
    expect(d.holds(1000)).toHaveLength(1);
    expect(d.held('k', 5200)).toBeUndefined();
  });

  it('does not hold a resource whose drifts are spread wider than the window', () => {
    const d = new FlapDamper({ threshold: 3, windowMs: 1000, holdMs: 5000 });
    for (const t of [0, 600, 1200, 1800, 2400]) expect(d.drifted('k', t)).toBeUndefined();
  });
});
