// Reading the PCI bus from sysfs: op-dbus's pci plugin (in-process, the batched sysfs reader of
// @opdbus/numa) against lspci (pciutils, spawned as a script would: `lspci -D -vmm -nk`) on this
// host's /sys, and against a naive reader (one fs/promises readFile per attribute) on a synthetic
// tree of 1024 functions.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@opdbus/core';
import { createPciPlugin } from '@opdbus/plugins-pci';
import { has, measure, ms, ratio, sh, table } from '../lib.mjs';

export const title = 'pci: read every PCI function with its attributes';

const ctx = (root) => ({
  target: { root },
  netns: undefined,
  logger: silentLogger,
  stateDir: '/nonexistent',
  signal: undefined,
});

/** A bus of `count` functions, each with the attributes a real one has that the plugin reads. */
function syntheticBus(count) {
  const root = mkdtempSync(join(tmpdir(), 'opdbus-bench-pci-'));
  const bus = join(root, 'sys/bus/pci');
  mkdirSync(join(bus, 'drivers/ixgbe'), { recursive: true });
  mkdirSync(join(root, 'sys/kernel/iommu_groups'), { recursive: true });
  for (let i = 0; i < count; i++) {
    const address = `0000:${(i >> 3).toString(16).padStart(2, '0')}:${(i & 7).toString(16).padStart(2, '0')}.0`;
    const dir = join(bus, 'devices', address);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'uevent'),
      `DRIVER=ixgbe\nPCI_CLASS=20000\nPCI_ID=8086:10FB\nPCI_SUBSYS_ID=8086:000C\nPCI_SLOT_NAME=${address}\n`,
    );
    for (const [f, v] of [
      ['class', '0x020000'],
      ['vendor', '0x8086'],
      ['device', '0x10fb'],
      ['subsystem_vendor', '0x8086'],
      ['subsystem_device', '0x000c'],
      ['numa_node', String(i & 1)],
      ['driver_override', '(null)'],
      ['sriov_totalvfs', '63'],
      ['sriov_numvfs', '0'],
    ])
      writeFileSync(join(dir, f), `${v}\n`);
    symlinkSync('../../drivers/ixgbe', join(dir, 'driver'));
    mkdirSync(join(root, 'sys/kernel/iommu_groups', String(i)));
    symlinkSync(`../../../../kernel/iommu_groups/${i}`, join(dir, 'iommu_group'));
  }
  return root;
}

/** One readFile per attribute, as a straightforward reader would do it. */
async function naiveRead(root) {
  const dir = join(root, 'sys/bus/pci/devices');
  const out = {};
  for (const address of await readdir(dir)) {
    const base = join(dir, address);
    const attr = async (f) => (await readFile(join(base, f), 'utf8').catch(() => undefined))?.trim();
    const link = async (f) => (await readlink(join(base, f)).catch(() => undefined))?.split('/').pop();
    out[address] = {
      vendor: await attr('vendor'),
      device: await attr('device'),
      subsystemVendor: await attr('subsystem_vendor'),
      subsystemDevice: await attr('subsystem_device'),
      class: await attr('class'),
      numaNode: await attr('numa_node'),
      driver: await link('driver'),
      iommuGroup: await link('iommu_group'),
      sriovTotalVfs: await attr('sriov_totalvfs'),
      sriovNumVfs: await attr('sriov_numvfs'),
    };
  }
  return out;
}

export async function run({ log }) {
  const plugin = createPciPlugin();
  const hostCount = Object.keys(await plugin.query(ctx('/'), { all: true })).length;
  log(`this host: ${hostCount} functions`);
  const hostOurs = await measure(() => plugin.query(ctx('/'), { all: true }), { iterations: 50 });
  const lspci = has('lspci')
    ? await measure(() => sh('lspci', ['-D', '-vmm', '-nk']), { iterations: 20 })
    : undefined;
  const count = 1024;
  const root = syntheticBus(count);
  try {
    log(`synthetic bus: ${count} functions`);
    const synthOurs = await measure(() => plugin.query(ctx(root), { all: true }), { iterations: 20 });
    const naive = await measure(() => naiveRead(root), { iterations: 10 });
    return [
      table(
        ['Task', 'op-dbus', 'other', 'Ratio'],
        [
          [
            `All ${hostCount} functions of this host (/sys), with ids, class, driver, node, IOMMU group, SR-IOV`,
            ms(hostOurs.median),
            `${ms(lspci?.median)} (lspci -D -vmm -nk)`,
            lspci ? `${ratio(lspci.median, hostOurs.median)} faster` : 'n/a',
          ],
          [
            `All ${count} functions of a synthetic tree (same attributes)`,
            ms(synthOurs.median),
            `${ms(naive.median)} (one fs/promises read per attribute)`,
            `${ratio(naive.median, synthOurs.median)} faster`,
          ],
        ],
      ),
      '',
      'op-dbus reads sysfs attributes synchronously into one reused buffer (they are generated in memory,',
      'a thread-pool round trip per file costs more than the read), gets class and ids from `uevent` in',
      'one read, and yields to the event loop every few milliseconds. lspci is timed as a whole process,',
      'as a script calling it pays it; it also decodes names (-n turns that off) and reads config space.',
      'The synthetic tree is plain files on the temporary filesystem, not sysfs: absolute times there are',
      'higher than on sysfs; the ratio is the point.',
    ].join('\n');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
