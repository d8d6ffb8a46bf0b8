/**
 * @opdbus/plugins-numa: NUMA-aware placement of systemd units for op-dbus.
 *
 * @packageDocumentation
 */
export { createNumaPlugin, numaPlugin, type NumaPluginOptions } from './plugin.js';
