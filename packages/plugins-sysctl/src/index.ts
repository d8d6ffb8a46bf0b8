/**
 * @opdbus/plugins-sysctl: kernel parameters (/proc/sys) as declared state for op-dbus.
 *
 * @packageDocumentation
 */
export { sysctlErrors } from './errors.js';
export {
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  canonicalKey,
  comparableValue,
  isNamespacedKey,
  keyPath,
  keyRelativePath,
  printedValue,
  sysctlKeyProblem,
} from './keys.js';
export {
  createSysctlPlugin,
  sysctlPlugin,
  sysctlSchema,
  volatileKeys,
  type SysctlChange,
  type SysctlCheckpoint,
  type SysctlPlugin,
  type SysctlPluginOptions,
  type SysctlSection,
  type SysctlValue,
} from './plugin.js';
