import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpdbusError } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import { parseChangeEvents, readChangeEvents, wallClock } from './events.js';

const line = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    at: '2026-03-03T09:30:00+01:00',
    host: 'web-01',
    actor: 'alice',
    plugin: 'sysctl',
    resource: 'net.ipv4.ip_forward',
    op: 'update',
    before: '0',
    after: '1',
    ...over,
  });

describe('change events', () => {
  it('parses JSONL, skipping blank lines', () => {
    const events = parseChangeEvents(`${line()}\n\n${line({ op: 'create', before: null })}\n`);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ op: 'create', before: null, after: '1' });
  });

  it('names the file, the line and the field of a bad line', () => {
    const text = `${line()}\n${line({ op: 'rename' })}\n`;
    expect(() => parseChangeEvents(text, 'changes.jsonl')).toThrow(
      /changes\.jsonl:2: not a change event: field "op"/,
    );
    try {
      parseChangeEvents(`${line()}\n{not json\n`, 'x.jsonl');
    } catch (err) {
      expect(err).toBeInstanceOf(OpdbusError);
      expect((err as OpdbusError).code).toBe('OPDBUS_ERR_ML_INPUT');
      expect((err as OpdbusError).data).toEqual({ file: 'x.jsonl', line: 2 });
    }
  });

  it('refuses a time that is not ISO-8601', () => {
    expect(() => parseChangeEvents(line({ at: 'yesterday' }))).toThrow(/field "at": not an ISO-8601 time/);
  });

  it('reads a file line by line and reports the line of an error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'opdbus-ml-events-'));
    try {
      const file = join(dir, 'h.jsonl');
      await writeFile(file, `${line()}\n${line()}\n42\n`);
      await expect(readChangeEvents(file)).rejects.toThrow(`${file}:3: not a change event`);
      await writeFile(file, `${line()}\n${line()}\n`);
      expect(await readChangeEvents(file)).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads the hour and weekday in the offset written, and in UTC', () => {
    const c = wallClock('2026-03-08T23:30:00-05:00'); // a Sunday evening in New York = Monday 04:30 UTC
    expect(c).toMatchObject({ hour: 23, weekday: 6, utcHour: 4, utcWeekday: 0 });
    expect(c.hourOfDay).toBe(23.5);
    expect(wallClock('2026-03-09T04:30:00Z')).toMatchObject({ hour: 4, weekday: 0 });
  });
});
