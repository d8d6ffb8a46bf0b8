import { defineErrorCodes } from '@opdbus/core';

/** Error codes of @opdbus/numa (documented in docs/errors.md). */
export const numaErrors = defineErrorCodes({
  OPDBUS_ERR_NUMA_READ: {
    exit: 'UNAVAILABLE',
    summary:
      'The CPU topology could not be read: the root holds no sysfs CPU tree (sys/devices/system/cpu) or it is unreadable.',
    remedy:
      'Pass a root that holds sys/ and proc/ as the kernel lays them out (default `/`), and run with permission to read it.',
  },
  OPDBUS_ERR_NUMA_CPU_LIST: {
    summary:
      'A CPU or node list is not in the kernel list format ("0-3,8-11") or mask format ("ff,00000000").',
    remedy: 'Write the list as the kernel prints it, e.g. `0-3,8-11`; the message names the offending text.',
  },
  OPDBUS_ERR_NUMA_UNKNOWN_NODE: {
    summary:
      'A placement names a NUMA node that this machine does not have, or one without the CPUs it asks for.',
    remedy:
      'Correct the node in the state document (`opdbus numa` lists them); ask for CPUs only on nodes that have CPUs (memory-only nodes have none).',
  },
  OPDBUS_ERR_NUMA_UNKNOWN_DEVICE: {
    summary:
      'A placement asks to be near a device (PCI address, network interface, DRM or NVMe name) that this machine does not have.',
    remedy:
      'List the PCI devices and their names with `opdbus numa`, and use one of them in the state document.',
  },
  OPDBUS_ERR_NUMA_NO_LOCALITY: {
    summary:
      'A placement asks to be near a device whose NUMA locality the kernel does not report (numa_node is -1 on a multi-node machine).',
    remedy:
      'Name the node in the state document with `node:` instead of `near:` (the firmware does not say where the device is attached).',
  },
  OPDBUS_ERR_NUMA_INSUFFICIENT: {
    summary:
      'A placement cannot be satisfied: not enough free CPUs or memory on the nodes it may use, after the placements resolved before it.',
    remedy:
      'Read what is short in the message, then change the state document: ask for fewer CPUs or less memory, allow more nodes, or make other placements non-exclusive.',
  },
});
