import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the sysctl plugin (documented in docs/errors.md). */
export const sysctlErrors = defineErrorCodes({
  OPDBUS_ERR_SYSCTL_UNKNOWN_KEY: {
    summary: 'The state document names a sysctl key that does not exist on this kernel.',
    remedy:
      'Check the spelling against `opdbus query --plugin sysctl`; the key may need a kernel module that is not loaded.',
  },
  OPDBUS_ERR_SYSCTL_NOT_NAMESPACED: {
    summary:
      'A key outside `net.*` was named while targeting a network namespace; it would change the whole host.',
    remedy: 'Manage only `net.*` keys with `--netns`, or apply the other keys without `--netns`.',
  },
  OPDBUS_ERR_SYSCTL_WRITE_ONLY: {
    summary:
      'The key is write-only (an action such as a cache flush, not a state), so it cannot be declared.',
    remedy: 'Remove it from the state document; trigger the action with sysctl(8) if you need it.',
  },
  OPDBUS_ERR_SYSCTL_READ_ONLY: {
    summary:
      'The state document sets a read-only sysctl key (a counter or report of the kernel, mode without a write bit).',
    remedy:
      'Remove the key from the document; `opdbus query` leaves read-only and volatile keys out unless given `--all`.',
  },
  OPDBUS_ERR_SYSCTL_WRITE: {
    summary: 'The kernel refused the value written to a sysctl key (the errno says why).',
    remedy: "Check the value against the key's documented range and type (Documentation/admin-guide/sysctl).",
  },
  OPDBUS_ERR_SYSCTL_READ: {
    summary: 'A sysctl key could not be read.',
    remedy: 'Run as root; some keys are readable only with CAP_SYS_ADMIN or only after a module is loaded.',
  },
});
