/**
 * PCI devices from /sys/bus/pci/devices, their NUMA locality, and the network, DRM, NVMe and RDMA
 * devices under them.
 */
import type { NumaNode } from './nodes.js';
import type { SysfsTree } from './sysfs.js';

/** What kind of PCI device, from its class code. */
export type PciDeviceKind =
  'gpu' | 'nic' | 'infiniband' | 'nvme' | 'storage' | 'accelerator' | 'bridge' | 'other';

/** A PCI function and where it is attached. */
export interface PciDevice {
  /** Domain:bus:device.function, e.g. `0000:3b:00.0`. */
  address: string;
  /** The class code as sysfs prints it, e.g. `0x030200`. */
  class: string;
  kind: PciDeviceKind;
  /** Vendor id, e.g. `0x10de`. */
  vendor: string;
  /** Device id, e.g. `0x2330`. */
  device: string;
  /** The bound driver, when known. */
  driver: string | null;
  /** The NUMA node it is attached to, or null when the firmware does not say (numa_node -1). */
  node: number | null;
  /** The CPUs local to it (local_cpulist). */
  localCpus: number[];
  /** Network interfaces of the device (/sys/class/net). */
  netInterfaces: string[];
  /** DRM devices (card0, renderD128). */
  drmDevices: string[];
  /** NVMe controllers (nvme0). */
  nvmeControllers: string[];
  /** RDMA devices (/sys/class/infiniband, e.g. mlx5_0). */
  infinibandDevices: string[];
}

const pciAddressPattern = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const pciInPathPattern = /[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7](?=\/|$)/g;

/** The kind of a PCI device from its 24-bit class code. */
export function pciKind(classCode: number): PciDeviceKind {
  const base = classCode >> 16;
  const sub = (classCode >> 8) & 0xff;
  if (base === 0x01) return sub === 0x08 ? 'nvme' : 'storage';
  if (base === 0x02) return sub === 0x07 ? 'infiniband' : 'nic';
  if (base === 0x03) return 'gpu';
  if (base === 0x12 || (base === 0x0b && sub === 0x40)) return 'accelerator';
  if (base === 0x06) return 'bridge';
  return 'other';
}

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).padStart(digits, '0')}`;
}

function ueventField(uevent: string | undefined, key: string): string | undefined {
  if (uevent === undefined) return undefined;
  const match = new RegExp(`(?:^|\\n)${key}=([^\\n]*)`).exec(uevent);
  return match?.[1];
}

/**
 * Read the PCI devices. A device's local CPUs are those of its node; where the firmware gives no
 * node (numa_node -1), those of local_cpulist, cut to `cpus` (the CPUs shown).
 */
export function readPciDevices(
  fs: SysfsTree,
  nodes: NumaNode[],
  cpus: number[],
  warnings: string[],
): PciDevice[] {
  const dir = 'sys/bus/pci/devices';
  const addresses = (fs.dir(dir) ?? []).filter((a) => pciAddressPattern.test(a));
  const shown = new Set(cpus);
  const nodeCpus = new Map(nodes.map((n) => [n.id, n.cpus]));
  const singleNode = nodes.length === 1 ? nodes[0]!.id : undefined;
  const devices = new Map<string, PciDevice>();
  for (const address of addresses) {
    const base = `${dir}/${address}`;
    const uevent = fs.read(`${base}/uevent`);
    const ueventClass = ueventField(uevent, 'PCI_CLASS');
    const ueventId = ueventField(uevent, 'PCI_ID')?.split(':');
    const classCode =
      ueventClass !== undefined ? parseInt(ueventClass, 16) : parseInt(fs.text(`${base}/class`) ?? '0', 16);
    const vendor =
      ueventId?.[0] !== undefined
        ? parseInt(ueventId[0], 16)
        : parseInt(fs.text(`${base}/vendor`) ?? '0', 16);
    const device =
      ueventId?.[1] !== undefined
        ? parseInt(ueventId[1], 16)
        : parseInt(fs.text(`${base}/device`) ?? '0', 16);
    const rawNode = fs.int(`${base}/numa_node`);
    let node: number | null = rawNode !== undefined && rawNode >= 0 && nodeCpus.has(rawNode) ? rawNode : null;
    if (rawNode !== undefined && rawNode >= 0 && !nodeCpus.has(rawNode)) {
      warnings.push(`PCI ${address}: numa_node ${rawNode} is not an online node`);
    }
    let localCpus: number[];
    if (node !== null) {
      localCpus = nodeCpus.get(node)!;
    } else {
      localCpus = fs.mask(`${base}/local_cpus`, `${base}/local_cpulist`)?.filter((c) => shown.has(c)) ?? [
        ...cpus,
      ];
      // On a single-node machine the device is on that node, whatever the firmware says.
      if (singleNode !== undefined) node = singleNode;
    }
    devices.set(address, {
      address,
      class: hex(Number.isNaN(classCode) ? 0 : classCode, 6),
      kind: pciKind(Number.isNaN(classCode) ? 0 : classCode),
      vendor: hex(Number.isNaN(vendor) ? 0 : vendor, 4),
      device: hex(Number.isNaN(device) ? 0 : device, 4),
      driver: ueventField(uevent, 'DRIVER') ?? null,
      node,
      localCpus,
      netInterfaces: [],
      drmDevices: [],
      nvmeControllers: [],
      infinibandDevices: [],
    });
  }
  const classes = [
    ['net', 'netInterfaces', (_n: string) => true],
    ['drm', 'drmDevices', (n: string) => /^(card|renderD)\d+$/.test(n)],
    ['nvme', 'nvmeControllers', (n: string) => /^nvme\d+$/.test(n)],
    ['infiniband', 'infinibandDevices', (_n: string) => true],
  ] as const;
  for (const [cls, field, keep] of classes) {
    for (const name of fs.dir(`sys/class/${cls}`) ?? []) {
      if (!keep(name)) continue;
      const target = fs.link(`sys/class/${cls}/${name}`);
      if (target === undefined) continue;
      const found = target.match(pciInPathPattern);
      const owner = found === null ? undefined : devices.get(found[found.length - 1]!);
      owner?.[field].push(name);
    }
  }
  return [...devices.values()].sort((a, b) => a.address.localeCompare(b.address));
}
