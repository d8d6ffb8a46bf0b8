/**
 * @opdbus/plugins-sysctl: kernel parameters (/proc/sys) as declared state for op-dbus.
 *
 * @packageDocumentation
 */
export { sysctlErrors } from './errors.js';
export { canonicalKey, comparableValue, isNamespacedKey, keyPath, printedValue } from './keys.js';
export {
  createSysctlPlugin,
  sysctlPlugin,
  sysctlSchema,
  volatileKeys,
  type SysctlCheckpoint,
  type SysctlPluginOptions,
  type SysctlSection,
} from './plugin.js';
