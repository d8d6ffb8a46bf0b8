import {
  OpdbusError,
  definePlugin,
  formatPath,
  lazySchema,
  quoteValue,
  packageVersion,
  type Change,
  type ChangeSpec,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { z } from 'zod';
import {
  MAX_VALUE_BYTES,
  canonicalKey,
  comparableValue,
  isNamespacedKey,
  interfaceOfKey,
  keysResetBy,
  sysctlKeyProblem,
} from './keys.js';
import { ProcSys } from './procSys.js';

/** The `sysctl` section: kernel parameter → value, e.g. `{ "net.ipv4.ip_forward": 1 }`. */
export type SysctlSection = Record<string, string | number>;

/**
 * The value of a sysctl change (`before` / `after`): the key's value as sysctl prints it (a number
 * in the document is written as its decimal text); `before` is null when the key could not be read
 * (a key of an interface that does not exist yet).
 */
export type SysctlValue = string;

/** A change of the sysctl plugin: its resource is the canonical key. */
export type SysctlChange = Change<SysctlValue>;

/** The sysctl plugin, typed: its section, checkpoint and change values. */
export type SysctlPlugin = Plugin<SysctlSection, SysctlCheckpoint, SysctlValue>;

/** The checkpoint: printed values of the keys a plan changes. */
export type SysctlCheckpoint = {
  values: Record<string, string>;
  /**
   * Per-interface keys whose interface did not exist at the checkpoint (the same document's
   * network section creates it): nothing to restore; undoing the creation removes them.
   */
  absent?: string[];
};

const keySchema = lazySchema(() =>
  z.string().superRefine((key, ctx) => {
    const problem = sysctlKeyProblem(key);
    if (problem !== undefined)
      ctx.addIssue({ code: 'custom', message: `a sysctl key such as net.ipv4.ip_forward (${problem})` });
  }),
);

const valueSchema = lazySchema(() =>
  z.union(
    [
      z.string().refine((value) => Buffer.byteLength(value, 'utf8') <= MAX_VALUE_BYTES, {
        error: (issue) =>
          `a sysctl value fits one page: at most ${MAX_VALUE_BYTES} bytes, this one has ${Buffer.byteLength(String(issue.input), 'utf8')}`,
      }),
      z.number().finite(),
    ],
    {
      error: (issue) =>
        `expected a string or a number for a sysctl value, got ${issue.input === null ? 'null' : typeof issue.input}`,
    },
  ),
);

/** The zod schema of the `sysctl` section. */
export const sysctlSchema: z.ZodType<SysctlSection> = lazySchema(() =>
  z
    .record(keySchema, valueSchema)
    .describe(
      'Kernel parameters under /proc/sys, by sysctl(8) name, e.g. "net.ipv4.ip_forward": 1. Values compare as sysctl prints them; whitespace between fields is free.',
    ),
);

/**
 * Writable keys whose value changes on its own (the kernel moves them): left out of a query
 * unless asked (`all`) and never reported as drift. Read-only keys (counters, random values,
 * reports) are recognised by their mode bits and need no list; the read-only ones below stay
 * listed for kernels that give them other modes.
 */
export const volatileKeys: ReadonlySet<string> = new Set([
  'fs.dentry-state',
  'fs.file-nr',
  'fs.inode-nr',
  'fs.inode-state',
  'fs.quota.allocated_dquots',
  'fs.quota.cache_hits',
  'fs.quota.drops',
  'fs.quota.free_dquots',
  'fs.quota.lookups',
  'fs.quota.reads',
  'fs.quota.syncs',
  'fs.quota.writes',
  'kernel.hung_task_warnings',
  'kernel.ns_last_pid',
  // Lowered by the kernel itself when perf interrupts take too long.
  'kernel.perf_event_max_sample_rate',
  'kernel.perf_cpu_time_max_percent',
  'kernel.pty.nr',
  'kernel.random.boot_id',
  'kernel.random.entropy_avail',
  'kernel.random.uuid',
  'net.netfilter.nf_conntrack_count',
]);

/** Options of {@link createSysctlPlugin}. */
export interface SysctlPluginOptions {
  /** Root of the sysctl tree (default /proc/sys). */
  root?: string;
  /** Poll interval of `watch` in milliseconds (default 1000). */
  watchIntervalMs?: number;
  /** Keys `watch` polls (default: all readable keys; `net.*` in a network namespace). */
  watchKeys?: readonly string[];
}

const READ_SKIP = new Set(['EACCES', 'EPERM', 'EIO', 'EINVAL', 'ENOENT', 'EOPNOTSUPP', 'ENODEV', 'ENXIO']);

/**
 * Create the sysctl plugin. It reads and writes /proc/sys directly (no sysctl(8) process).
 *
 * In a network namespace (`--netns`) only `net.*` keys are managed: every other key is global to
 * the host, and touching it would leave the namespace. `watch` polls (the kernel has no change
 * notification for most sysctl files), every `watchIntervalMs`.
 */
export function createSysctlPlugin(options: SysctlPluginOptions = {}): SysctlPlugin {
  const root = options.root ?? '/proc/sys';
  const procSys = (ctx: PluginContext): ProcSys => new ProcSys(ctx.netns, root);

  /**
   * A per-interface key whose interface does not exist (yet): the key's family directory exists
   * (`net.ipv4.conf`) but not the interface's. Such a key is planned after the network plugin's
   * change of that link (`dependsOn`), for a document that creates the interface and sets its keys.
   */
  const waitsForInterface = (sys: ProcSys, key: string): string | undefined => {
    const iface = interfaceOfKey(key);
    if (iface === undefined) return undefined;
    if (!sys.stat(iface.directory).directory) return undefined;
    return sys.stat(`${iface.directory}.${iface.name.replaceAll('.', '/')}`).exists ? undefined : iface.name;
  };

  /** Check a document key: it exists, is readable and writable, and (in a netns) is namespaced. */
  const resolveKey = (sys: ProcSys, ctx: PluginContext, key: string): string => {
    const canonical = canonicalKey(key);
    const path = formatPath(['plugins', 'sysctl', key]);
    if (ctx.netns !== undefined && !isNamespacedKey(canonical)) {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSCTL_NOT_NAMESPACED',
        `${path}: ${canonical} is not per network namespace, so setting it while targeting namespace "${ctx.netns.name}" would change the whole host; only net.* keys can be managed with --netns.`,
        { data: { path, key: canonical, netns: ctx.netns.name } },
      );
    }
    const stat = sys.stat(canonical);
    if (!stat.exists && waitsForInterface(sys, canonical) !== undefined) return canonical;
    if (!stat.exists || stat.directory) {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSCTL_UNKNOWN_KEY',
        `${path}: no sysctl key ${canonical} on this kernel${ctx.netns ? ` (in namespace "${ctx.netns.name}")` : ''}${stat.directory ? ' (it is a directory of keys)' : ''}; check the name with \`opdbus query --plugin sysctl\`.`,
        { data: { path, key: canonical } },
      );
    }
    if (!stat.readable) {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSCTL_WRITE_ONLY',
        `${path}: ${canonical} is write-only (an action, not a state) and cannot be declared; remove it from the document.`,
        {
          data: { path, key: canonical },
        },
      );
    }
    if (!stat.writable) {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSCTL_READ_ONLY',
        `${path}: ${canonical} is read-only (the kernel reports it; nobody can set it${ctx.netns ? ` in namespace "${ctx.netns.name}"` : ''}), so it cannot be declared; remove it from the document (\`opdbus query\` leaves such keys out unless given --all).`,
        { data: { path, key: canonical } },
      );
    }
    return canonical;
  };

  /**
   * Read keys in one batch. With `settableOnly`, keys the kernel does not let anyone set (mode
   * without a write bit) are left out.
   */
  const readAll = (
    sys: ProcSys,
    keys: readonly string[],
    ctx: PluginContext,
    settableOnly = false,
  ): Record<string, string> => {
    const out: Record<string, string> = {};
    const results = sys.readMany(keys);
    for (const [i, key] of keys.entries()) {
      const result = results[i]!;
      if ('value' in result) {
        if (!settableOnly || result.writable) out[key] = result.value;
      } else if (READ_SKIP.has(result.errno)) {
        ctx.logger.trace({ key, code: result.errno }, 'sysctl key not readable; skipped');
      } else {
        throw new OpdbusError(
          'OPDBUS_ERR_SYSCTL_READ',
          `Cannot read sysctl ${key}: ${result.error.message}.`,
          { data: { key, errno: result.errno }, cause: result.error },
        );
      }
    }
    return out;
  };

  return definePlugin<SysctlSection, SysctlCheckpoint, SysctlValue>({
    name: 'sysctl',
    version: packageVersion(import.meta.url),
    description: 'Kernel parameters (/proc/sys), by sysctl name. Only net.* keys inside a network namespace.',
    schema: sysctlSchema,

    probe(ctx) {
      try {
        const sys = procSys(ctx);
        const stat = sys.stat(ctx.netns === undefined ? 'kernel.ostype' : 'net.core.somaxconn');
        return Promise.resolve(
          stat.exists
            ? { available: true, detail: root }
            : { available: false, reason: `${root} is not mounted` },
        );
      } catch (err) {
        return Promise.resolve({
          available: false,
          reason: `${root} cannot be read: ${(err as Error).message}`,
        });
      }
    },

    query(ctx, queryOptions) {
      return Promise.resolve().then(() => {
        const sys = procSys(ctx);
        if (queryOptions?.scope !== undefined) {
          // Keys of interfaces that do not exist yet are absent from the observed state.
          const keys = Object.keys(queryOptions.scope)
            .map((key) => resolveKey(sys, ctx, key))
            .filter((key) => waitsForInterface(sys, key) === undefined);
          const values: SysctlSection = {};
          for (const [key, value] of Object.entries(readAll(sys, keys, ctx))) values[key] = value;
          // A key that exists but could not be read is reported by resolveKey; reading it failed transiently otherwise.
          for (const key of keys) {
            if (!(key in values))
              throw new OpdbusError('OPDBUS_ERR_SYSCTL_READ', `Cannot read sysctl ${key}.`, {
                data: { key },
              });
          }
          return values;
        }
        // A document of the host: what can be set, without what moves on its own (unless `all`).
        const all = queryOptions?.all === true;
        const keys = sys.keys(ctx.netns !== undefined);
        return readAll(sys, all ? keys : keys.filter((k) => !volatileKeys.has(k)), ctx, !all);
      });
    },

    diff(desired, observed) {
      const changes: ChangeSpec<SysctlValue>[] = [];
      const observedByKey = new Map(Object.entries(observed).map(([k, v]) => [canonicalKey(k), String(v)]));
      const unchanged: [key: string, value: string, have: string][] = [];
      for (const [rawKey, value] of Object.entries(desired)) {
        const key = canonicalKey(rawKey);
        const want = String(value);
        const have = observedByKey.get(key);
        if (have !== undefined && comparableValue(have) === comparableValue(want)) {
          unchanged.push([key, want, have]);
          continue;
        }
        // Not observed: a key of an interface that does not exist yet. It is written once the
        // network plugin has made that link (when the same document does; otherwise the write
        // fails with an error naming the interface, and the transaction rolls back).
        const iface = have === undefined ? interfaceOfKey(key) : undefined;
        changes.push({
          resource: key,
          op: 'update',
          before: have ?? null,
          after: want,
          ...(iface === undefined
            ? {}
            : { dependsOn: [{ plugin: 'network', resource: `link/${iface.name}` }] }),
          summary:
            iface !== undefined
              ? `set ${key} → ${quoteValue(want)} (once interface ${iface.name} exists)`
              : `set ${key} ${have === undefined ? '(unread)' : quoteValue(have)} → ${quoteValue(want)}`,
        });
      }
      // Writes that make the kernel rewrite other keys go first; the document's keys they rewrite
      // are written after them, again when they needed no change of their own.
      const triggers = changes.flatMap((c) => {
        const resets = keysResetBy(c.resource);
        return resets === undefined ? [] : [{ key: c.resource, resets }];
      });
      if (triggers.length === 0) return changes;
      // Two keys that reset each other (net.ipv4.ip_forward and conf.all.forwarding: one setting)
      // are written in document order.
      const after = (key: string): string[] => {
        const own = keysResetBy(key);
        return triggers
          .filter((t) => t.key !== key && t.resets(key) && own?.(t.key) !== true)
          .map((t) => t.key);
      };
      for (const change of changes) {
        const deps = after(change.resource);
        if (deps.length > 0) change.dependsOn = [...(change.dependsOn ?? []), ...deps];
      }
      for (const [key, want, have] of unchanged) {
        const deps = after(key);
        if (deps.length === 0) continue;
        changes.push({
          resource: key,
          op: 'update',
          before: have,
          after: want,
          dependsOn: deps,
          summary: `set ${key} ${quoteValue(want)} again (writing ${deps.join(', ')} resets it)`,
        });
      }
      return changes;
    },

    async apply(change, ctx) {
      await Promise.resolve();
      const sys = procSys(ctx);
      // diff only makes updates; a null `after` (a hand-made change) is written as sysctl would print it.
      const value = change.after ?? 'null';
      try {
        sys.write(change.resource, value);
      } catch (err) {
        if (err instanceof OpdbusError) throw err;
        const errno = (err as NodeJS.ErrnoException).code ?? 'EIO';
        const missing = errno === 'ENOENT' ? waitsForInterface(sys, change.resource) : undefined;
        const hint =
          missing !== undefined
            ? `the interface ${missing} does not exist; create it in the network section of the same document (its keys are written after it) or remove the key`
            : errno === 'EINVAL'
              ? 'the kernel rejected the value; check its type and range'
              : errno === 'EPERM' || errno === 'EACCES'
                ? 'permission denied; run as root (some keys are read-only inside namespaces)'
                : 'the write failed';
        throw new OpdbusError(
          'OPDBUS_ERR_SYSCTL_WRITE',
          `Cannot set sysctl ${change.resource} to ${quoteValue(value)}: ${errno}: ${hint}.`,
          {
            data: {
              key: change.resource,
              value: value.slice(0, 256),
              errno,
              errnoNumber: Math.abs((err as NodeJS.ErrnoException).errno ?? 0),
            },
            cause: err,
          },
        );
      }
    },

    async checkpoint(ctx, changes) {
      await Promise.resolve();
      const sys = procSys(ctx);
      const keys = [...new Set(changes.map((c) => c.resource))];
      const values: Record<string, string> = {};
      const absent: string[] = [];
      for (const key of keys) {
        if (waitsForInterface(sys, key) !== undefined) absent.push(key);
        else values[key] = sys.read(key);
      }
      return absent.length === 0 ? { values } : { values, absent };
    },

    restore(token, ctx) {
      const sys = procSys(ctx);
      const failures: string[] = [];
      for (const [key, value] of Object.entries(token.values)) {
        try {
          const now = sys.read(key);
          if (comparableValue(now) !== comparableValue(value)) sys.write(key, value);
        } catch (err) {
          failures.push(`${key}: ${(err as Error).message}`);
        }
      }
      if (failures.length > 0) {
        return Promise.reject(
          new OpdbusError(
            'OPDBUS_ERR_SYSCTL_WRITE',
            `Could not restore sysctl keys: ${failures.join('; ')}.`,
            { data: { failures } },
          ),
        );
      }
      return Promise.resolve();
    },

    watch(ctx, onEvent: (event: WatchEvent) => void) {
      const sys = procSys(ctx);
      const intervalMs = options.watchIntervalMs ?? 1000;
      const keys =
        options.watchKeys?.map(canonicalKey) ??
        sys.keys(ctx.netns !== undefined).filter((k) => !volatileKeys.has(k));
      // Read-only keys are the kernel's reports (counters): their changes are not drift.
      const settableOnly = options.watchKeys === undefined;
      let last = readAll(sys, keys, ctx, settableOnly);
      const timer = setInterval(() => {
        Promise.resolve()
          .then(() => readAll(sys, keys, ctx, settableOnly))
          .then((now) => {
            for (const key of keys) {
              const before = last[key];
              const after = now[key];
              if (
                before === after ||
                (before !== undefined &&
                  after !== undefined &&
                  comparableValue(before) === comparableValue(after))
              )
                continue;
              onEvent({
                plugin: 'sysctl',
                resource: key,
                detail: `${key} changed ${quoteValue(before ?? null)} → ${quoteValue(after ?? null)} (seen by polling every ${intervalMs} ms)`,
                raw: { key, before: before ?? null, after: after ?? null },
              });
            }
            last = now;
          })
          .catch((err: unknown) => ctx.logger.warn({ err }, 'sysctl watch poll failed'));
      }, intervalMs);
      return Promise.resolve(() => clearInterval(timer));
    },
  });
}

/** The sysctl plugin with default options. */
export const sysctlPlugin: SysctlPlugin = createSysctlPlugin();
