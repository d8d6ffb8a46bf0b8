import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { AnyPlugin } from '@opdbus/core';
import * as dbus from '@opdbus/plugins-dbus';
import * as firewall from '@opdbus/plugins-firewall';
import * as containers from '@opdbus/plugins-containers';
import * as hostname from '@opdbus/plugins-hostname';
import * as network from '@opdbus/plugins-network';
import * as numa from '@opdbus/plugins-numa';
import * as ovs from '@opdbus/plugins-ovs';
import * as pci from '@opdbus/plugins-pci';
import * as dns from '@opdbus/plugins-dns';
import * as packagesPlugin from '@opdbus/plugins-packages';
import type { PackagesPluginOptions } from '@opdbus/plugins-packages';
import * as sessions from '@opdbus/plugins-sessions';
import * as ssh from '@opdbus/plugins-ssh';
import * as sysctl from '@opdbus/plugins-sysctl';
import * as systemd from '@opdbus/plugins-systemd';
import * as timedate from '@opdbus/plugins-timedate';
import * as users from '@opdbus/plugins-users';
import * as wireguard from '@opdbus/plugins-wireguard';
import { addPluginPackages, readPluginPackage, type LoadedPlugin } from './loader.js';

const require = createRequire(import.meta.url);

/** Options of {@link builtinPlugins}. */
export interface BuiltinPluginsOptions {
  /**
   * D-Bus services whose properties a plain query of the `dbus` section lists (`opdbus query
   * --dbus-service NAME`). A document's `dbus` section names its services itself.
   */
  dbusServices?: readonly string[];
  /**
   * Progress of the packages plugin's PackageKit transactions (the CLI draws a bar from it on a
   * terminal).
   */
  packagesProgress?: PackagesPluginOptions['onProgress'];
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
  return builtinPluginPackages(options).map((l) => l.plugin);
}

/**
 * The built-in plugins with the packages they come from. They go through the same path as plugin
 * packages from outside (see `loadPlugins`): each package's `opdbus` field (contract version,
 * export name), its factory called with its options, every plugin checked (contract, schema) and
 * names checked for clashes; only the import is static, so that this stays synchronous.
 */
export function builtinPluginPackages(options: BuiltinPluginsOptions = {}): LoadedPlugin[] {
  const packages: Array<[string, Record<string, unknown>, Record<string, unknown>?]> = [
    ['@opdbus/plugins-sysctl', sysctl],
    // Before network: a plan orders plugins by registration, and routes may go through a
    // WireGuard interface this plugin creates in the same transaction (the mesh's routes do).
    ['@opdbus/plugins-wireguard', wireguard],
    ['@opdbus/plugins-network', network],
    ['@opdbus/plugins-firewall', firewall],
    ['@opdbus/plugins-ovs', ovs],
    // After network and ovs: a machine's veth goes into a bridge they create in the same plan.
    ['@opdbus/plugins-containers', containers],
    ['@opdbus/plugins-systemd', systemd],
    ['@opdbus/plugins-numa', numa],
    ['@opdbus/plugins-hostname', hostname],
    ['@opdbus/plugins-timedate', timedate],
    ['@opdbus/plugins-sessions', sessions],
    ['@opdbus/plugins-pci', pci],
    ['@opdbus/plugins-dns', dns],
    [
      '@opdbus/plugins-packages',
      packagesPlugin,
      options.packagesProgress === undefined ? {} : { onProgress: options.packagesProgress },
    ],
    // Users before ssh: keys are written for users the same plan creates.
    ['@opdbus/plugins-users', users],
    ['@opdbus/plugins-ssh', ssh],
    [
      '@opdbus/plugins-dbus',
      dbus,
      options.dbusServices === undefined ? {} : { services: options.dbusServices },
    ],
  ];
  const loaded: LoadedPlugin[] = [];
  addPluginPackages(
    loaded,
    packages.map(([name, module, factoryOptions]) => ({
      pkg: readPluginPackage(dirname(require.resolve(`${name}/package.json`)), name),
      module,
      ...(factoryOptions === undefined ? {} : { options: factoryOptions }),
    })),
  );
  return loaded;
}
