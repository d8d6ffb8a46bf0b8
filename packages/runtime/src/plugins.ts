// Entry point `@opdbus/runtime/builtin-plugins`: every built-in plugin imported statically, for
// synchronous use (tests, tools). Not part of the main entry, which loads plugins on demand.
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
import * as sessions from '@opdbus/plugins-sessions';
import * as ssh from '@opdbus/plugins-ssh';
import * as sysctl from '@opdbus/plugins-sysctl';
import * as systemd from '@opdbus/plugins-systemd';
import * as timedate from '@opdbus/plugins-timedate';
import * as users from '@opdbus/plugins-users';
import * as wireguard from '@opdbus/plugins-wireguard';
import type { BuiltinPluginsOptions } from './builtins.js';
import { addPluginPackages, readPluginPackage, type LoadedPlugin } from './loader.js';

export type { BuiltinPluginsOptions };

const require = createRequire(import.meta.url);

/**
 * The plugins op-dbus ships, in the order their sections are listed and planned, all imported up
 * front (this entry point, `@opdbus/runtime/builtin-plugins`, imports every built-in plugin when it
 * is imported: about 30 MB; the apps use `loadBuiltinPlugins(names)` of `@opdbus/runtime`, which
 * imports only the named ones).
 *
 * @example
 * ```ts
 * import { builtinPlugins } from '@opdbus/runtime/builtin-plugins';
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
