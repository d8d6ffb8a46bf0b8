import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { OpdbusError } from '@opdbus/core';
import { z } from 'zod';

/** A JSON value (what `before` and `after` hold). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The operation a change performed on its resource. */
export type ChangeOp = 'create' | 'update' | 'delete';

/**
 * One change to one resource of one host: the input of the anomaly scorer. It is the line format
 * of `opdbus ledger export-changes` (one JSON object per line).
 */
export interface ChangeEvent {
  /** When the change was applied, ISO-8601; the hour and weekday are read in the offset written. */
  at: string;
  /** The host it was applied to. */
  host: string;
  /** Who asked for it (a user, an MCP client, the daemon, an automation account). */
  actor: string;
  /** The plugin that owns the resource (`systemd`, `sysctl`, `network`, …). */
  plugin: string;
  /** The resource path within the plugin (`units/nginx.service`, `net.ipv4.ip_forward`, …). */
  resource: string;
  op: ChangeOp;
  /** The resource before the change (null for a create). */
  before: Json;
  /** The resource after the change (null for a delete). */
  after: Json;
}

const jsonSchema: z.ZodType<Json> = z.lazy(() =>
  z.union([
    z.null(),
    z.boolean(),
    z.number(),
    z.string(),
    z.array(jsonSchema),
    z.record(z.string(), jsonSchema),
  ]),
);

/** The zod schema of a {@link ChangeEvent} line (unknown fields are allowed and ignored). */
export const changeEventSchema = z.object({
  at: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 time'),
  host: z.string().min(1),
  actor: z.string().min(1),
  plugin: z.string().min(1),
  resource: z.string(),
  op: z.enum(['create', 'update', 'delete']),
  before: jsonSchema.nullable().default(null),
  after: jsonSchema.nullable().default(null),
});

/** Where an input line came from, for error messages. */
export interface LineSource {
  /** File name (or `<stdin>`, `<input>`). */
  source: string;
  /** 1-based line number. */
  line: number;
}

/**
 * Check one parsed JSON value as a change event. Throws `OPDBUS_ERR_ML_INPUT` naming the file,
 * the line and the field that is wrong.
 */
export function toChangeEvent(value: unknown, where: LineSource): ChangeEvent {
  const parsed = changeEventSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? '' : ` field "${issue.path.join('.')}":`;
    throw new OpdbusError(
      'OPDBUS_ERR_ML_INPUT',
      `${where.source}:${where.line}: not a change event:${field} ${issue?.message ?? 'invalid'}. Each line must be {"at","host","actor","plugin","resource","op","before","after"}.`,
      { data: { file: where.source, line: where.line } },
    );
  }
  const { at, host, actor, plugin, resource, op, before, after } = parsed.data;
  return { at, host, actor, plugin, resource, op, before, after };
}

/** Parse one JSONL line (blank lines are skipped by the readers, not here). */
export function parseChangeLine(text: string, where: LineSource): ChangeEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_ML_INPUT',
      `${where.source}:${where.line}: not JSON (${(err as Error).message}); each line must be one change event.`,
      { data: { file: where.source, line: where.line }, cause: err },
    );
  }
  return toChangeEvent(value, where);
}

/** Parse JSONL text into change events; blank lines are skipped (their numbers still count). */
export function parseChangeEvents(text: string, source = '<input>'): ChangeEvent[] {
  const events: ChangeEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    events.push(parseChangeLine(line, { source, line: i + 1 }));
  }
  return events;
}

/**
 * Read a JSONL file of change events (`-` for stdin), streaming, line by line. Errors name the
 * file and line.
 */
export async function readChangeEvents(file: string): Promise<ChangeEvent[]> {
  const source = file === '-' ? '<stdin>' : file;
  const events: ChangeEvent[] = [];
  const input = file === '-' ? process.stdin : createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of lines) {
      n++;
      const line = raw.trim();
      if (line === '') continue;
      events.push(parseChangeLine(line, { source, line: n }));
    }
  } catch (err) {
    if (err instanceof OpdbusError) throw err;
    throw new OpdbusError('OPDBUS_ERR_ML_READ', `Cannot read ${source}: ${(err as Error).message}.`, {
      data: { file: source },
      cause: err,
    });
  }
  return events;
}

/** The wall-clock time of an event, in the offset its timestamp was written with. */
export interface WallClock {
  /** Milliseconds since the epoch (absolute). */
  time: number;
  /** Hour of day 0–23, in the written offset. */
  hour: number;
  /** Fractional hour (hour + minutes / 60). */
  hourOfDay: number;
  /** Day of the week, 0 = Monday … 6 = Sunday, in the written offset. */
  weekday: number;
  /** Hour of day in UTC (people keep their hours wherever the host is). */
  utcHour: number;
  /** Day of the week in UTC, 0 = Monday. */
  utcWeekday: number;
}

const offsetPattern = /([+-])(\d{2}):?(\d{2})$/;

/** Read the time, local hour and weekday of an ISO-8601 timestamp. */
export function wallClock(at: string): WallClock {
  const time = Date.parse(at);
  let offsetMinutes = 0;
  const m = offsetPattern.exec(at);
  if (m !== null && /T/.test(at)) {
    offsetMinutes = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  }
  const local = new Date(time + offsetMinutes * 60_000);
  const hour = local.getUTCHours();
  const utc = new Date(time);
  return {
    time,
    hour,
    hourOfDay: hour + local.getUTCMinutes() / 60,
    weekday: (local.getUTCDay() + 6) % 7,
    utcHour: utc.getUTCHours(),
    utcWeekday: (utc.getUTCDay() + 6) % 7,
  };
}
