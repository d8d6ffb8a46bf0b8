import { lazySchema } from '@opdbus/core';
import { z } from 'zod';

/** The marker line of files op-dbus writes for a timer. */
export const MANAGED_MARKER = '# Managed by op-dbus';

/** A timer: the declarative answer to a crontab line. op-dbus writes NAME.timer and NAME.service. */
export const timerSchema = lazySchema(() =>
  z
    .strictObject({
      state: z
        .enum(['present', 'absent'])
        .optional()
        .describe('"absent" stops, disables and removes the timer and its service. Default present.'),
      onCalendar: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
        .optional()
        .describe(
          'OnCalendar= expression(s), e.g. "daily" or "Mon..Fri 02:30" (systemd.time(7)). Required unless absent.',
        ),
      command: z
        .string()
        .min(1)
        .optional()
        .describe('The command the service runs (ExecStart=). Required unless absent.'),
      description: z.string().optional().describe('Description= of both units.'),
      user: z.string().optional().describe('User= the command runs as (default root).'),
      persistent: z
        .boolean()
        .optional()
        .describe('Persistent=: run at boot when a run was missed while off. Default false.'),
      randomizedDelaySec: z.number().int().min(0).optional().describe('RandomizedDelaySec=, in seconds.'),
      accuracySec: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe('AccuracySec=, in seconds (systemd default 60).'),
      enabled: z.boolean().optional().describe('Enable the timer (start at boot). Default true.'),
      active: z.boolean().optional().describe('Start the timer now. Default true.'),
    })
    .describe('A timer: OnCalendar schedule and the command it runs.'),
);

/** A timer as declared. */
export type TimerSpec = z.infer<typeof timerSchema>;

/** A timer with defaults filled in, for comparison. */
export interface NormalTimer {
  onCalendar: string[];
  command: string;
  description: string;
  user: string | undefined;
  persistent: boolean;
  randomizedDelaySec: number | undefined;
  accuracySec: number | undefined;
}

/** Fill in defaults. */
export function normalTimer(name: string, spec: TimerSpec): NormalTimer {
  return {
    onCalendar:
      spec.onCalendar === undefined
        ? []
        : Array.isArray(spec.onCalendar)
          ? spec.onCalendar
          : [spec.onCalendar],
    command: spec.command ?? '',
    description: spec.description ?? `op-dbus timer ${name}`,
    user: spec.user,
    persistent: spec.persistent ?? false,
    randomizedDelaySec: spec.randomizedDelaySec,
    accuracySec: spec.accuracySec,
  };
}

/** The two unit files of a timer. */
export function renderTimer(name: string, timer: NormalTimer): { timer: string; service: string } {
  const header = `${MANAGED_MARKER} (timer ${name}); edits are overwritten.`;
  const timerLines = [
    header,
    '[Unit]',
    `Description=${timer.description}`,
    '',
    '[Timer]',
    ...timer.onCalendar.map((c) => `OnCalendar=${c}`),
    ...(timer.persistent ? ['Persistent=true'] : []),
    ...(timer.randomizedDelaySec === undefined ? [] : [`RandomizedDelaySec=${timer.randomizedDelaySec}`]),
    ...(timer.accuracySec === undefined ? [] : [`AccuracySec=${timer.accuracySec}`]),
    `Unit=${name}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ];
  const serviceLines = [
    header,
    '[Unit]',
    `Description=${timer.description}`,
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${timer.command}`,
    ...(timer.user === undefined ? [] : [`User=${timer.user}`]),
    '',
  ];
  return { timer: timerLines.join('\n'), service: serviceLines.join('\n') };
}

/** key → values of a unit file's section (later assignments appended). */
export function parseUnitFile(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    ((out[section] ??= {})[key] ??= []).push(line.slice(eq + 1).trim());
  }
  return out;
}

/** Read a timer back from its two unit files (best effort: what a person edited shows as drift). */
export function parseTimer(timerText: string, serviceText: string | null): TimerSpec {
  const t = parseUnitFile(timerText);
  const s = serviceText === null ? {} : parseUnitFile(serviceText);
  const last = (values: string[] | undefined): string | undefined => values?.[values.length - 1];
  const spec: TimerSpec = {};
  const calendar = t.Timer?.OnCalendar?.filter((c) => c !== '') ?? [];
  if (calendar.length > 0) spec.onCalendar = calendar.length === 1 ? calendar[0]! : calendar;
  const command = last(s.Service?.ExecStart);
  if (command !== undefined) spec.command = command;
  const description = last(t.Unit?.Description);
  if (description !== undefined) spec.description = description;
  const user = last(s.Service?.User);
  if (user !== undefined) spec.user = user;
  const persistent = last(t.Timer?.Persistent);
  if (persistent !== undefined)
    spec.persistent = ['true', 'yes', '1', 'on'].includes(persistent.toLowerCase());
  const delay = last(t.Timer?.RandomizedDelaySec);
  if (delay !== undefined && /^\d+$/.test(delay)) spec.randomizedDelaySec = Number(delay);
  const accuracy = last(t.Timer?.AccuracySec);
  if (accuracy !== undefined && /^\d+$/.test(accuracy)) spec.accuracySec = Number(accuracy);
  return spec;
}
