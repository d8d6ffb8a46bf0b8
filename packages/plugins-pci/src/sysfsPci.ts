/**
 * PCI devices in sysfs under a filesystem root: reads through `SysfsTree` of `@opdbus/numa` (one
 * reused buffer, synchronous reads of in-memory attributes, paced to yield to the event loop),
 * writes as single write(2) calls so the kernel sees one store per attribute.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { OpdbusError } from '@opdbus/core';
import { SysfsTree } from '@opdbus/numa';

/** A PCI address in full form: domain:bus:device.function, lowercase hex. */
export const pciAddressPattern = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;

/** What sysfs says about one PCI function. */
export interface PciDeviceState {
  vendor: string;
  device: string;
  subsystemVendor: string | null;
  subsystemDevice: string | null;
  /** The 24-bit class code, e.g. `0x020000`. */
  class: string;
  /** The bound driver, or null when none is. */
  driver: string | null;
  /** driver_override, or null when unset (or the kernel has no such attribute). */
  driverOverride: string | null;
  numaNode: number | null;
  iommuGroup: number | null;
  /** sriov_totalvfs, or null when the device is not an SR-IOV physical function. */
  sriovTotalVfs: number | null;
  sriovNumVfs: number | null;
}

const devicesDir = 'sys/bus/pci/devices';
const driversDir = 'sys/bus/pci/drivers';

function field(uevent: string | undefined, key: string): string | undefined {
  if (uevent === undefined) return undefined;
  const start = uevent.startsWith(`${key}=`) ? 0 : uevent.indexOf(`\n${key}=`);
  if (start < 0) return undefined;
  const from = start === 0 ? key.length + 1 : start + key.length + 2;
  const end = uevent.indexOf('\n', from);
  return uevent.slice(from, end < 0 ? undefined : end);
}

function hexId(text: string | undefined, digits: number): string | null {
  if (text === undefined) return null;
  const value = parseInt(text.trim(), 16);
  return Number.isNaN(value) ? null : `0x${value.toString(16).padStart(digits, '0')}`;
}

function lastSegment(link: string | undefined): string | null {
  if (link === undefined) return null;
  const slash = link.lastIndexOf('/');
  return slash < 0 ? link : link.slice(slash + 1);
}

/** The PCI bus of a filesystem root (`/` for this host). */
export class PciSysfs {
  readonly root: string;
  readonly #fs: SysfsTree;

  constructor(root: string) {
    this.root = root;
    this.#fs = new SysfsTree(root);
  }

  /** The absolute path of an attribute of a device, e.g. `sriov_numvfs`. */
  devicePath(address: string, attribute?: string): string {
    return this.#fs.path(`${devicesDir}/${address}${attribute === undefined ? '' : `/${attribute}`}`);
  }

  /** Whether the bus exists under the root. */
  present(): boolean {
    return this.#fs.exists(devicesDir);
  }

  /** The PCI addresses present, sorted. */
  addresses(): string[] {
    return (this.#fs.dir(devicesDir) ?? []).filter((a) => pciAddressPattern.test(a));
  }

  /** Whether a device exists. */
  has(address: string): boolean {
    return pciAddressPattern.test(address) && this.#fs.exists(`${devicesDir}/${address}`);
  }

  /** The drivers registered with the PCI bus. */
  drivers(): string[] {
    return this.#fs.dir(driversDir) ?? [];
  }

  /** Whether a driver is registered. */
  hasDriver(name: string): boolean {
    return !name.includes('/') && name !== '.' && name !== '..' && this.#fs.exists(`${driversDir}/${name}`);
  }

  /** The bound driver of a device, or null. */
  driver(address: string): string | null {
    return lastSegment(this.#fs.link(`${devicesDir}/${address}/driver`));
  }

  /** Read one device, or undefined when it does not exist. */
  read(address: string): PciDeviceState | undefined {
    const fs = this.#fs;
    const base = `${devicesDir}/${address}`;
    // uevent carries class, ids and subsystem ids in one read; older dumps lack it.
    const uevent = fs.optionalRead(`${base}/uevent`);
    const ids = field(uevent, 'PCI_ID')?.split(':');
    const subsys = field(uevent, 'PCI_SUBSYS_ID')?.split(':');
    const classText = field(uevent, 'PCI_CLASS') ?? fs.read(`${base}/class`);
    if (classText === undefined && uevent === undefined && !fs.exists(base)) return undefined;
    const vendor = hexId(ids?.[0] ?? fs.optionalRead(`${base}/vendor`), 4);
    const device = hexId(ids?.[1] ?? fs.optionalRead(`${base}/device`), 4);
    const subsystemVendor = hexId(subsys?.[0] ?? fs.optionalRead(`${base}/subsystem_vendor`), 4);
    const subsystemDevice = hexId(subsys?.[1] ?? fs.optionalRead(`${base}/subsystem_device`), 4);
    const node = fs.optionalRead(`${base}/numa_node`)?.trim();
    const numaNode = node === undefined || !/^-?\d+$/.test(node) || Number(node) < 0 ? null : Number(node);
    const group = lastSegment(fs.link(`${base}/iommu_group`));
    const override = fs.optionalRead(`${base}/driver_override`)?.trim();
    const total = fs.optionalRead(`${base}/sriov_totalvfs`)?.trim();
    const num = total === undefined ? undefined : fs.read(`${base}/sriov_numvfs`)?.trim();
    return {
      vendor: vendor ?? '0x0000',
      device: device ?? '0x0000',
      subsystemVendor,
      subsystemDevice,
      class: hexId(classText, 6) ?? '0x000000',
      driver: this.driver(address),
      driverOverride: override === undefined || override === '' || override === '(null)' ? null : override,
      numaNode,
      iommuGroup: group !== null && /^\d+$/.test(group) ? Number(group) : null,
      sriovTotalVfs: total !== undefined && /^\d+$/.test(total) ? Number(total) : null,
      sriovNumVfs: num !== undefined && /^\d+$/.test(num) ? Number(num) : null,
    };
  }

  /** Read many devices (all when `addresses` is undefined), yielding to the event loop between slices. */
  async readMany(addresses?: readonly string[]): Promise<Map<string, PciDeviceState>> {
    const out = new Map<string, PciDeviceState>();
    for (const address of addresses ?? this.addresses()) {
      const state = this.read(address);
      if (state !== undefined) out.set(address, state);
      const pause = this.#fs.pace();
      if (pause !== undefined) await pause;
    }
    return out;
  }

  /** Problems met while reading (permission, I/O errors), for logs. */
  get problems(): readonly string[] {
    return this.#fs.problems;
  }

  /**
   * Write one attribute in one write(2). `rel` is relative to the root (e.g.
   * `sys/bus/pci/drivers_probe`); `resource` names what is changed, for the error.
   */
  write(rel: string, value: string, resource: string): void {
    const path = this.#fs.path(rel);
    let fd: number | undefined;
    try {
      // O_TRUNC as a shell redirection opens it: sysfs ignores it; a plain file (a test fsroot) is rewritten whole.
      fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC);
      writeSync(fd, value);
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code ?? 'EIO';
      throw new OpdbusError(
        'OPDBUS_ERR_PCI_WRITE',
        `PCI ${resource}: writing ${JSON.stringify(value.trim())} to ${path} failed: ${errno} (${(err as Error).message}); the kernel log (dmesg) says why a driver refused.`,
        { data: { resource, path, value: value.slice(0, 64), errno }, cause: err },
      );
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Set driver_override (`null` clears it). */
  setDriverOverride(address: string, driver: string | null): void {
    this.write(`${devicesDir}/${address}/driver_override`, driver === null ? '\n' : driver, address);
  }

  /** Unbind the device from its driver, when it has one. */
  unbind(address: string): void {
    const current = this.driver(address);
    if (current !== null) this.write(`${driversDir}/${current}/unbind`, address, address);
  }

  /** Ask the bus to probe drivers for the device (honouring driver_override). */
  probe(address: string): void {
    this.write('sys/bus/pci/drivers_probe', address, address);
  }

  /** Set sriov_numvfs; the kernel refuses changing a non-zero count to another one, so go through 0. */
  setNumVfs(address: string, count: number): void {
    const rel = `${devicesDir}/${address}/sriov_numvfs`;
    const now = this.#fs.text(rel);
    if (now === String(count)) return;
    if (now !== undefined && now !== '0' && count !== 0) this.write(rel, '0', address);
    this.write(rel, String(count), address);
  }
}
