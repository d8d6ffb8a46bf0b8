/**
 * @opdbus/plugins-pci: PCI devices from sysfs as declared state for op-dbus: ids, class, NUMA
 * node and IOMMU group read-only; driver binding and SR-IOV VF counts writable.
 *
 * @packageDocumentation
 */
export { pciErrors } from './errors.js';
export { PciSysfs, pciAddressPattern, type PciDeviceState } from './sysfsPci.js';
export {
  createPciPlugin,
  pciPlugin,
  pciReadOnlyFields,
  pciSchema,
  type PciChange,
  type PciCheckpoint,
  type PciDeviceSection,
  type PciPlugin,
  type PciPluginOptions,
  type PciSection,
  type PciValue,
} from './plugin.js';
