// A PCI bus in a directory, for the write side only: plain files stand in for sysfs attributes,
// and this stand-in does what the kernel does on a write to bind, unbind and drivers_probe (moves
// the device's `driver` link, honouring driver_override), reacting to inotify events as the
// writes land. It never touches the host's /sys. The read side is tested on real sysfs trees.
import {
  type FSWatcher,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StandInDevice {
  address: string;
  vendor: string;
  device: string;
  class: string;
  driver: string | null;
  numaNode?: number;
  iommuGroup?: number;
  sriovTotalVfs?: number;
  /** Make writes to driver_override fail (EISDIR), as a kernel refusing a write. */
  refuseOverride?: boolean;
}

export class PciStandIn {
  readonly root: string;
  readonly #watchers: FSWatcher[] = [];
  #closed = false;

  constructor(devices: StandInDevice[], drivers: string[]) {
    this.root = mkdtempSync(join(tmpdir(), 'opdbus-pci-'));
    const bus = join(this.root, 'sys/bus/pci');
    mkdirSync(join(bus, 'devices'), { recursive: true });
    mkdirSync(join(this.root, 'sys/kernel/iommu_groups'), { recursive: true });
    writeFileSync(join(bus, 'drivers_probe'), '');
    for (const name of drivers) {
      mkdirSync(join(bus, 'drivers', name), { recursive: true });
      writeFileSync(join(bus, 'drivers', name, 'bind'), '');
      writeFileSync(join(bus, 'drivers', name, 'unbind'), '');
    }
    for (const d of devices) {
      const dir = join(bus, 'devices', d.address);
      mkdirSync(dir);
      writeFileSync(
        join(dir, 'uevent'),
        `PCI_CLASS=${d.class.slice(2).toUpperCase()}\nPCI_ID=${d.vendor.slice(2).toUpperCase()}:${d.device.slice(2).toUpperCase()}\nPCI_SUBSYS_ID=${d.vendor.slice(2).toUpperCase()}:0001\nPCI_SLOT_NAME=${d.address}\n`,
      );
      writeFileSync(join(dir, 'class'), `${d.class}\n`);
      writeFileSync(join(dir, 'numa_node'), `${d.numaNode ?? -1}\n`);
      if (d.refuseOverride === true) mkdirSync(join(dir, 'driver_override'));
      else writeFileSync(join(dir, 'driver_override'), '(null)\n');
      if (d.iommuGroup !== undefined) {
        mkdirSync(join(this.root, 'sys/kernel/iommu_groups', String(d.iommuGroup)), { recursive: true });
        symlinkSync(`../../../../kernel/iommu_groups/${d.iommuGroup}`, join(dir, 'iommu_group'));
      }
      if (d.sriovTotalVfs !== undefined) {
        writeFileSync(join(dir, 'sriov_totalvfs'), `${d.sriovTotalVfs}\n`);
        writeFileSync(join(dir, 'sriov_numvfs'), '0\n');
      }
      if (d.driver !== null) symlinkSync(`../../drivers/${d.driver}`, join(dir, 'driver'));
    }
    const on = (file: string, act: (value: string) => void): void => {
      const watcher = watch(file, () => {
        if (this.#closed) return;
        const value = readFileSync(file, 'utf8').trim();
        if (value === '') return;
        writeFileSync(file, '');
        act(value);
      });
      this.#watchers.push(watcher);
    };
    on(join(bus, 'drivers_probe'), (address) => this.#probe(address));
    for (const name of drivers) {
      on(join(bus, 'drivers', name, 'unbind'), (address) => {
        if (this.driverOf(address) === name) unlinkSync(join(bus, 'devices', address, 'driver'));
      });
      on(join(bus, 'drivers', name, 'bind'), (address) => this.#bind(address, name));
    }
  }

  #bind(address: string, name: string): void {
    if (this.driverOf(address) !== null) return;
    symlinkSync(`../../drivers/${name}`, join(this.root, 'sys/bus/pci/devices', address, 'driver'));
  }

  #probe(address: string): void {
    const dir = join(this.root, 'sys/bus/pci/devices', address);
    if (!existsSync(dir) || this.driverOf(address) !== null) return;
    let override = '(null)';
    try {
      override = readFileSync(join(dir, 'driver_override'), 'utf8').trim();
    } catch {
      // A device whose driver_override refuses writes: no override.
    }
    if (
      override !== '' &&
      override !== '(null)' &&
      existsSync(join(this.root, 'sys/bus/pci/drivers', override))
    )
      this.#bind(address, override);
  }

  /** The driver a device is bound to, from its link. */
  driverOf(address: string): string | null {
    try {
      return (
        readlinkSync(join(this.root, 'sys/bus/pci/devices', address, 'driver'))
          .split('/')
          .pop() ?? null
      );
    } catch {
      return null;
    }
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers) w.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}
