import type { TargetSpec } from '@opdbus/core';

/**
 * What every op-dbus app is told on its command line (or config file): where its state lives, what
 * it targets, how much it logs. The CLI's global options, the daemon's and the MCP server's.
 */
export interface RuntimeOptions {
  /** State directory: journal, lock, ledger, snapshots (default {@link defaultStateDir}). */
  stateDir: string;
  /** Target network namespace: a name under /run/netns, a path, or `pid:N`. */
  netns?: string;
  /** D-Bus address of the target bus (default: the system bus). */
  bus?: string;
  /** OVSDB address (default: Open vSwitch's socket). */
  ovsdb?: string;
  /** Root directory files are read and written under (default `/`). */
  root?: string;
  /** pino level: trace, debug, info, warn, error, fatal, silent. */
  logLevel: string;
  /** Plugin packages to load besides the built-in ones (`--plugin SPEC`): npm names or directories. */
  plugin?: string[];
  /** The configuration file (`--config FILE`; default /etc/opdbus/config.yaml when it exists). */
  config?: string;
}

/** Where op-dbus apps read their configuration file from unless `--config FILE` says otherwise. */
export const defaultConfigPath = '/etc/opdbus/config.yaml';

/** The default state directory: `$OPDBUS_STATE_DIR`, else `/var/lib/opdbus`. */
export const defaultStateDir = process.env.OPDBUS_STATE_DIR ?? '/var/lib/opdbus';

/**
 * The engine's target described by the options.
 *
 * @example
 * ```ts
 * targetOf({ stateDir: '/tmp/s', logLevel: 'info', netns: 'lab' }); // { netns: 'lab' }
 * ```
 */
export function targetOf(
  options: Omit<RuntimeOptions, 'stateDir' | 'logLevel' | 'plugin' | 'config'>,
): TargetSpec {
  const target: TargetSpec = {};
  if (options.netns !== undefined) target.netns = options.netns;
  if (options.bus !== undefined) target.busAddress = options.bus;
  if (options.ovsdb !== undefined) target.ovsdbAddress = options.ovsdb;
  if (options.root !== undefined) target.root = options.root;
  return target;
}

/** Whether a spec names a directory rather than an npm package. */
export function isPathSpec(spec: string): boolean {
  return (
    spec === '.' ||
    spec === '..' ||
    spec.startsWith('/') ||
    spec.startsWith('./') ||
    spec.startsWith('../') ||
    spec.startsWith('~/') ||
    spec.startsWith('file:')
  );
}
