// Plan-time errors name the document path and say what to do; diff is pure.
import { silentLogger, type PluginContext } from '@opdbus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPciPlugin, pciSchema, type PciSection } from '../src/index.js';
import { PciStandIn } from './kernelStandIn.js';

let bus: PciStandIn;
const plugin = createPciPlugin();
const ctx = (): PluginContext => ({
  target: { root: bus.root },
  netns: undefined,
  logger: silentLogger,
  stateDir: '/nonexistent',
  signal: undefined,
});
const plan = async (desired: PciSection) =>
  plugin.diff(desired, await plugin.query(ctx(), { scope: desired }));

beforeAll(() => {
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
        sriovTotalVfs: 8,
      },
      { address: '0000:02:00.0', vendor: '0x10de', device: '0x2330', class: '0x030200', driver: null },
    ],
    ['i40e', 'vfio-pci'],
  );
});
afterAll(() => bus.close());

describe('plan-time errors', () => {
  it('a malformed address is a schema error that shows the form', () => {
    const result = pciSchema.safeParse({ '3b:00.0': { driver: 'vfio-pci' } });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toMatch(/0000:3b:00\.0/);
  });
  it('an address with no device', async () => {
    await expect(plan({ '0000:09:00.0': { driver: 'vfio-pci' } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PCI_UNKNOWN_DEVICE',
      message: expect.stringContaining('plugins.pci'),
    });
  });
  it('a driver that is not registered', async () => {
    await expect(plan({ '0000:02:00.0': { driver: 'vfio_pcii' } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PCI_UNKNOWN_DRIVER',
      message: expect.stringMatching(/0000:02:00\.0.*driver.*i40e, vfio-pci/),
    });
  });
  it('more VFs than sriov_totalvfs, and VFs on a device without SR-IOV', async () => {
    await expect(plan({ '0000:01:00.0': { sriovNumVfs: 9 } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PCI_SRIOV',
      message: expect.stringContaining('at most 8'),
    });
    await expect(plan({ '0000:02:00.0': { sriovNumVfs: 1 } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PCI_SRIOV',
    });
  });
  it('a read-only attribute that differs; the same value is accepted', async () => {
    await expect(plan({ '0000:01:00.0': { vendor: '0x8087' } })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_PCI_READ_ONLY',
      message: expect.stringContaining('"0x8086"'),
    });
    expect(
      await plan({ '0000:01:00.0': { vendor: '0x8086', numaNode: 0, iommuGroup: 12, driver: 'i40e' } }),
    ).toEqual([]);
  });
  it('binds the PF before changing its VFs', async () => {
    const changes = await plan({ '0000:01:00.0': { driver: 'vfio-pci', sriovNumVfs: 2 } });
    expect(changes.map((c) => [c.resource, c.dependsOn ?? []])).toEqual([
      ['0000:01:00.0/driver', []],
      ['0000:01:00.0/sriovNumVfs', ['0000:01:00.0/driver']],
    ]);
  });
});
