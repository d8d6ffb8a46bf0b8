import { watch as watchFs } from 'node:fs';
import { join } from 'node:path';
import {
  OpdbusError,
  definePlugin,
  formatPath,
  lazySchema,
  packageVersion,
  type Change,
  type ChangeSpec,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { connectBus, type DbusConnection } from '@opdbus/dbus';
import { z } from 'zod';
import { PackageKit, pkFilter, pkFlag, pkInfo, type PkPackage, type PkProgress } from './packageKit.js';

/** One package in the `packages` section. */
export interface PackageEntry {
  /** `present` (default) or `absent`. */
  state?: 'present' | 'absent' | undefined;
  /** The exact version to have installed (as the archive spells it); any version when unset. */
  version?: string | undefined;
  /** Read-only: the version the repositories would install (apt's candidate; a scoped query reports it). */
  candidate?: string | null | undefined;
}

/** The `packages` section: package name → entry. */
export type PackagesSection = Record<string, PackageEntry>;

/** What `restore` needs: the installed version of each changed package (null: not installed). */
export type PackagesCheckpoint = { installed: Record<string, string | null> };

/**
 * The value of a packages change (its resource is the package name): the version installed
 * (`before`) or to install (`after`; null: whichever the repositories offer). A value of null
 * means not installed.
 */
export type PackageValue = { version: string | null };

/** A change of the packages plugin. */
export type PackagesChange = Change<PackageValue>;

/** The packages plugin, typed: its section, checkpoint and change values. */
export type PackagesPlugin = Plugin<PackagesSection, PackagesCheckpoint, PackageValue>;

const nameSchema = lazySchema(() =>
  z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9+.-]{1,127}$/,
      'a package name: lowercase letters, digits, + - . (as apt spells it)',
    ),
);

const entrySchema = lazySchema(() =>
  z.strictObject({
    state: z
      .enum(['present', 'absent'])
      .optional()
      .describe('Whether the package is installed (default present).'),
    version: z
      .string()
      .regex(/^[A-Za-z0-9.+~:-]{1,128}$/, 'a package version as the archive spells it, e.g. 1.2.3-1')
      .optional()
      .describe('The exact version to install, up or down; any installed version is fine when unset.'),
    candidate: z
      .string()
      .nullable()
      .optional()
      .describe(
        "Read-only: the version the repositories would install (apt's candidate), null when none; reported by a scoped query, ignored in a document.",
      ),
  }),
);

/** The zod schema of the `packages` section. */
export const packagesSchema: z.ZodType<PackagesSection> = lazySchema(() =>
  z
    .record(nameSchema, entrySchema)
    .describe('Installed packages through PackageKit: present, absent, or at a version.'),
);

/** Options of {@link createPackagesPlugin}. */
export interface PackagesPluginOptions {
  /** Install only packages from trusted (signed, or `[trusted=yes]`) repositories (default true). */
  onlyTrusted?: boolean;
  /** Progress of each PackageKit transaction (the CLI draws a bar from it). */
  onProgress?: (progress: PkProgress & { change: string }) => void;
  /** How long one transaction may take (default 15 minutes). */
  transactionTimeoutMs?: number;
}

const connect = (ctx: PluginContext): Promise<DbusConnection> =>
  connectBus({
    ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
    logger: ctx.logger,
  });

const pathOf = (name: string, field?: string): string =>
  formatPath(field === undefined ? ['plugins', 'packages', name] : ['plugins', 'packages', name, field]);

interface Resolved {
  installed: PkPackage | undefined;
  available: PkPackage[];
}

function group(packages: readonly PkPackage[], names: readonly string[]): Map<string, Resolved> {
  const out = new Map<string, Resolved>(names.map((n) => [n, { installed: undefined, available: [] }]));
  const seen = new Set<string>();
  for (const p of packages) {
    const entry = out.get(p.name);
    if (entry === undefined || seen.has(p.id)) continue;
    seen.add(p.id);
    if (p.info === pkInfo.installed) entry.installed = p;
    else if (!entry.available.some((a) => a.version === p.version)) entry.available.push(p);
  }
  return out;
}

/**
 * Create the packages plugin: PackageKit on the target's bus (`org.freedesktop.PackageKit`).
 * Resolve finds installed and offered versions; InstallPackages installs (a given version, up or
 * down), UpdatePackages moves to a version PackageKit lists as an update, RemovePackages removes
 * (never its reverse dependencies: that fails instead). `watch` follows dpkg's status file under
 * the target's root (inotify), so installs by apt or dpkg directly are seen too.
 */
export function createPackagesPlugin(options: PackagesPluginOptions = {}): PackagesPlugin {
  const trusted = options.onlyTrusted === false ? 0n : pkFlag.onlyTrusted;

  const resolve = async (pk: PackageKit, names: readonly string[]): Promise<Map<string, Resolved>> =>
    group(names.length === 0 ? [] : await pk.run('Resolve', 'tas', [pkFilter.none, [...names]]), names);

  /**
   * Whether the archive has `version` of a package. PackageKit's apt backend resolves names to
   * the installed and the candidate version only; other versions are found by their package id
   * (GetDetails fails for an id the archive does not have).
   */
  const hasVersion = async (
    pk: PackageKit,
    found: Resolved,
    name: string,
    version: string,
  ): Promise<PkPackage | undefined> => {
    const known = found.available.find((a) => a.version === version);
    if (known !== undefined) return known;
    const like = found.available[0] ?? found.installed;
    if (like === undefined) return undefined;
    const data = like.data.replace(/^(auto|manual):/, '').replace(/^installed$/, '');
    const id = `${name};${version};${like.arch};${data}`;
    try {
      const answered = await pk.detailIds([id]);
      return answered.some((a) => a.split(';')[1] === version)
        ? { ...like, info: pkInfo.available, id, version, data }
        : undefined;
    } catch (err) {
      if (err instanceof OpdbusError && err.code === 'OPDBUS_ERR_PACKAGES_TRANSACTION') return undefined;
      throw err;
    }
  };

  const runOptions = (ctx: PluginContext, change: string) => ({
    onProgress: (progress: PkProgress) => {
      ctx.logger.debug({ change, ...progress }, 'PackageKit progress');
      options.onProgress?.({ ...progress, change });
    },
    ...(options.transactionTimeoutMs === undefined ? {} : { timeoutMs: options.transactionTimeoutMs }),
    signal: ctx.signal,
  });

  /** Install `version` of `name` (the newest offered when undefined). */
  const installVersion = async (
    pk: PackageKit,
    ctx: PluginContext,
    name: string,
    version: string | undefined,
    resource: string,
  ): Promise<void> => {
    const found = (await resolve(pk, [name])).get(name)!;
    if (found.installed !== undefined && (version === undefined || found.installed.version === version))
      return;
    const wanted = version === undefined ? undefined : await hasVersion(pk, found, name, version);
    const candidates = version === undefined ? found.available : wanted === undefined ? [] : [wanted];
    if (candidates.length === 0) {
      throw new OpdbusError(
        version === undefined ? 'OPDBUS_ERR_PACKAGES_UNKNOWN' : 'OPDBUS_ERR_PACKAGES_VERSION',
        `${pathOf(name)}: the repositories offer ${version === undefined ? 'no version' : `no version ${version}`} of ${name}${found.available.length > 0 ? ` (they have ${found.available.map((a) => a.version).join(', ')})` : ''}.`,
        {
          data: {
            path: pathOf(name),
            name,
            version: version ?? null,
            available: found.available.map((a) => a.version),
          },
        },
      );
    }
    let target = candidates[0]!;
    if (version === undefined && candidates.length > 1) {
      const newest = await pk.run('Resolve', 'tas', [pkFilter.newest, [name]]);
      target = candidates.find((c) => newest.some((n) => n.id === c.id)) ?? target;
    }
    if (found.installed !== undefined) {
      const updates = await pk.run('GetUpdates', 't', [pkFilter.none]);
      if (updates.some((u) => u.id === target.id)) {
        await pk.run('UpdatePackages', 'tas', [trusted, [target.id]], runOptions(ctx, resource));
        return;
      }
    }
    await pk.run(
      'InstallPackages',
      'tas',
      [trusted | pkFlag.allowDowngrade, [target.id]],
      runOptions(ctx, resource),
    );
  };

  const remove = async (
    pk: PackageKit,
    ctx: PluginContext,
    name: string,
    resource: string,
  ): Promise<void> => {
    const found = (await resolve(pk, [name])).get(name)!;
    if (found.installed === undefined) return;
    await pk.run(
      'RemovePackages',
      'tasbb',
      [trusted, [found.installed.id], false, false],
      runOptions(ctx, resource),
    );
  };

  return definePlugin<PackagesSection, PackagesCheckpoint, PackageValue>({
    name: 'packages',
    version: packageVersion(import.meta.url),
    description: 'Installed packages through PackageKit over D-Bus: present, absent, or at a version.',
    schema: packagesSchema,

    async probe(ctx) {
      try {
        await using bus = await connect(ctx);
        return { available: true, detail: `PackageKit ${await new PackageKit(bus, ctx.logger).version()}` };
      } catch (err) {
        return {
          available: false,
          reason: `PackageKit is not reachable on the bus: ${(err as Error).message}`,
        };
      }
    },

    async query(ctx, queryOptions) {
      await using bus = await connect(ctx);
      const pk = new PackageKit(bus, ctx.logger);
      const scope = queryOptions?.scope;
      const out: PackagesSection = {};
      if (scope === undefined) {
        const installed = await pk.run('GetPackages', 't', [pkFilter.installed]);
        for (const p of installed.sort((a, b) => a.name.localeCompare(b.name)))
          if (p.info === pkInfo.installed) out[p.name] = { state: 'present', version: p.version };
        return out;
      }
      const names = Object.keys(scope).sort();
      const resolved = await resolve(pk, names);
      for (const name of names) {
        const want = scope[name]!;
        const found = resolved.get(name)!;
        const available = found.available.map((a) => a.version);
        const candidate = available[0] ?? null;
        if ((want.state ?? 'present') === 'present') {
          if (found.installed === undefined && candidate === null) {
            throw new OpdbusError(
              'OPDBUS_ERR_PACKAGES_UNKNOWN',
              `${pathOf(name)}: no package ${name} is installed or offered by the configured repositories; check the name and that its repository is configured and refreshed.`,
              { data: { path: pathOf(name), name } },
            );
          }
          if (
            want.version !== undefined &&
            want.version !== found.installed?.version &&
            (await hasVersion(pk, found, name, want.version)) === undefined
          ) {
            throw new OpdbusError(
              'OPDBUS_ERR_PACKAGES_VERSION',
              `${pathOf(name, 'version')}: version ${want.version} of ${name} is not installed and not in the repositories (they would install ${candidate ?? 'nothing'}${found.installed === undefined ? '' : `; ${found.installed.version} is installed`}).`,
              { data: { path: pathOf(name, 'version'), name, version: want.version, available } },
            );
          }
        }
        out[name] =
          found.installed === undefined
            ? { state: 'absent', candidate }
            : { state: 'present', version: found.installed.version, candidate };
      }
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec<PackageValue>[] = [];
      for (const name of Object.keys(desired).sort()) {
        const want = desired[name]!;
        const have = observed[name];
        const installed = have?.state === 'present' ? (have.version ?? null) : null;
        if ((want.state ?? 'present') === 'absent') {
          if (installed !== null)
            changes.push({
              resource: name,
              op: 'delete',
              before: { version: installed },
              after: null,
              summary: `remove ${name} ${installed}`,
            });
          continue;
        }
        if (installed === null) {
          changes.push({
            resource: name,
            op: 'create',
            before: null,
            after: { version: want.version ?? null },
            summary: `install ${name}${want.version === undefined ? '' : ` ${want.version}`}`,
          });
        } else if (want.version !== undefined && want.version !== installed) {
          changes.push({
            resource: name,
            op: 'update',
            before: { version: installed },
            after: { version: want.version },
            summary: `change ${name} ${installed} → ${want.version}`,
          });
        }
      }
      return changes;
    },

    async apply(change, ctx) {
      await using bus = await connect(ctx);
      const pk = new PackageKit(bus, ctx.logger);
      if (change.after === null) await remove(pk, ctx, change.resource, change.resource);
      else {
        await installVersion(pk, ctx, change.resource, change.after.version ?? undefined, change.resource);
      }
    },

    async checkpoint(ctx, changes) {
      await using bus = await connect(ctx);
      const names = [...new Set(changes.map((c) => c.resource))];
      const resolved = await resolve(new PackageKit(bus, ctx.logger), names);
      const installed: Record<string, string | null> = {};
      for (const name of names) installed[name] = resolved.get(name)!.installed?.version ?? null;
      return { installed };
    },

    async restore(token, ctx) {
      await using bus = await connect(ctx);
      const pk = new PackageKit(bus, ctx.logger);
      const failures: string[] = [];
      // Removals first: a package this plan added may be what keeps apt from doing anything else.
      const order = Object.entries(token.installed).sort(
        ([, a], [, b]) => (a === null ? 0 : 1) - (b === null ? 0 : 1),
      );
      for (const [name, version] of order) {
        const now = (await resolve(pk, [name])).get(name)!;
        if ((now.installed?.version ?? null) === version) continue;
        try {
          if (version === null) await remove(pk, ctx, name, `restore ${name}`);
          else if ((await hasVersion(pk, now, name, version)) === undefined) {
            failures.push(
              `${name}: version ${version} is not in the repositories any more, so it cannot be reinstalled; ${now.installed === undefined ? 'it stays removed' : `${now.installed.version} stays installed`}`,
            );
          } else await installVersion(pk, ctx, name, version, `restore ${name}`);
        } catch (err) {
          failures.push(`${name}: ${(err as Error).message}`);
        }
      }
      if (failures.length > 0) {
        throw new OpdbusError(
          'OPDBUS_ERR_PACKAGES_RESTORE',
          `Could not put packages back: ${failures.join('; ')}.`,
          {
            data: { failures },
          },
        );
      }
    },

    watch(ctx, onEvent: (event: WatchEvent) => void) {
      // dpkg replaces /var/lib/dpkg/status (rename) after every change, whoever makes it.
      const dir = join(ctx.target.root ?? '/', 'var/lib/dpkg');
      const watcher = watchFs(dir, (_event, file) => {
        if (file !== 'status') return;
        onEvent({
          plugin: 'packages',
          resource: 'dpkg',
          detail: `${join(dir, 'status')} changed (a package was installed, removed or changed)`,
          raw: { file: join(dir, 'status') },
        });
      });
      watcher.on('error', (err) => ctx.logger.warn({ err, dir }, 'packages watch failed'));
      return Promise.resolve(() => watcher.close());
    },
  });
}

/** The packages plugin with default options. */
export const packagesPlugin: PackagesPlugin = createPackagesPlugin();
