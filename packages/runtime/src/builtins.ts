import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { AnyPlugin } from '@opdbus/core';
import type { PackagesPluginOptions } from '@opdbus/plugins-packages';
import type { LoadedPlugin } from './loader.js';

const require = createRequire(import.meta.url);

/** Options of the built-in plugins (see {@link loadBuiltinPlugins}). */
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

type Loader = (options: BuiltinPluginsOptions) => Promise<AnyPlugin>;

/** The package each built-in plugin comes from, by section name. */
const packageOf = (name: string): string => `@opdbus/plugins-${name}`;

/** The options a built-in plugin's factory is called with (the `opdbus` field of its package). */
function factoryOptions(name: string, options: BuiltinPluginsOptions): Record<string, unknown> {
  if (name === 'packages' && options.packagesProgress !== undefined)
    return { onProgress: options.packagesProgress };
  if (name === 'dbus' && options.dbusServices !== undefined) return { services: options.dbusServices };
  return {};
}

/** Each built-in plugin's module, imported only when asked for (one chunk each in the CLI bundle). */
const modules = {
  sysctl: () => import('@opdbus/plugins-sysctl'),
  wireguard: () => import('@opdbus/plugins-wireguard'),
  network: () => import('@opdbus/plugins-network'),
  firewall: () => import('@opdbus/plugins-firewall'),
  ovs: () => import('@opdbus/plugins-ovs'),
  containers: () => import('@opdbus/plugins-containers'),
  systemd: () => import('@opdbus/plugins-systemd'),
  numa: () => import('@opdbus/plugins-numa'),
  hostname: () => import('@opdbus/plugins-hostname'),
  timedate: () => import('@opdbus/plugins-timedate'),
  sessions: () => import('@opdbus/plugins-sessions'),
  pci: () => import('@opdbus/plugins-pci'),
  dns: () => import('@opdbus/plugins-dns'),
  packages: () => import('@opdbus/plugins-packages'),
  users: () => import('@opdbus/plugins-users'),
  ssh: () => import('@opdbus/plugins-ssh'),
  dbus: () => import('@opdbus/plugins-dbus'),
} as const;

/**
 * The built-in plugins by section name, in planning order (the order of `builtinPlugins()`),
 * each imported only when it is asked for: a command that needs one plugin loads one.
 */
const loaders: ReadonlyArray<readonly [string, Loader]> = [
  ['sysctl', async () => (await modules.sysctl()).sysctlPlugin],
  ['wireguard', async () => (await modules.wireguard()).wireguardPlugin],
  ['network', async () => (await modules.network()).networkPlugin],
  ['firewall', async () => (await modules.firewall()).firewallPlugin],
  ['ovs', async () => (await modules.ovs()).ovsPlugin],
  ['containers', async () => (await modules.containers()).containersPlugin],
  ['systemd', async () => (await modules.systemd()).systemdPlugin],
  ['numa', async () => (await modules.numa()).numaPlugin],
  ['hostname', async () => (await modules.hostname()).hostnamePlugin],
  ['timedate', async () => (await modules.timedate()).timedatePlugin],
  ['sessions', async () => (await modules.sessions()).sessionsPlugin],
  ['pci', async () => (await modules.pci()).pciPlugin],
  ['dns', async () => (await modules.dns()).dnsPlugin],
  [
    'packages',
    async (options) =>
      (await modules.packages()).createPackagesPlugin(
        options.packagesProgress === undefined ? {} : { onProgress: options.packagesProgress },
      ),
  ],
  ['users', async () => (await modules.users()).usersPlugin],
  ['ssh', async () => (await modules.ssh()).sshPlugin],
  [
    'dbus',
    async (options) =>
      (await modules.dbus()).createDbusServicesPlugin(
        options.dbusServices === undefined ? {} : { services: options.dbusServices },
      ),
  ],
];

/** The section names of the built-in plugins, in planning order. */
export const builtinPluginNames: readonly string[] = loaders.map(([name]) => name);

/**
 * Import the built-in plugins named in `names` (all of them when undefined), in planning order.
 * Names that are not built in are left out: the registry reports them as unknown plugins where a
 * document or command uses them. Same plugins as `builtinPlugins()`, without loading the
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

/**
 * Like {@link loadBuiltinPlugins}, with the packages they come from, through the same path as
 * plugin packages from outside (see `loadPlugins`): each package's `opdbus` field (contract
 * version, export name), its factory called with its options, every plugin checked (contract)
 * and names checked for clashes. What `resolvePlugins` starts from.
 *
 * @example
 * ```ts
 * const loaded = await loadBuiltinPluginPackages(['network']);
 * console.log(loaded.map((l) => `${l.plugin.name} from ${l.package}`));
 * ```
 */
export async function loadBuiltinPluginPackages(
  names?: readonly string[],
  options: BuiltinPluginsOptions = {},
): Promise<LoadedPlugin[]> {
  // The loader's checks on demand: a command that loads plugins by name alone does without them.
  const { addPluginPackages, readPluginPackage } = await import('./loader.js');
  const wanted = builtinPluginNames.filter((n) => names === undefined || names.includes(n));
  const imported = await Promise.all(
    wanted.map((name) => modules[name as keyof typeof modules]() as Promise<Record<string, unknown>>),
  );
  const loaded: LoadedPlugin[] = [];
  addPluginPackages(
    loaded,
    wanted.map((name, i) => ({
      pkg: readPluginPackage(dirname(require.resolve(`${packageOf(name)}/package.json`)), packageOf(name)),
      module: imported[i]!,
      options: factoryOptions(name, options),
    })),
  );
  return loaded;
}
