import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from './events.js';
import { featurize } from './features.js';
import { burstCounts, categoricalTail, cyclicTail, HistoryProfile } from './profile.js';
import { Counter, CyclicCounts } from './stats.js';

function counter(entries: Record<string, number>): Counter {
  const c = new Counter();
  for (const [k, n] of Object.entries(entries)) c.add(k, n);
  return c;
}

describe('categoricalTail', () => {
  it('gives a new value little mass where one value always came, more where many did', () => {
    const always = counter({ ansible: 100 });
    const many = counter(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`u${i}`, 2])));
    expect(categoricalTail([always], 'mallory')).toBeCloseTo(1 / 101, 6);
    expect(categoricalTail([many], 'mallory')).toBeCloseTo(50 / 150, 6);
    expect(categoricalTail([always], 'ansible')).toBe(1);
  });

  it('passes the wider context through an empty one and multiplies new-value masses', () => {
    const fleet = counter({ alice: 10, bob: 10 });
    expect(categoricalTail([fleet, undefined], 'carol')).toBeCloseTo(2 / 22, 6);
    expect(categoricalTail([fleet, counter({ alice: 5 })], 'carol')).toBeCloseTo((2 / 22) * (1 / 6), 6);
    // A rare seen value: the mass of values seen at most as often, plus the new-value mass.
    expect(categoricalTail([counter({ a: 97, b: 3 })], 'b')).toBeCloseTo((3 + 2) / 102, 6);
  });
});

describe('cyclicTail', () => {
  it('finds an hour far from the usual ones unlikely, and a neighbour hour less so', () => {
    const hours = new CyclicCounts(24);
    for (let i = 0; i < 200; i++) hours.add(9 + (i % 9)); // 09–17
    const night = cyclicTail([hours], 24, 3, 0.5).p;
    const late = cyclicTail([hours], 24, 18, 0.5).p;
    const usual = cyclicTail([hours], 24, 12, 0.5).p;
    expect(night).toBeLessThan(0.02);
    expect(late).toBeGreaterThan(night);
    expect(usual).toBeGreaterThan(0.5);
  });

  it('is uniform without data', () => {
    expect(cyclicTail([undefined], 7, 3, 0).p).toBeCloseTo(1, 10);
  });
});

function event(over: Partial<ChangeEvent>): ChangeEvent {
  return {
    at: '2026-03-02T10:00:00Z',
    host: 'web-01',
    actor: 'alice',
    plugin: 'sysctl',
    resource: 'net.core.somaxconn',
    op: 'update',
    before: null,
    after: 4096,
    ...over,
  };
}

describe('HistoryProfile detectors', () => {
  // Four weeks: web hosts get somaxconn from alice on weekdays 09–17; db hosts get swappiness from bob.
  const history: ChangeEvent[] = [];
  for (let day = 0; day < 28; day++) {
    if (day % 7 >= 5) continue;
    const date = new Date(Date.UTC(2026, 2, 2 + day, 0, 0, 0));
    for (const [i, host] of ['web-01', 'web-02', 'web-03'].entries()) {
      const at = new Date(date.getTime() + (9 + ((day + i) % 8)) * 3_600_000).toISOString();
      history.push(event({ at, host, after: 4000 + ((day * 7 + i) % 200) }));
    }
    for (const [i, host] of ['db-01', 'db-02'].entries()) {
      const at = new Date(date.getTime() + (10 + ((day + i) % 6)) * 3_600_000).toISOString();
      history.push(event({ at, host, actor: 'bob', resource: 'vm.swappiness', after: 10 + ((day + i) % 3) }));
    }
  }
  const profile = new HistoryProfile();
  profile.addAll(history.map(featurize));
  profile.finalize();
  const routine = featurize(event({ at: '2026-04-01T11:00:00Z', after: 4100 }));

  it('finds peers among hosts that change the same things', () => {
    expect(profile.peers.get('web-01')).toEqual(['web-02', 'web-03']);
    expect(profile.peers.get('db-01')).toEqual(['db-02']);
  });

  it('a routine change passes every detector', () => {
    for (const d of ['what', 'actor', 'host', 'hour', 'day', 'value'] as const)
      expect(profile[d](routine).p).toBeGreaterThan(0.05);
  });

  it('a new actor, a night hour, a weekend, a value out of band, a wrong host each stand out', () => {
    expect(profile.actor(featurize(event({ actor: 'mallory' }))).p).toBeLessThan(0.01);
    expect(profile.hour(featurize(event({ at: '2026-04-01T03:00:00Z' }))).p).toBeLessThan(0.02);
    expect(profile.day(featurize(event({ at: '2026-04-04T11:00:00Z' }))).p).toBeLessThan(0.05);
    const band = profile.value(featurize(event({ after: 65535 })));
    expect(band.p).toBeLessThan(0.001);
    expect(band.evidence).toMatchObject({ kind: 'band', value: 65535 });
    const wrongHost = profile.host(featurize(event({ host: 'db-01' })));
    expect(wrongHost.p).toBeLessThan(0.01);
    expect(wrongHost.evidence).toMatchObject({ onPeers: 0, fleet: 3 });
    expect(profile.what(featurize(event({ op: 'delete' }))).p).toBeLessThan(0.05);
  });

  it('survives a JSON round trip', () => {
    const copy = HistoryProfile.fromJSON(
      JSON.parse(JSON.stringify(profile.toJSON())) as ReturnType<HistoryProfile['toJSON']>,
    );
    copy.finalize();
    for (const d of ['what', 'actor', 'host', 'hour', 'day', 'value'] as const)
      expect(copy[d](routine).p).toBe(profile[d](routine).p);
  });
});

describe('burstCounts', () => {
  it('counts the changes of the same host within ±5 minutes', () => {
    const at = (min: number, host = 'h1') =>
      featurize(event({ host, at: new Date(Date.UTC(2026, 0, 1, 12, min)).toISOString() }));
    expect(burstCounts([at(0), at(2), at(4), at(20), at(1, 'h2')])).toEqual([3, 3, 3, 1, 1]);
  });
});
