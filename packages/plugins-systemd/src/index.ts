/**
 * @opdbus/plugins-systemd: systemd units (file content, drop-ins, enabled, masked, active,
 * resource properties such as CPUWeight, MemoryMax, CPUAffinity, NUMAPolicy, NUMAMask) and timers
 * as declared state for op-dbus, over D-Bus.
 *
 * @packageDocumentation
 */
export { systemdErrors } from './errors.js';
export { MANAGER_PATH, SYSTEMD_DEST, unitPath } from './manager.js';
export {
  createSystemdPlugin,
  systemdPlugin,
  type SystemdChange,
  type SystemdCheckpoint,
  type SystemdPlugin,
  type SystemdPluginOptions,
  type UnitCheckpoint,
} from './plugin.js';
export {
  PROPERTIES_DROP_IN,
  canonicalProperty,
  cgroupProperties,
  execProperties,
  indexesToMask,
  maskToIndexes,
  numaPolicies,
  parseIndexSet,
  parseSize,
  unitPropertiesSchema,
  type UnitProperties,
  type UnitPropertyName,
} from './properties.js';
export {
  UNIT_NAME_MAX,
  systemdSchema,
  unitNameProblem,
  unitSchema,
  unitTypes,
  type ObservedTimer,
  type ObservedUnit,
  type SystemdSection,
  type SystemdValue,
  type TimerTarget,
  type UnitSpec,
  type UnitTarget,
} from './schema.js';
export { MANAGED_MARKER, parseTimer, renderTimer, timerSchema, type TimerSpec } from './timers.js';
