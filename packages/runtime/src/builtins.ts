import type { AnyPlugin } from '@opdbus/core';
import type { BuiltinPluginsOptions } from './plugins.js';

type Loader = (options: BuiltinPluginsOptions) => Promise<AnyPlugin>;

/**
 * The built-in plugins by section name, in planning order (the order of {@link builtinPlugins}),
 * each imported only when it is asked for: a command that needs one plugin loads one.
 */
const loaders: ReadonlyArray<readonly [string, Loader]> = [
  ['sysctl', async () => (await import('@opdbus/plugins-sysctl')).sysctlPlugin],
  ['wireguard', async () => (await import('@opdbus/plugins-wireguard')).wireguardPlugin],
  ['network', async () => (await import('@opdbus/plugins-network')).networkPlugin],
  ['firewall', async () => (await import('@opdbus/plugins-firewall')).firewallPlugin],
  ['ovs', async () => (await import('@opdbus/plugins-ovs')).ovsPlugin],
  ['containers', async () => (await import('@opdbus/plugins-containers')).containersPlugin],
  ['systemd', async () => (await import('@opdbus/plugins-systemd')).systemdPlugin],
  ['numa', async () => (await import('@opdbus/plugins-numa')).numaPlugin],
  ['hostname', async () => (await import('@opdbus/plugins-hostname')).hostnamePlugin],
  ['timedate', async () => (await import('@opdbus/plugins-timedate')).timedatePlugin],
  ['sessions', async () => (await import('@opdbus/plugins-sessions')).sessionsPlugin],
  ['pci', async () => (await import('@opdbus/plugins-pci')).pciPlugin],
  ['dns', async () => (await import('@opdbus/plugins-dns')).dnsPlugin],
  [
    'packages',
    async (options) =>
      (await import('@opdbus/plugins-packages')).createPackagesPlugin(
        options.packagesProgress === undefined ? {} : { onProgress: options.packagesProgress },
      ),
  ],
  ['users', async () => (await import('@opdbus/plugins-users')).usersPlugin],
  ['ssh', async () => (await import('@opdbus/plugins-ssh')).sshPlugin],
  [
    'dbus',
    async (options) =>
      (await import('@opdbus/plugins-dbus')).createDbusServicesPlugin(
        options.dbusServices === undefined ? {} : { services: options.dbusServices },
      ),
  ],
];

/** The section names of the built-in plugins, in planning order. */
export const builtinPluginNames: readonly string[] = loaders.map(([name]) => name);

/**
 * Import the built-in plugins named in `names` (all of them when undefined), in planning order.
 * Names that are not built in are left out: the registry reports them as unknown plugins where a
 * document or command uses them. Same plugins as {@link builtinPlugins}, without loading the
 * others: `opdbus query --plugin network` loads the network plugin only.
 *
 * @example
 * ```ts
 * const registry = new PluginRegistry(await loadBuiltinPlugins(['sysctl', 'network']));
 * ```
 */
export async function loadBuiltinPlugins(
  names?: readonly string[],
  options: BuiltinPluginsOptions = {},
): Promise<AnyPlugin[]> {
  const wanted = names === undefined ? undefined : new Set(names);
  return Promise.all(
    loaders.filter(([name]) => wanted === undefined || wanted.has(name)).map(([, load]) => load(options)),
  );
}
