import { lazySchema } from '@opdbus/core';
import { z } from 'zod';

const absolute = lazySchema(() => z.string().startsWith('/', 'an absolute path'));
const bindSpec = lazySchema(() =>
  z.string().regex(/^\/[^:]*(?::\/[^:]*)?$/, 'SOURCE or SOURCE:DESTINATION, absolute paths'),
);

/** Where a machine's image comes from when it does not exist yet. */
export const sourceSchema = lazySchema(() =>
  z.union([
    z
      .strictObject({
        directory: absolute.describe(
          "A directory on the target (under its root) copied to the machine's image.",
        ),
      })
      .describe('Copy a directory tree.'),
    z
      .strictObject({
        tarball: absolute.describe(
          "A tar archive on the target (under its root), plain or compressed with gzip, brotli or zstd, extracted as the machine's image.",
        ),
      })
      .describe('Extract a tarball.'),
    z
      .strictObject({
        image: z.string().min(1).describe('An image systemd-machined has (`machinectl list-images`).'),
      })
      .describe('Clone an existing image (a btrfs snapshot where the image store is on btrfs).'),
  ]),
);

/** Resource limits, set as properties of `systemd-nspawn@NAME.service`. */
export const limitsSchema = lazySchema(() =>
  z.strictObject({
    cpuQuota: z
      .number()
      .positive()
      .max(100_000)
      .optional()
      .describe('CPU time in percent of one CPU (CPUQuota=).'),
    memoryMax: z
      .union([
        z.number().int().positive(),
        z.string().regex(/^\d+[KMGT]?$/, 'bytes, or a number with K, M, G or T'),
      ])
      .optional()
      .describe('Memory limit in bytes, or with K/M/G/T (MemoryMax=).'),
    tasksMax: z.number().int().positive().optional().describe('Processes and threads (TasksMax=).'),
  }),
);

const ifname = lazySchema(() =>
  z.string().regex(/^[^\s/:]{1,15}$/, 'an interface name (at most 15 characters, no "/", ":" or spaces)'),
);

/** A machine's network. */
export const networkSchema = lazySchema(() =>
  z.union([
    z
      .strictObject({ bridge: ifname })
      .describe('A veth pair whose host end (vb-NAME) is a port of this Linux bridge.'),
    z
      .strictObject({
        ovsBridge: ifname
          .nullable()
          .describe(
            'The Open vSwitch bridge (declare it in the ovs section of the same document); null: a veth whose host end is on no bridge.',
          ),
        hostInterface: ifname
          .optional()
          .describe(
            "The host end's name (default ve-NAME; needed when the machine name is longer than 12 characters).",
          ),
      })
      .describe(
        "A veth pair (host0 in the machine) whose host end is a port of an Open vSwitch bridge, through OVSDB at the target's --ovsdb address; the host end is brought up whenever the machine starts.",
      ),
    z.strictObject({ private: z.literal(true) }).describe('Its own network namespace with loopback only.'),
    z.strictObject({ host: z.literal(true) }).describe("The host's network."),
  ]),
);

/** One systemd-nspawn machine. */
export const machineSchema = lazySchema(() =>
  z
    .strictObject({
      name: z
        .string()
        .regex(
          /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/,
          'a machine name: letters, digits and "-", at most 63 characters',
        ),
      state: z
        .enum(['running', 'stopped', 'absent'])
        .optional()
        .describe('`absent` removes the machine and its image. Default running.'),
      source: sourceSchema.optional().describe('Where the image comes from, when the machine has none yet.'),
      enabled: z.boolean().optional().describe('Started at boot (machines.target).'),
      boot: z.boolean().optional().describe("Run the image's init (default true); false runs `command`."),
      command: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .describe('What the machine runs when `boot` is false.'),
      bind: z
        .strictObject({
          readOnly: z.array(bindSpec).optional().describe('Bind mounts, read-only (BindReadOnly=).'),
          readWrite: z.array(bindSpec).optional().describe('Bind mounts (Bind=).'),
        })
        .optional(),
      network: networkSchema.optional().describe('Default: private (loopback only).'),
      limits: limitsSchema.optional(),
    })
    .describe(
      'A systemd-nspawn machine, run as systemd-nspawn@NAME.service and registered with systemd-machined.',
    ),
);

/** A container of the Podman backend. */
export const podmanContainerSchema = lazySchema(() =>
  z
    .strictObject({
      name: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'a container name: letters, digits, "_", "." and "-"'),
      state: z
        .enum(['running', 'stopped', 'absent'])
        .optional()
        .describe('`absent` removes the container (not its image). Default running.'),
      image: z
        .string()
        .min(1)
        .optional()
        .describe(
          'An image Podman has, as `podman images` names it (e.g. localhost/app:1); needed to create the container.',
        ),
      command: z.array(z.string().min(1)).min(1).optional().describe("What it runs (default: the image's)."),
      network: z
        .enum(['none', 'host', 'bridge'])
        .optional()
        .describe("Its network namespace: none (loopback only), the host's, or Podman's default bridge."),
      limits: limitsSchema.optional(),
    })
    .describe(
      'A container of Podman (REST API on its socket); changing its image, command, network or limits recreates it.',
    ),
);

/** A Podman container as declared or observed. */
export type PodmanContainer = z.infer<typeof podmanContainerSchema>;

/** A machine as declared or observed. */
export type MachineEntry = z.infer<typeof machineSchema>;
/** A machine's network. */
export type MachineNetwork = z.infer<typeof networkSchema>;
/** Resource limits. */
export type MachineLimits = z.infer<typeof limitsSchema>;

const sectionObject = lazySchema(() =>
  z.strictObject({
    machines: z.array(machineSchema).optional().describe('Machines, by name. Only those named are managed.'),
    podman: z
      .array(podmanContainerSchema)
      .optional()
      .describe(
        "Containers of the Podman backend (the target's Podman API socket), by name. Only those named are managed.",
      ),
  }),
);

/** The `containers` section. */
export type ContainersSection = z.infer<typeof sectionObject>;

/** The zod schema of the `containers` section. */
export const containersSchema: z.ZodType<ContainersSection> = lazySchema(() =>
  sectionObject
    .superRefine((section, ctx) => {
      const pods = new Map<string, number>();
      for (const [i, c] of (section.podman ?? []).entries()) {
        const first = pods.get(c.name);
        if (first !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['podman', i, 'name'],
            message: `container "${c.name}" is already declared at podman[${first}]`,
          });
        else pods.set(c.name, i);
      }
      const seen = new Map<string, number>();
      for (const [i, m] of (section.machines ?? []).entries()) {
        const first = seen.get(m.name);
        if (first !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['machines', i, 'name'],
            message: `machine "${m.name}" is already declared at machines[${first}]`,
          });
        else seen.set(m.name, i);
        if (m.command !== undefined && m.boot !== false)
          ctx.addIssue({
            code: 'custom',
            path: ['machines', i, 'command'],
            message: 'a command runs instead of init: set `boot: false`',
          });
        if (
          m.network !== undefined &&
          'ovsBridge' in m.network &&
          m.network.hostInterface === undefined &&
          m.name.length > 12
        )
          ctx.addIssue({
            code: 'custom',
            path: ['machines', i, 'network', 'hostInterface'],
            message: `ve-${m.name} is longer than an interface name may be (15 characters): name the host end`,
          });
        if (m.boot === false && m.command === undefined && m.state !== 'absent')
          ctx.addIssue({
            code: 'custom',
            path: ['machines', i, 'boot'],
            message: 'without init the machine needs a `command`',
          });
      }
    })
    .describe(
      'systemd-nspawn machines through systemd-machined and systemd, over D-Bus; and Podman containers through its REST API.',
    ),
);
