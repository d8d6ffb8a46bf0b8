import { z } from 'zod';
import { unitPropertiesSchema } from './properties.js';
import { timerSchema, type TimerSpec } from './timers.js';

const unitName = z
  .string()
  .regex(
    /^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|path|mount|automount|swap|slice|scope|device)$/,
    'a unit name such as nginx.service',
  );
const dropInName = z.string().regex(/^[A-Za-z0-9_.@-]+\.conf$/, 'a drop-in file name such as 10-limits.conf');

/** One unit, as declared. */
export const unitSchema = z
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
  .describe('A systemd unit.');

/** One unit, as declared (and as observed). */
export type UnitSpec = z.infer<typeof unitSchema>;
/** One unit as `query` reports it. */
export type ObservedUnit = UnitSpec;
/** One timer as `query` reports it. */
export type ObservedTimer = TimerSpec;

/** The `systemd` section. */
export interface SystemdSection {
  units?: Record<string, UnitSpec> | undefined;
  timers?: Record<string, TimerSpec> | undefined;
}

/** The zod schema of the `systemd` section. */
export const systemdSchema: z.ZodType<SystemdSection> = z
  .strictObject({
    units: z
      .record(unitName, unitSchema)
      .optional()
      .describe('Units by name (nginx.service, backup.timer …).'),
    timers: z
      .record(z.string().regex(/^[A-Za-z0-9:_.@-]+$/, 'a timer name (without .timer)'), timerSchema)
      .optional()
      .describe('Timers by name: op-dbus writes NAME.timer and NAME.service, enables and starts the timer.'),
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
  .describe('systemd units and timers, managed over D-Bus.');
