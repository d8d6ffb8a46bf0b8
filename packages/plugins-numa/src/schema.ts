import { lazySchema } from '@opdbus/core';
import { numaPlacementsSchema, placementRequestSchema } from '@opdbus/numa';
import { z } from 'zod';

/** The unit a systemd-nspawn machine runs as (as @opdbus/plugins-containers names it). */
export const machineUnit = (name: string): string => `systemd-nspawn@${name}.service`;

/** A machine name as @opdbus/plugins-containers takes it. */
const machineName = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;

/** The zod schema of `numa.machines`: machine name → request. */
export const numaMachinesSchema = lazySchema(() =>
  z
    .record(z.string(), placementRequestSchema)
    .superRefine((machines, ctx) => {
      for (const name of Object.keys(machines)) {
        if (!machineName.test(name)) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'not a machine name: letters, digits and "-", at most 63 characters',
          });
        }
      }
    })
    .describe(
      "CPUs, memory and locality for systemd-nspawn machines (the `containers` section), by machine name: resolved like `placements`, into the CPUAffinity=, NUMAPolicy= and NUMAMask= of the machine's unit, systemd-nspawn@NAME.service. Every process of the machine inherits them.",
    ),
);

/** The `numa` section: placements of units and of machines. */
export interface NumaPluginSection {
  placements?: z.infer<typeof numaPlacementsSchema> | undefined;
  machines?: z.infer<typeof numaMachinesSchema> | undefined;
}

/** The zod schema of the `numa` section. */
export const numaPluginSchema: z.ZodType<NumaPluginSection> = lazySchema(() =>
  z
    .strictObject({
      placements: numaPlacementsSchema.optional(),
      machines: numaMachinesSchema.optional(),
    })
    .superRefine((section, ctx) => {
      for (const name of Object.keys(section.machines ?? {})) {
        const unit = machineUnit(name);
        if (section.placements?.[unit] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['machines', name],
            message: `machine ${name} runs as ${unit}, which \`placements\` also places; keep one of the two`,
          });
      }
    })
    .describe('NUMA-aware placement of systemd units and of systemd-nspawn machines.'),
);
