import type { AnyPlugin } from '@opdbus/core';
import { createDbusServicesPlugin } from '@opdbus/dbus';
import { firewallPlugin } from '@opdbus/plugins-firewall';
import { containersPlugin } from '@opdbus/plugins-containers';
import { hostnamePlugin } from '@opdbus/plugins-hostname';
import { networkPlugin } from '@opdbus/plugins-network';
import { numaPlugin } from '@opdbus/plugins-numa';
import { ovsPlugin } from '@opdbus/plugins-ovs';
import { sessionsPlugin } from '@opdbus/plugins-sessions';
import { sysctlPlugin } from '@opdbus/plugins-sysctl';
import { systemdPlugin } from '@opdbus/plugins-systemd';
import { timedatePlugin } from '@opdbus/plugins-timedate';
import { wireguardPlugin } from '@opdbus/plugins-wireguard';

/** Options of {@link builtinPlugins}. */
export interface BuiltinPluginsOptions {
  /**
   * D-Bus services whose properties a plain query of the `dbus` section lists (`opdbus query
   * --dbus-service NAME`). A document's `dbus` section names its services itself.
   */
  dbusServices?: readonly string[];
}

/**
 * The plugins op-dbus ships, in the order their sections are listed and planned: what the CLI, the
 * daemon and the MCP server register unless told otherwise.
 *
 * @example
 * ```ts
 * const registry = new PluginRegistry(builtinPlugins());
 * ```
 */
export function builtinPlugins(options: BuiltinPluginsOptions = {}): AnyPlugin[] {
  return [
    sysctlPlugin,
    // Before network: a plan orders plugins by registration, and routes may go through a
    // WireGuard interface this plugin creates in the same transaction (the mesh's routes do).
    wireguardPlugin,
    networkPlugin,
    firewallPlugin,
    ovsPlugin,
    // After network and ovs: a machine's veth goes into a bridge they create in the same plan.
    containersPlugin,
    systemdPlugin,
    numaPlugin,
    hostnamePlugin,
    timedatePlugin,
    sessionsPlugin,
    createDbusServicesPlugin(options.dbusServices === undefined ? {} : { services: options.dbusServices }),
  ];
}
