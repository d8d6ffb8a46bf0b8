import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '@opdbus/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driftHistory } from './history.js';

const HOUR = 3_600_000;
// 10:30 on some day: the window of 3 hours is 08:00–10:30.
const now = Date.parse('2026-12-07T10:30:00Z');
const at = (ms: number): string => new Date(ms).toISOString();

describe('driftHistory', () => {
  let dir: string;
  let ledger: Ledger;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbusd-history-'));
    ledger = await Ledger.open({ dir, origin: 'history.test/ledger' });
    // Older than the window: 600 entries, so that a whole chunk lies before it.
    for (let i = 0; i < 600; i++)
      await ledger.append({ kind: 'drift', status: 'detected', changes: 1, at: at(now - 30 * HOUR + i) });
    const inWindow = [
      { kind: 'drift', status: 'detected', changes: 2, at: at(now - 2 * HOUR) }, // 08:30
      { kind: 'drift', status: 'corrected', changes: 2, at: at(now - 2 * HOUR + 1000) },
      { kind: 'apply', status: 'committed', changes: 5, at: at(now - HOUR) }, // not drift
      { kind: 'drift', status: 'detected', changes: 1, at: at(now - HOUR) }, // 09:30
      { kind: 'drift', status: 'held', changes: 1, at: at(now - HOUR + 1000) },
      { kind: 'drift', status: 'detected', changes: 3, at: at(now - 60_000) }, // 10:29
      { kind: 'drift', status: 'correction-failed', changes: 3, at: at(now - 30_000) },
    ];
    for (const e of inWindow) await ledger.append(e);
  });
  afterAll(async () => {
    await ledger?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts drift entries per hour, every hour of the window present', async () => {
    const h = await driftHistory(ledger, 3, now);
    expect(h.from).toBe('2026-12-07T08:00:00.000Z');
    expect(h.hours.map((b) => [new Date(b.at * 1000).toISOString().slice(11, 16), b])).toEqual([
      ['08:00', expect.objectContaining({ detected: 2, corrected: 2, held: 0, failed: 0 })],
      ['09:00', expect.objectContaining({ detected: 1, corrected: 0, held: 1, failed: 0 })],
      ['10:00', expect.objectContaining({ detected: 3, corrected: 0, held: 0, failed: 3 })],
    ]);
    expect(h.totals).toEqual({ detected: 6, corrected: 2, held: 1, failed: 3 });
  });

  it('reads back from the end only until it passes the start of the window', async () => {
    const h = await driftHistory(ledger, 3, now);
    // The window's 7 entries and the rest of their chunk of 256; not all 607.
    expect(h.entriesRead).toBe(256);
    expect(ledger.size).toBe(607);
    // A window reaching back over everything reads everything.
    expect((await driftHistory(ledger, 48, now)).entriesRead).toBe(607);
    expect((await driftHistory(ledger, 48, now)).totals.detected).toBe(606);
  });
});
