import { describe, expect, it } from 'vitest';
import { cosine, HashingEmbedder } from './embedder.js';
import type { ChangeEvent } from './events.js';
import { featurize } from './features.js';

const base: ChangeEvent = {
  at: '2026-03-03T10:00:00+01:00',
  host: 'web-01',
  actor: 'ci-deploy',
  plugin: 'systemd',
  resource: 'units/nginx.service',
  op: 'update',
  before: { active: true },
  after: { active: true, restarts: 1 },
};

describe('HashingEmbedder', () => {
  const embedder = new HashingEmbedder();

  it('gives unit vectors of 384 dimensions, the same in every run', () => {
    const v = embedder.embedChange(featurize(base));
    expect(v).toHaveLength(384);
    expect(cosine(v, v)).toBeCloseTo(1, 6);
    let norm = 0;
    for (const x of v) norm += x * x;
    expect(norm).toBeCloseTo(1, 5);
    expect(Array.from(new HashingEmbedder().embedChange(featurize(base)))).toEqual(Array.from(v));
  });

  it('puts a routine repeat closer than a change by someone else, elsewhere, at night', () => {
    const v = embedder.embedChange(featurize(base));
    const repeat = embedder.embedChange(
      featurize({ ...base, at: '2026-03-04T10:20:00+01:00', host: 'web-02' }),
    );
    const odd = embedder.embedChange(
      featurize({
        ...base,
        at: '2026-03-07T03:00:00+01:00',
        actor: 'mallory',
        host: 'db-01',
        op: 'delete',
        after: null,
      }),
    );
    expect(cosine(v, repeat)).toBeGreaterThan(0.85);
    expect(cosine(v, odd)).toBeLessThan(cosine(v, repeat) - 0.3);
  });

  it('embeds states so that a small edit stays close and a rewrite does not', () => {
    const state = {
      plugins: { sysctl: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`net.k${i}`, String(i)])) },
    };
    const edited = { plugins: { sysctl: { ...state.plugins.sysctl, 'net.k3': '99' } } };
    const rewritten = { plugins: { systemd: { units: { 'x.service': { active: false } } } } };
    const a = embedder.embedState(state);
    expect(cosine(a, embedder.embedState(edited))).toBeGreaterThan(0.95);
    expect(cosine(a, embedder.embedState(rewritten))).toBeLessThan(0.5);
  });

  it('refuses a dimension too small to hash into', () => {
    expect(() => new HashingEmbedder(8)).toThrow(RangeError);
  });
});
