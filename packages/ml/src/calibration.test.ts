import { describe, expect, it } from 'vitest';
import { fitTail, tailProbability, tailSurprise } from './calibration.js';

describe('rank calibration', () => {
  const sample = Array.from({ length: 1000 }, (_, i) => i / 100); // 0 … 9.99
  const tail = fitTail(sample, 0.01);

  it('is the empirical upper-tail rank inside the sample', () => {
    expect(tailProbability(tail, -1)).toBe(1);
    expect(tailProbability(tail, 5)).toBeCloseTo(501 / 1001, 6);
    expect(tailProbability(tail, 9)).toBeCloseTo(101 / 1001, 6);
  });

  it('extrapolates beyond the sample, keeping the order of extreme values', () => {
    const a = tailProbability(tail, 12);
    const b = tailProbability(tail, 20);
    expect(a).toBeLessThan(1 / 1001);
    expect(b).toBeLessThan(a);
    expect(b).toBeGreaterThan(0);
    expect(tailSurprise(tail, 20)).toBeCloseTo(-Math.log(b), 6);
    // Far beyond, the surprise keeps growing where the probability underflows.
    expect(tailSurprise(tail, 1e6)).toBeGreaterThan(tailSurprise(tail, 1e5));
  });

  it('is monotone', () => {
    let prev = 2;
    for (let x = -1; x < 30; x += 0.05) {
      const p = tailProbability(tail, x);
      expect(p).toBeLessThanOrEqual(prev + 1e-12);
      prev = p;
    }
  });

  it('copes with a constant sample (all held-out values equal)', () => {
    const flat = fitTail(new Array<number>(100).fill(0), 0.5);
    expect(tailProbability(flat, 0)).toBe(1);
    expect(tailProbability(flat, 3)).toBeLessThan(tailProbability(flat, 1));
  });
});
