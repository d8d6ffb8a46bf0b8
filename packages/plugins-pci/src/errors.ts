import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the PCI plugin (documented in docs/errors.md). */
export const pciErrors = defineErrorCodes({
  OPDBUS_ERR_PCI_UNKNOWN_DEVICE: {
    summary: 'The state document names a PCI address (domain:bus:device.function) that has no device here.',
    remedy:
      'Check the address against `opdbus query --plugin pci` (or `lspci -D`); addresses are written in full, e.g. 0000:3b:00.0.',
  },
  OPDBUS_ERR_PCI_UNKNOWN_DRIVER: {
    summary: 'The state document binds a PCI device to a driver that is not registered with the PCI bus.',
    remedy:
      'Load the driver module first (e.g. `modprobe vfio-pci`), or fix the name: the registered drivers are the names under /sys/bus/pci/drivers.',
  },
  OPDBUS_ERR_PCI_SRIOV: {
    summary:
      'The state document sets a VF count on a device without SR-IOV, or more VFs than the device supports (sriov_totalvfs).',
    remedy:
      'Set sriovNumVfs only on SR-IOV physical functions, at most their sriovTotalVfs (see `opdbus query --plugin pci --all`).',
  },
  OPDBUS_ERR_PCI_READ_ONLY: {
    summary:
      'The state document gives a read-only PCI attribute (ids, class, NUMA node, IOMMU group, total VFs) a value the device does not have.',
    remedy:
      'Remove the attribute from the document or correct it: these attributes are reported by the hardware and cannot be set.',
  },
  OPDBUS_ERR_PCI_WRITE: {
    summary:
      'The kernel refused a write to a PCI sysfs attribute (driver_override, bind, unbind, sriov_numvfs).',
    remedy:
      'Read the errno and the kernel log (`dmesg`): a driver may refuse the device, or the PF driver may not support SR-IOV; run as root.',
  },
});
