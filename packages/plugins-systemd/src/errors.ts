import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the systemd plugin (documented in docs/errors.md). */
export const systemdErrors = defineErrorCodes({
  OPDBUS_ERR_SYSTEMD_ROOT: {
    exit: 'UNAVAILABLE',
    summary:
      "The filesystem root for unit files does not belong to the targeted systemd (its /etc/machine-id differs from the manager's), or cannot be read.",
    remedy:
      "When --bus points at another host's or a container's systemd, pass its root directory with --root (e.g. the container's root as seen from here).",
  },
  OPDBUS_ERR_SYSTEMD_UNIT_INVALID: {
    summary: 'systemd could not load a unit after its files were written (LoadState error or bad-setting).',
    remedy: 'Read the LoadError in the message and fix the unit file content in the state document.',
  },
  OPDBUS_ERR_SYSTEMD_JOB_FAILED: {
    summary:
      'A start or stop job of a unit did not complete successfully (its JobRemoved result was not "done").',
    remedy: "Check the unit's logs (journalctl -u UNIT) and its ExecStart; the message has the job result.",
  },
  OPDBUS_ERR_SYSTEMD_NO_INSTALL: {
    summary: 'A unit was declared enabled but has no [Install] section, so it cannot be enabled.',
    remedy: 'Add an [Install] section (e.g. WantedBy=multi-user.target) to its content, or remove `enabled`.',
  },
  OPDBUS_ERR_SYSTEMD_VENDOR_UNIT: {
    summary: 'A unit shipped by a package (not under /etc/systemd/system) was declared absent.',
    remedy: 'Packages own their units: declare it `masked: true` instead, or remove the package.',
  },
  OPDBUS_ERR_SYSTEMD_NOT_FOUND: {
    summary: 'A unit the state document names does not exist and the document gives no content for it.',
    remedy:
      'Give the unit its `content`, or correct its name (`opdbus query --plugin systemd` lists the units).',
  },
  OPDBUS_ERR_SYSTEMD_PROPERTY: {
    summary: 'A resource property does not apply to the unit type, or its value is not valid.',
    remedy:
      'Execution properties (CPUAffinity, NUMAPolicy, NUMAMask, Nice) apply to service, socket, mount and swap units; check the value.',
  },
  OPDBUS_ERR_SYSTEMD_CONFLICT: {
    summary:
      'The state document declares something contradictory (a masked unit with content, a unit both in units and timers).',
    remedy: 'Keep one declaration per unit; a masked unit cannot have content.',
  },
  OPDBUS_ERR_SYSTEMD_FILE: {
    summary: 'A unit file or drop-in could not be written or removed.',
    remedy: 'Check the path in the message: permissions, a read-only filesystem, or a wrong --root.',
  },
  OPDBUS_ERR_SYSTEMD_TIMER_INVALID: {
    summary: 'systemd did not accept a timer (no valid OnCalendar trigger after loading it).',
    remedy: 'Check the OnCalendar expressions with `systemd-analyze calendar EXPR`.',
  },
});
