import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createPciPlugin, type PciSection } from '../src/index.js';
import { PciStandIn } from './kernelStandIn.js';

let bus: PciStandIn | undefined;

describePluginConformance<PciSection>(
  // The target's root is the stand-in's directory.
  createPciPlugin({ watchIntervalMs: 50 }),
  () => {
    bus = new PciStandIn(
      [
        {
          address: '0000:01:00.0',
          vendor: '0x8086',
          device: '0x1572',
          class: '0x020000',
          driver: 'i40e',
          numaNode: 0,
          iommuGroup: 12,
          sriovTotalVfs: 64,
        },
        {
          address: '0000:02:00.0',
          vendor: '0x10de',
          device: '0x2330',
          class: '0x030200',
          driver: null,
          numaNode: 1,
          iommuGroup: 30,
        },
        {
          address: '0000:03:00.0',
          vendor: '0x15b3',
          device: '0x101d',
          class: '0x020000',
          driver: 'mlx5_core',
          iommuGroup: 31,
          refuseOverride: true,
        },
      ],
      ['i40e', 'vfio-pci', 'mlx5_core'],
    );
    const root = bus.root;
    return Promise.resolve({
      target: { root },
      desired: {
        '0000:01:00.0': { driver: 'i40e', sriovNumVfs: 4 },
        '0000:02:00.0': { driver: 'vfio-pci' },
      },
      // The first device is bound to vfio-pci, then the kernel refuses the third's driver_override.
      failing: {
        '0000:02:00.0': { driver: 'vfio-pci' },
        '0000:03:00.0': { driver: 'vfio-pci' },
      },
      drift: () => {
        // What an operator's `echo 0000:02:00.0 > /sys/bus/pci/drivers/vfio-pci/unbind` does.
        appendFileSync(join(root, 'sys/bus/pci/drivers/vfio-pci/unbind'), '0000:02:00.0\n');
        return Promise.resolve();
      },
      teardown: () => {
        bus?.close();
        return Promise.resolve();
      },
    });
  },
);
