/**
 * @opdbus/plugins-numa: NUMA-aware placement of systemd units and systemd-nspawn machines for
 * op-dbus.
 *
 * @packageDocumentation
 */
export {
  createNumaPlugin,
  numaPlugin,
  resolveNumaSection,
  type NumaPluginOptions,
  type ResolvedNumaSection,
} from './plugin.js';
export { machineUnit, numaMachinesSchema, numaPluginSchema, type NumaPluginSection } from './schema.js';
