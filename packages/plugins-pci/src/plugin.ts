import {
  OpdbusError,
  definePlugin,
  formatPath,
  lazySchema,
  packageVersion,
  quoteValue,
  type Change,
  type ChangeSpec,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { z } from 'zod';
import { PciSysfs, pciAddressPattern, type PciDeviceState } from './sysfsPci.js';

/** One PCI function in the `pci` section. */
export interface PciDeviceSection {
  /** The bound driver; `null`: none. Writable (driver_override + unbind + drivers_probe). */
  driver?: string | null | undefined;
  /** SR-IOV VFs enabled (sriov_numvfs). Writable on physical functions. */
  sriovNumVfs?: number | undefined;
  /** Read-only: vendor id, e.g. `0x8086`. */
  vendor?: string | undefined;
  /** Read-only: device id. */
  device?: string | undefined;
  /** Read-only: subsystem vendor id. */
  subsystemVendor?: string | null | undefined;
  /** Read-only: subsystem device id. */
  subsystemDevice?: string | null | undefined;
  /** Read-only: class code, e.g. `0x020000`. */
  class?: string | undefined;
  /** Read-only: NUMA node, null when the firmware does not say. */
  numaNode?: number | null | undefined;
  /** Read-only: IOMMU group, null without an IOMMU. */
  iommuGroup?: number | null | undefined;
  /** Read-only: VFs the device supports, null when it is not an SR-IOV physical function. */
  sriovTotalVfs?: number | null | undefined;
}

/** The `pci` section: PCI address (domain:bus:device.function) → device. */
export type PciSection = Record<string, PciDeviceSection>;

/**
 * The values of the pci plugin's changes: a driver name (`ADDRESS/driver`; null: unbound) or a VF
 * count (`ADDRESS/sriovNumVfs`).
 */
export type PciValue = string | number;

/** A change of the pci plugin. */
export type PciChange = Change<PciValue>;

/** What `restore` needs per device: its driver, driver_override and VF count before the plan. */
export type PciCheckpoint = {
  devices: Record<
    string,
    { driver: string | null; driverOverride: string | null; sriovNumVfs: number | null }
  >;
};

/** The pci plugin, typed: its section, checkpoint and change values. */
export type PciPlugin = Plugin<PciSection, PciCheckpoint, PciValue>;

/** The attributes a document may state but not change (checked against the device at plan time). */
export const pciReadOnlyFields = [
  'vendor',
  'device',
  'subsystemVendor',
  'subsystemDevice',
  'class',
  'numaNode',
  'iommuGroup',
  'sriovTotalVfs',
] as const;

const hexId = (digits: number, what: string) =>
  z
    .string()
    .regex(
      new RegExp(`^0x[0-9a-f]{${digits}}$`),
      `${what} as sysfs prints it: 0x and ${digits} lowercase hex digits`,
    );

const addressSchema = lazySchema(() =>
  z
    .string()
    .regex(
      pciAddressPattern,
      'a PCI address in full, lowercase: domain:bus:device.function such as 0000:3b:00.0 (as `lspci -D` prints it)',
    ),
);

const deviceSchema = lazySchema(() =>
  z
    .strictObject({
      driver: z
        .string()
        .regex(/^[A-Za-z0-9_.+-]{1,64}$/, 'a driver name as listed under /sys/bus/pci/drivers, e.g. vfio-pci')
        .nullable()
        .optional()
        .describe(
          'The driver bound to the device (a name under /sys/bus/pci/drivers), or null for none. Set with driver_override, unbind and drivers_probe; driver_override keeps the choice across re-probes.',
        ),
      sriovNumVfs: z
        .int()
        .min(0)
        .max(65535)
        .optional()
        .describe(
          'SR-IOV virtual functions enabled (sriov_numvfs), at most sriovTotalVfs. Only on physical functions.',
        ),
      vendor: hexId(4, 'a vendor id').optional().describe('Read-only: the vendor id.'),
      device: hexId(4, 'a device id').optional().describe('Read-only: the device id.'),
      subsystemVendor: hexId(4, 'a subsystem vendor id').nullable().optional().describe('Read-only.'),
      subsystemDevice: hexId(4, 'a subsystem device id').nullable().optional().describe('Read-only.'),
      class: hexId(6, 'a class code')
        .optional()
        .describe('Read-only: the class code, e.g. 0x020000 (Ethernet).'),
      numaNode: z.int().min(0).nullable().optional().describe('Read-only: the NUMA node, null when unknown.'),
      iommuGroup: z
        .int()
        .min(0)
        .nullable()
        .optional()
        .describe('Read-only: the IOMMU group, null without one.'),
      sriovTotalVfs: z
        .int()
        .min(0)
        .nullable()
        .optional()
        .describe('Read-only: the VFs the device supports, null when it is not an SR-IOV physical function.'),
    })
    .describe('One PCI function.'),
);

/** The zod schema of the `pci` section. */
export const pciSchema: z.ZodType<PciSection> = lazySchema(() =>
  z
    .record(addressSchema, deviceSchema)
    .describe(
      'PCI functions by address (0000:3b:00.0), read from sysfs. Writable: driver (binding) and sriovNumVfs; the ids, class, NUMA node, IOMMU group and total VFs are read-only (a query shows them with --all; a document may state them, and a mismatch is a plan-time error).',
    ),
);

/** Options of {@link createPciPlugin}. */
export interface PciPluginOptions {
  /** Filesystem root holding `sys/` (default: the target's root, else `/`). */
  fsroot?: string;
  /** Poll interval of `watch` in milliseconds (default 2000): sysfs has no change notification for bindings. */
  watchIntervalMs?: number;
}

function view(state: PciDeviceState, all: boolean): PciDeviceSection {
  const out: PciDeviceSection = { driver: state.driver };
  if (state.sriovTotalVfs !== null && state.sriovNumVfs !== null) out.sriovNumVfs = state.sriovNumVfs;
  if (!all) return out;
  return {
    ...out,
    vendor: state.vendor,
    device: state.device,
    subsystemVendor: state.subsystemVendor,
    subsystemDevice: state.subsystemDevice,
    class: state.class,
    numaNode: state.numaNode,
    iommuGroup: state.iommuGroup,
    sriovTotalVfs: state.sriovTotalVfs,
  };
}

const pathOf = (address: string, field?: string): string =>
  formatPath(field === undefined ? ['plugins', 'pci', address] : ['plugins', 'pci', address, field]);

/** Check what a document asks of one device against the device and the bus (plan time). */
function checkDesired(bus: PciSysfs, address: string, want: PciDeviceSection, state: PciDeviceState): void {
  if (typeof want.driver === 'string' && !bus.hasDriver(want.driver)) {
    const known = bus.drivers();
    throw new OpdbusError(
      'OPDBUS_ERR_PCI_UNKNOWN_DRIVER',
      `${pathOf(address, 'driver')}: no PCI driver "${want.driver}" is registered (${bus.root === '/' ? '' : `${bus.root}`}/sys/bus/pci/drivers has ${known.length === 0 ? 'none' : known.slice(0, 12).join(', ')}${known.length > 12 ? ', …' : ''}); load its module first (modprobe) or fix the name.`,
      { data: { path: pathOf(address, 'driver'), address, driver: want.driver } },
    );
  }
  if (want.sriovNumVfs !== undefined) {
    if (state.sriovTotalVfs === null) {
      throw new OpdbusError(
        'OPDBUS_ERR_PCI_SRIOV',
        `${pathOf(address, 'sriovNumVfs')}: ${address} is not an SR-IOV physical function (it has no sriov_totalvfs); remove sriovNumVfs for it.`,
        { data: { path: pathOf(address, 'sriovNumVfs'), address } },
      );
    }
    if (want.sriovNumVfs > state.sriovTotalVfs) {
      throw new OpdbusError(
        'OPDBUS_ERR_PCI_SRIOV',
        `${pathOf(address, 'sriovNumVfs')}: ${want.sriovNumVfs} VFs asked, but ${address} supports at most ${state.sriovTotalVfs} (sriov_totalvfs).`,
        {
          data: {
            path: pathOf(address, 'sriovNumVfs'),
            address,
            wanted: want.sriovNumVfs,
            total: state.sriovTotalVfs,
          },
        },
      );
    }
  }
}

/**
 * Wait for the binding to show in sysfs. The kernel binds within the write to drivers_probe, but
 * a driver that refuses the device (its probe fails) leaves it unbound without failing the write:
 * checked here, so the change fails with a reason instead of at verify.
 */
async function settled(sys: PciSysfs, address: string, want: string | null): Promise<void> {
  for (let delay = 1; delay <= 256; delay *= 2) {
    if (sys.driver(address) === want) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  if (sys.driver(address) === want) return;
  throw new OpdbusError(
    'OPDBUS_ERR_PCI_WRITE',
    `PCI ${address}: ${want === null ? 'the device is still bound after unbind' : `driver ${want} did not take the device (its probe failed or it does not support the device; dmesg says why)`}; it is bound to ${sys.driver(address) ?? 'no driver'}.`,
    { data: { address, wanted: want, bound: sys.driver(address) } },
  );
}

/**
 * Create the PCI plugin. Devices are read from sysfs under the fsroot (`options.fsroot`, else
 * the target's `root`, else `/`); it writes driver_override, unbind, drivers_probe and
 * sriov_numvfs, nothing else. `watch` polls bindings and VF counts every `watchIntervalMs`
 * (sysfs sends no notification a reader can wait on for them).
 */
export function createPciPlugin(options: PciPluginOptions = {}): PciPlugin {
  const bus = (ctx: PluginContext): PciSysfs => new PciSysfs(options.fsroot ?? ctx.target.root ?? '/');

  const bindTo = (sys: PciSysfs, address: string, driver: string | null): void => {
    if (sys.driver(address) === driver) return;
    if (driver === null) {
      sys.unbind(address);
      return;
    }
    sys.setDriverOverride(address, driver);
    sys.unbind(address);
    sys.probe(address);
  };

  return definePlugin<PciSection, PciCheckpoint, PciValue>({
    name: 'pci',
    version: packageVersion(import.meta.url),
    description:
      'PCI devices from sysfs: ids, class, NUMA node, IOMMU group (read-only); driver binding and SR-IOV VF counts.',
    schema: pciSchema,

    probe(ctx) {
      const sys = bus(ctx);
      return Promise.resolve(
        sys.present()
          ? { available: true, detail: `${sys.root} (${sys.addresses().length} PCI functions)` }
          : {
              available: false,
              reason: `${sys.devicePath('').replace(/\/$/, '')} does not exist (no PCI bus, or sysfs not mounted)`,
            },
      );
    },

    async query(ctx, queryOptions) {
      const sys = bus(ctx);
      const scope = queryOptions?.scope;
      if (scope !== undefined) {
        const out: PciSection = {};
        const states = await sys.readMany(Object.keys(scope).filter((a) => sys.has(a)));
        for (const [address, want] of Object.entries(scope)) {
          const state = states.get(address);
          if (state === undefined) {
            throw new OpdbusError(
              'OPDBUS_ERR_PCI_UNKNOWN_DEVICE',
              `${pathOf(address)}: no PCI device ${address} under ${sys.devicePath('').replace(/\/$/, '')}; check the address with \`opdbus query --plugin pci\` (addresses are written in full, e.g. 0000:3b:00.0).`,
              { data: { path: pathOf(address), address } },
            );
          }
          checkDesired(sys, address, want, state);
          out[address] = view(state, true);
        }
        return out;
      }
      const out: PciSection = {};
      for (const [address, state] of await sys.readMany())
        out[address] = view(state, queryOptions?.all === true);
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec<PciValue>[] = [];
      for (const address of Object.keys(desired).sort()) {
        const want = desired[address]!;
        const have = observed[address];
        if (have === undefined) {
          throw new OpdbusError(
            'OPDBUS_ERR_PCI_UNKNOWN_DEVICE',
            `${pathOf(address)}: no PCI device ${address} was observed; check the address with \`opdbus query --plugin pci\`.`,
            { data: { path: pathOf(address), address } },
          );
        }
        for (const field of pciReadOnlyFields) {
          const value = want[field];
          if (value === undefined || !(field in have) || value === have[field]) continue;
          throw new OpdbusError(
            'OPDBUS_ERR_PCI_READ_ONLY',
            `${pathOf(address, field)}: ${field} is read-only and is ${quoteValue(have[field] ?? null)} on this device, not ${quoteValue(value)}; remove it from the document or correct it.`,
            { data: { path: pathOf(address, field), address, field, observed: have[field] ?? null } },
          );
        }
        const driverResource = `${address}/driver`;
        const driverChanges = want.driver !== undefined && want.driver !== (have.driver ?? null);
        if (driverChanges) {
          changes.push({
            resource: driverResource,
            op: 'update',
            before: have.driver ?? null,
            after: want.driver ?? null,
            summary:
              want.driver === null
                ? `unbind ${address} from ${have.driver ?? '(none)'}`
                : `bind ${address} to ${want.driver} (was ${have.driver ?? 'unbound'})`,
          });
        }
        if (want.sriovNumVfs !== undefined && want.sriovNumVfs !== have.sriovNumVfs) {
          changes.push({
            resource: `${address}/sriovNumVfs`,
            op: 'update',
            before: have.sriovNumVfs ?? null,
            after: want.sriovNumVfs,
            // The PF's driver creates the VFs: bind it first.
            ...(driverChanges ? { dependsOn: [driverResource] } : {}),
            summary: `set ${address} SR-IOV VFs ${have.sriovNumVfs ?? '(none)'} → ${want.sriovNumVfs}`,
          });
        }
      }
      return changes;
    },

    async apply(change, ctx) {
      await Promise.resolve();
      const sys = bus(ctx);
      const slash = change.resource.lastIndexOf('/');
      const address = change.resource.slice(0, slash);
      const field = change.resource.slice(slash + 1);
      if (field === 'driver') {
        const want = change.after as string | null;
        bindTo(sys, address, want);
        await settled(sys, address, want);
      } else if (field === 'sriovNumVfs') sys.setNumVfs(address, change.after as number);
      else throw new Error(`pci: unknown resource ${change.resource}`);
    },

    async checkpoint(ctx, changes) {
      const sys = bus(ctx);
      const addresses = [...new Set(changes.map((c) => c.resource.slice(0, c.resource.lastIndexOf('/'))))];
      const devices: PciCheckpoint['devices'] = {};
      for (const [address, state] of await sys.readMany(addresses)) {
        devices[address] = {
          driver: state.driver,
          driverOverride: state.driverOverride,
          sriovNumVfs: state.sriovNumVfs,
        };
      }
      return { devices };
    },

    async restore(token, ctx) {
      await Promise.resolve();
      const sys = bus(ctx);
      const failures: string[] = [];
      for (const [address, before] of Object.entries(token.devices)) {
        try {
          const now = sys.read(address);
          if (now === undefined) throw new Error('the device is gone');
          if (now.driver !== before.driver) {
            // VFs belong to the PF's driver: take them down before it changes.
            if ((now.sriovNumVfs ?? 0) > 0) sys.setNumVfs(address, 0);
            bindTo(sys, address, before.driver);
            await settled(sys, address, before.driver);
          }
          if ((sys.read(address)?.driverOverride ?? null) !== before.driverOverride)
            sys.setDriverOverride(address, before.driverOverride);
          if (before.sriovNumVfs !== null && sys.read(address)?.sriovNumVfs !== before.sriovNumVfs)
            sys.setNumVfs(address, before.sriovNumVfs);
        } catch (err) {
          failures.push(`${address}: ${(err as Error).message}`);
        }
      }
      if (failures.length > 0) {
        throw new OpdbusError(
          'OPDBUS_ERR_PCI_WRITE',
          `Could not restore PCI devices: ${failures.join('; ')}.`,
          {
            data: { failures },
          },
        );
      }
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const sys = bus(ctx);
      const intervalMs = options.watchIntervalMs ?? 2000;
      const snapshot = async (): Promise<Map<string, string>> => {
        const out = new Map<string, string>();
        for (const [address, state] of await sys.readMany())
          out.set(address, JSON.stringify({ driver: state.driver, sriovNumVfs: state.sriovNumVfs }));
        return out;
      };
      let last = await snapshot();
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        snapshot()
          .then((now) => {
            for (const address of new Set([...last.keys(), ...now.keys()])) {
              const before = last.get(address);
              const after = now.get(address);
              if (before === after) continue;
              onEvent({
                plugin: 'pci',
                resource: address,
                detail: `${address} changed ${before ?? '(absent)'} → ${after ?? '(absent)'} (seen by polling every ${intervalMs} ms)`,
                raw: { address, before: before ?? null, after: after ?? null },
              });
            }
            last = now;
          })
          .catch((err: unknown) => ctx.logger.warn({ err }, 'pci watch poll failed'))
          .finally(() => {
            running = false;
          });
      }, intervalMs);
      return () => clearInterval(timer);
    },
  });
}

/** The PCI plugin with default options (the target's root, else `/`). */
export const pciPlugin: PciPlugin = createPciPlugin();
