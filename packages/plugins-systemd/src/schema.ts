import { lazySchema } from '@opdbus/core';
import { z } from 'zod';
import { unitPropertiesSchema } from './properties.js';
import { timerSchema, type TimerSpec } from './timers.js';

/** Unit types a unit name can end in. */
export const unitTypes = [
  'service',
  'socket',
  'target',
  'timer',
  'path',
  'mount',
  'automount',
  'swap',
  'slice',
  'scope',
  'device',
] as const;

/** systemd's UNIT_NAME_MAX: a unit name has at most 255 bytes. */
export const UNIT_NAME_MAX = 255;

/**
 * Why `name` is not a unit name systemd accepts (its unit_name_is_valid), or undefined: at most
 * 255 bytes; a non-empty prefix of letters, digits and `:-_.\`; at most one `@`, for a template
 * (`foo@.service`) or an instance (`foo@bar.service`, the instance may also hold `@`); a known
 * type suffix. Such a name is one plain file name: it can never name a path.
 */
export function unitNameProblem(name: string): string | undefined {
  if (Buffer.byteLength(name, 'utf8') > UNIT_NAME_MAX)
    return `a unit name has at most ${UNIT_NAME_MAX} bytes`;
  const dot = name.lastIndexOf('.');
  const type = dot < 0 ? '' : name.slice(dot + 1);
  if (!(unitTypes as readonly string[]).includes(type))
    return `a unit name ends in a unit type (.${unitTypes.join(', .')})`;
  const stem = name.slice(0, dot);
  const at = stem.indexOf('@');
  const prefix = at < 0 ? stem : stem.slice(0, at);
  const instance = at < 0 ? undefined : stem.slice(at + 1);
  if (!/^[A-Za-z0-9:_.\\-]+$/.test(prefix))
    return 'a unit name starts with letters, digits, ":", "-", "_", "." or "\\"';
  if (instance !== undefined && !/^[A-Za-z0-9:_.\\@-]*$/.test(instance))
    return 'the instance of a unit name has letters, digits, ":", "-", "_", ".", "\\" or "@"';
  return undefined;
}

const unitName = lazySchema(() =>
  z.string().superRefine((name, ctx) => {
    const problem = unitNameProblem(name);
    if (problem !== undefined)
      ctx.addIssue({ code: 'custom', message: `a unit name such as nginx.service (${problem})` });
  }),
);
const dropInName = lazySchema(() =>
  z
    .string()
    .max(UNIT_NAME_MAX)
    .regex(/^[A-Za-z0-9_.@-]+\.conf$/, 'a drop-in file name such as 10-limits.conf'),
);
const timerName = lazySchema(() =>
  z.string().superRefine((name, ctx) => {
    const problem = unitNameProblem(`${name}.timer`);
    if (problem !== undefined)
      ctx.addIssue({ code: 'custom', message: `a timer name without .timer, such as backup (${problem})` });
  }),
);

/** One unit, as declared. */
export const unitSchema = lazySchema(() =>
  z
    .strictObject({
      state: z
        .enum(['present', 'absent'])
        .optional()
        .describe(
          '"absent" stops, disables and removes the unit file and drop-ins op-dbus manages (under /etc/systemd/system).',
        ),
      content: z
        .string()
        .optional()
        .describe(
          'The unit file, written to /etc/systemd/system/NAME under the target root; daemon-reload follows.',
        ),
      dropIns: z
        .record(dropInName, z.string().nullable())
        .optional()
        .describe('Drop-ins in /etc/systemd/system/NAME.d/: file name → content, or null to remove it.'),
      enabled: z.boolean().optional().describe('Enabled (its [Install] symlinks exist).'),
      masked: z.boolean().optional().describe('Masked (linked to /dev/null): cannot be started at all.'),
      active: z
        .boolean()
        .optional()
        .describe('Running (ActiveState active); start and stop wait for the job to finish.'),
      properties: unitPropertiesSchema.optional(),
    })
    .describe('A systemd unit.'),
);

/** One unit, as declared (and as observed). */
export type UnitSpec = z.infer<typeof unitSchema>;
/** One unit as `query` reports it. */
export type ObservedUnit = UnitSpec;
/** One timer as `query` reports it. */
export type ObservedTimer = TimerSpec;

/** The `after` of a unit change: the unit as declared, tagged with its kind and name. */
export type UnitTarget = { kind: 'unit'; name: string; spec: UnitSpec };

/** The `after` of a timer change: the timer as declared, tagged with its kind and name. */
export type TimerTarget = { kind: 'timer'; name: string; spec: TimerSpec };

/**
 * The values of the systemd plugin's changes (`unit/NAME`, `timer/NAME`): `before` is the unit or
 * timer as observed ({@link ObservedUnit}, {@link ObservedTimer}), `after` what it is to become
 * ({@link UnitTarget}, {@link TimerTarget}; null for a removal).
 */
export type SystemdValue = ObservedUnit | ObservedTimer | UnitTarget | TimerTarget;

/** The `systemd` section. */
export interface SystemdSection {
  units?: Record<string, UnitSpec> | undefined;
  timers?: Record<string, TimerSpec> | undefined;
}

/** The zod schema of the `systemd` section. */
export const systemdSchema: z.ZodType<SystemdSection> = lazySchema(() =>
  z
    .strictObject({
      units: z
        .record(unitName, unitSchema)
        .optional()
        .describe('Units by name (nginx.service, backup.timer …).'),
      timers: z
        .record(timerName, timerSchema)
        .optional()
        .describe(
          'Timers by name: op-dbus writes NAME.timer and NAME.service, enables and starts the timer.',
        ),
    })
    .superRefine((section, ctx) => {
      for (const [name, unit] of Object.entries(section.units ?? {})) {
        if (
          unit.masked === true &&
          (unit.content !== undefined || unit.active === true || unit.enabled === true)
        ) {
          ctx.addIssue({
            code: 'custom',
            path: ['units', name, 'masked'],
            message:
              'a masked unit cannot have content, be enabled or be active (masking replaces its file with /dev/null)',
          });
        }
        if (unit.state === 'absent' && Object.keys(unit).some((k) => k !== 'state')) {
          ctx.addIssue({
            code: 'custom',
            path: ['units', name, 'state'],
            message: 'an absent unit takes no other fields',
          });
        }
      }
      for (const [name, timer] of Object.entries(section.timers ?? {})) {
        if (timer.state !== 'absent' && (timer.onCalendar === undefined || timer.command === undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: ['timers', name],
            message: 'a timer needs onCalendar and command',
          });
        }
        for (const unit of [`${name}.timer`, `${name}.service`]) {
          if (section.units?.[unit]?.content !== undefined || section.units?.[unit]?.dropIns !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: ['units', unit],
              message: `${unit} belongs to timer "${name}" (op-dbus writes its file); declare it in one place only`,
            });
          }
        }
      }
    })
    .describe('systemd units and timers, managed over D-Bus.'),
);
