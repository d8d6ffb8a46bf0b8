/** How many periods of each kind keep their first snapshot (snapper's TIMELINE_LIMIT_*). */
export interface RetentionPolicy {
  hourly: number;
  daily: number;
  /** ISO 8601 weeks (Monday to Sunday; the week-numbering year). */
  weekly: number;
  monthly: number;
  quarterly: number;
  yearly: number;
  /** Snapshots younger than this are always kept (snapper's TIMELINE_MIN_AGE; default 1800 s). */
  minAgeS: number;
  /** Whether periods follow local time (as snapper) or UTC. Default local. */
  timeZone: 'local' | 'utc';
}

/** The defaults: 5 hourly, 5 daily, 5 weekly, 5 quarterly; no monthly or yearly; 30 minutes minimum age. */
export const defaultRetention: RetentionPolicy = {
  hourly: 5,
  daily: 5,
  weekly: 5,
  monthly: 0,
  quarterly: 5,
  yearly: 0,
  minAgeS: 1800,
  timeZone: 'local',
};

/** Why a snapshot is kept. */
export type KeepReason =
  'hourly' | 'daily' | 'weekly' | 'monthly' | 'quarterly' | 'yearly' | 'min-age' | 'newest';

/** A snapshot as retention sees it. */
export interface RetentionItem {
  id: string;
  createdAt: Date;
}

/** What a retention run keeps and removes. */
export interface RetentionPlan {
  keep: { id: string; createdAt: Date; reasons: KeepReason[] }[];
  remove: { id: string; createdAt: Date }[];
}

type Period = Exclude<KeepReason, 'min-age' | 'newest'>;
const periods: readonly Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'quarterly', 'yearly'];

interface Parts {
  y: number;
  m: number;
  d: number;
  h: number;
}

function parts(date: Date, zone: RetentionPolicy['timeZone']): Parts {
  return zone === 'utc'
    ? { y: date.getUTCFullYear(), m: date.getUTCMonth(), d: date.getUTCDate(), h: date.getUTCHours() }
    : { y: date.getFullYear(), m: date.getMonth(), d: date.getDate(), h: date.getHours() };
}

/** ISO 8601 week-numbering year and week of a calendar date. */
export function isoWeek(y: number, m: number, d: number): { year: number; week: number } {
  const day = Date.UTC(y, m, d);
  const dow = (new Date(day).getUTCDay() + 6) % 7; // Monday = 0
  const thursday = new Date(day + (3 - dow) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000));
  return { year, week };
}

function periodKey(period: Period, p: Parts): string {
  switch (period) {
    case 'hourly':
      return `${p.y}-${p.m}-${p.d}T${p.h}`;
    case 'daily':
      return `${p.y}-${p.m}-${p.d}`;
    case 'weekly': {
      const w = isoWeek(p.y, p.m, p.d);
      return `${w.year}-W${w.week}`;
    }
    case 'monthly':
      return `${p.y}-${p.m}`;
    case 'quarterly':
      return `${p.y}-Q${Math.floor(p.m / 3)}`;
    case 'yearly':
      return `${p.y}`;
  }
}

/**
 * snapper's timeline cleanup: walking from the newest snapshot to the oldest, a snapshot is kept
 * for a period kind when it is the first (oldest) snapshot of its hour / day / ISO week / month /
 * quarter / year and fewer than the policy's count of such periods are kept yet. Snapshots
 * younger than `minAgeS`, and the newest snapshot, are always kept. Everything else is removed.
 */
export function planRetention(
  items: readonly RetentionItem[],
  policy: Partial<RetentionPolicy> = {},
  now = new Date(),
): RetentionPlan {
  const p: RetentionPolicy = { ...defaultRetention, ...policy };
  const sorted = [...items].sort(
    (a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1),
  );
  const keys = sorted.map((item) => {
    const at = parts(item.createdAt, p.timeZone);
    return Object.fromEntries(periods.map((period) => [period, periodKey(period, at)])) as Record<
      Period,
      string
    >;
  });
  const counts: Record<Period, number> = {
    hourly: 0,
    daily: 0,
    weekly: 0,
    monthly: 0,
    quarterly: 0,
    yearly: 0,
  };
  const keep: RetentionPlan['keep'] = [];
  const remove: RetentionPlan['remove'] = [];
  for (let i = sorted.length - 1; i >= 0; i--) {
    const item = sorted[i]!;
    const reasons: KeepReason[] = [];
    for (const period of periods) {
      const first = i === 0 || keys[i - 1]![period] !== keys[i]![period];
      if (first && counts[period] < p[period]) {
        counts[period]++;
        reasons.push(period);
      }
    }
    if (now.getTime() - item.createdAt.getTime() < p.minAgeS * 1000) reasons.push('min-age');
    if (i === sorted.length - 1) reasons.push('newest');
    if (reasons.length > 0) keep.push({ id: item.id, createdAt: item.createdAt, reasons });
    else remove.push({ id: item.id, createdAt: item.createdAt });
  }
  return { keep: keep.reverse(), remove: remove.reverse() };
}
