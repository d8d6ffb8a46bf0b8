import { describe, expect, it } from 'vitest';
import { isoWeek, planRetention, type RetentionItem } from './retention.js';

const at = (iso: string, id = iso): RetentionItem => ({ id, createdAt: new Date(iso) });
const kept = (items: RetentionItem[], policy: Parameters<typeof planRetention>[1], now: string) =>
  Object.fromEntries(
    planRetention(items, { minAgeS: 0, timeZone: 'utc', ...policy }, new Date(now)).keep.map((k) => [
      k.id,
      k.reasons,
    ]),
  );

describe('ISO weeks', () => {
  it('numbers weeks as ISO 8601 does, across year ends', () => {
    expect(isoWeek(2026, 0, 1)).toEqual({ year: 2026, week: 1 }); // a Thursday
    expect(isoWeek(2026, 11, 31)).toEqual({ year: 2026, week: 53 }); // 2026 has 53 weeks
    expect(isoWeek(2027, 0, 3)).toEqual({ year: 2026, week: 53 }); // Sunday, still 2026-W53
    expect(isoWeek(2027, 0, 4)).toEqual({ year: 2027, week: 1 }); // Monday
    expect(isoWeek(2024, 11, 30)).toEqual({ year: 2025, week: 1 }); // Monday in 2025-W01
    expect(isoWeek(2021, 0, 3)).toEqual({ year: 2020, week: 53 });
  });
});

describe('timeline retention (snapper semantics)', () => {
  it('keeps the first snapshot of each of the last N hours, newest first', () => {
    const items = [
      at('2026-03-01T10:05:00Z'),
      at('2026-03-01T10:40:00Z'),
      at('2026-03-01T11:10:00Z'),
      at('2026-03-01T11:50:00Z'),
      at('2026-03-01T12:20:00Z'),
      at('2026-03-01T12:30:00Z'),
    ];
    expect(
      kept(
        items,
        { hourly: 2, daily: 0, weekly: 0, monthly: 0, quarterly: 0, yearly: 0 },
        '2026-03-01T13:00:00Z',
      ),
    ).toEqual({
      '2026-03-01T11:10:00Z': ['hourly'],
      '2026-03-01T12:20:00Z': ['hourly'],
      '2026-03-01T12:30:00Z': ['newest'],
    });
  });

  it('crosses the year, quarter and ISO-week boundaries', () => {
    const items = [
      at('2026-09-30T23:30:00Z'), // Q3 2026, W40
      at('2026-10-01T00:10:00Z'), // Q4 2026 starts (same ISO week 40)
      at('2026-12-28T09:00:00Z'), // Monday, 2026-W53
      at('2026-12-31T23:50:00Z'), // Thursday, 2026-W53, Q4, year 2026
      at('2027-01-01T00:05:00Z'), // Friday, still 2026-W53; Q1 2027; year 2027
      at('2027-01-03T12:00:00Z'), // Sunday, 2026-W53
      at('2027-01-04T08:00:00Z'), // Monday, 2027-W01
    ];
    const none = { hourly: 0, daily: 0, weekly: 0, monthly: 0, quarterly: 0, yearly: 0 };
    const now = '2027-01-05T00:00:00Z';
    expect(kept(items, { ...none, weekly: 3 }, now)).toEqual({
      '2026-12-28T09:00:00Z': ['weekly'], // first of 2026-W53: Jan 1 and Jan 3 2027 are in the same ISO week
      '2026-09-30T23:30:00Z': ['weekly'], // first of W40 (Oct 1 is the same week)
      '2027-01-04T08:00:00Z': ['weekly', 'newest'],
    });
    expect(kept(items, { ...none, quarterly: 5 }, now)).toEqual({
      '2026-09-30T23:30:00Z': ['quarterly'],
      '2026-10-01T00:10:00Z': ['quarterly'],
      '2027-01-01T00:05:00Z': ['quarterly'],
      '2027-01-04T08:00:00Z': ['newest'],
    });
    expect(kept(items, { ...none, yearly: 1 }, now)).toEqual({
      '2027-01-01T00:05:00Z': ['yearly'],
      '2027-01-04T08:00:00Z': ['newest'],
    });
    expect(kept(items, { ...none, monthly: 2, daily: 2 }, now)).toEqual({
      '2026-12-28T09:00:00Z': ['monthly'],
      '2027-01-03T12:00:00Z': ['daily'],
      '2027-01-01T00:05:00Z': ['monthly'],
      '2027-01-04T08:00:00Z': ['daily', 'newest'],
    });
  });

  it('defaults to 5 hourly, 5 daily, 5 weekly, 5 quarterly over a simulated year of hourly snapshots', () => {
    const start = Date.parse('2026-01-01T00:30:00Z');
    const items = Array.from({ length: 365 * 24 }, (_, h) =>
      at(new Date(start + h * 3_600_000).toISOString()),
    );
    const now = new Date(start + 365 * 24 * 3_600_000);
    const plan = planRetention(items, { minAgeS: 0, timeZone: 'utc' }, now);
    const reasons = (r: string) => plan.keep.filter((k) => k.reasons.includes(r as never)).map((k) => k.id);
    expect(reasons('hourly')).toHaveLength(5);
    expect(reasons('daily')).toHaveLength(5);
    expect(reasons('weekly')).toHaveLength(5);
    // The year holds four quarters: the first snapshot of each is kept.
    expect(reasons('quarterly')).toEqual([
      '2026-01-01T00:30:00.000Z',
      '2026-04-01T00:30:00.000Z',
      '2026-07-01T00:30:00.000Z',
      '2026-10-01T00:30:00.000Z',
    ]);
    expect(reasons('hourly').at(-1)).toBe('2026-12-31T23:30:00.000Z');
    expect(reasons('monthly')).toEqual([]);
    expect(plan.keep.length + plan.remove.length).toBe(items.length);
    expect(plan.keep.length).toBeLessThanOrEqual(5 + 5 + 5 + 4 + 1);
  });

  it('keeps what is younger than the minimum age and the newest snapshot', () => {
    const items = [at('2026-05-01T10:00:00Z'), at('2026-05-01T10:10:00Z'), at('2026-05-01T10:20:00Z')];
    const plan = planRetention(
      items,
      { hourly: 0, daily: 0, weekly: 0, monthly: 0, quarterly: 0, yearly: 0, minAgeS: 900, timeZone: 'utc' },
      new Date('2026-05-01T10:30:00Z'),
    );
    expect(plan.keep.map((k) => [k.id, k.reasons])).toEqual([
      ['2026-05-01T10:20:00Z', ['min-age', 'newest']],
    ]);
    expect(plan.remove.map((r) => r.id)).toEqual(['2026-05-01T10:00:00Z', '2026-05-01T10:10:00Z']);
    expect(planRetention([], {}, new Date())).toEqual({ keep: [], remove: [] });
  });
});
