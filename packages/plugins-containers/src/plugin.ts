import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { extract } from 'tar';
import {
  OpdbusError,
  createPlan,
  definePlugin,
  makeChange,
  packageVersion,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
  type ResourceRef,
  type WatchEvent,
} from '@opdbus/core';
import { MachineSession, UINT64_MAX, machineUnit, type ImageInfo, type UnitFacts } from './machines.js';
import { PodmanClient } from './podman.js';
import {
  containersSchema,
  type ContainersSection,
  type MachineEntry,
  type MachineLimits,
  type PodmanContainer,
} from './schema.js';
import { hostInterfaceOf, parseSettings, renderSettings } from './settings.js';

/**
 * The checkpoint: each touched machine as it was (null: it did not exist), and for machines a
 * plan deletes, the name of a clone of their image (restored from it).
 */
export type ContainersCheckpoint = {
  machines: { [name: string]: MachineEntry | null };
  backups: { [name: string]: string };
  /** Podman containers as they were (null: none); a removed one is created again from its image. */
  podman?: { [name: string]: PodmanContainer | null };
};

/**
 * The values of the containers plugin's changes: a machine entry (`machine/NAME`) or a Podman
 * container (`podman/NAME`), in canonical form, as observed (`before`) or as it is to become (`after`).
 */
export type ContainersValue = MachineEntry | PodmanContainer;

/** A change of the containers plugin. */
export type ContainersChange = Change<ContainersValue>;

/** The containers plugin, typed: its section, checkpoint and change values. */
export type ContainersPlugin = Plugin<ContainersSection, ContainersCheckpoint, ContainersValue>;

/** Options of {@link createContainersPlugin}. */
export interface ContainersPluginOptions {
  /** How long a start or stop may take (default 90 s). */
  jobTimeoutMs?: number;
  /** Checkpoint clones of deleted machines older than this are removed (default 25 hours). */
  backupLifetimeMs?: number;
  /**
   * The Podman API socket of the Podman backend (default: `run/podman/podman.sock` under the
   * target root, where podman.socket listens).
   */
  podmanSocket?: string;
  /** Seconds a Podman container has to stop (or be removed) after SIGTERM before SIGKILL (default 10). */
  podmanStopTimeoutS?: number;
}

/** A Podman event (parsed from JSON) as a watch event's `raw`: a plain JSON copy. */
const asJson = (v: unknown): JsonValue => JSON.parse(JSON.stringify(v)) as JsonValue;
const RUNNING = new Set(['active', 'activating', 'reloading', 'deactivating']);
const BACKUP_PREFIX = 'opdbus-ckpt-';
/** Podman events that change what query reports. */
const PODMAN_ACTIONS = new Set(['create', 'start', 'stop', 'died', 'remove', 'pause', 'unpause']);

/** Bytes of a size written as a number or with K/M/G/T. */
export function sizeBytes(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)([KMGT]?)$/.exec(v)!;
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ');
}

/** Limits in canonical form (memory in bytes). */
function canonicalLimits(l: MachineLimits | undefined): MachineLimits | undefined {
  if (l === undefined) return undefined;
  const out: MachineLimits = {};
  if (l.cpuQuota !== undefined) out.cpuQuota = l.cpuQuota;
  if (l.memoryMax !== undefined) out.memoryMax = sizeBytes(l.memoryMax);
  if (l.tasksMax !== undefined) out.tasksMax = l.tasksMax;
  return out;
}

/** A machine entry in canonical form, for comparison. */
function canonical(m: MachineEntry): MachineEntry {
  if (m.state === 'absent') return { name: m.name, state: 'absent' };
  const out: MachineEntry = { ...m, state: m.state ?? 'running' };
  const limits = canonicalLimits(m.limits);
  if (limits !== undefined) out.limits = limits;
  return out;
}

const settingsOf = (m: MachineEntry): Pick<MachineEntry, 'boot' | 'command' | 'bind' | 'network'> =>
  parseSettings(renderSettings(m));

/** The fields of `d` that differ from `o` (only those `d` names). */
function differences(d: MachineEntry, o: MachineEntry): string[] {
  const out: string[] = [];
  if (d.state !== o.state) out.push(d.state ?? 'running');
  if (d.enabled !== undefined && d.enabled !== (o.enabled ?? false))
    out.push(d.enabled ? 'enabled' : 'disabled');
  const ds = settingsOf(d);
  const os = settingsOf(o);
  if (d.boot !== undefined && ds.boot !== os.boot) out.push(`boot ${ds.boot ? 'yes' : 'no'}`);
  if (d.command !== undefined && JSON.stringify(ds.command) !== JSON.stringify(os.command))
    out.push('command');
  if (d.bind !== undefined && JSON.stringify(ds.bind ?? {}) !== JSON.stringify(os.bind ?? {}))
    out.push('bind mounts');
  if (d.network !== undefined && JSON.stringify(ds.network) !== JSON.stringify(os.network))
    out.push('network');
  for (const [k, v] of Object.entries(d.limits ?? {}))
    if (v !== (o.limits as Record<string, unknown> | undefined)?.[k]) out.push(`${k} ${String(v)}`);
  return out;
}

/**
 * Whether two entries differ in what nspawn reads from the settings file (a running machine
 * restarts for it). The Open vSwitch bridge of a veth is not nspawn's: the port moves without
 * a restart.
 */
function settingsChanged(d: MachineEntry, o: MachineEntry): boolean {
  const nspawn = (m: MachineEntry): string =>
    renderSettings(
      m.network !== undefined && 'ovsBridge' in m.network
        ? { ...m, network: { ...m.network, ovsBridge: null, hostInterface: hostInterfaceOf(m)! } }
        : m,
    );
  return (
    (d.boot !== undefined || d.command !== undefined || d.bind !== undefined || d.network !== undefined) &&
    nspawn({ ...o, ...pick(d) }) !== nspawn(o)
  );
}

/** The unit drop-in that brings a veth's host end up when the machine starts (nspawn leaves it down). */
const VETH_DROP_IN = '60-opdbus-veth.conf';
function vethDropIn(hostInterface: string): string {
  return `# Managed by op-dbus (@opdbus/plugins-containers): the host end of the machine's veth, a port of an Open vSwitch bridge, is brought up when it starts.\n[Service]\nExecStartPost=ip link set dev ${hostInterface} up\n`;
}

function pick(d: MachineEntry): Partial<MachineEntry> {
  const out: Partial<MachineEntry> = {};
  if (d.boot !== undefined) out.boot = d.boot;
  if (d.command !== undefined) out.command = d.command;
  if (d.bind !== undefined) out.bind = d.bind;
  if (d.network !== undefined) out.network = d.network;
  return out;
}

/**
 * What a machine's create or update follows when the same plan changes it: its unit's own
 * settings in the systemd plugin (e.g. the CPUAffinity / NUMAPolicy / NUMAMask a numa placement
 * gives `systemd-nspawn@NAME.service`), so that the machine starts with them.
 */
function machineDependencies(name: string): ResourceRef[] {
  return [{ plugin: 'systemd', resource: `unit/${machineUnit(name)}` }];
}

/** A Podman container in canonical form. */
function canonicalPod(c: PodmanContainer): PodmanContainer {
  if (c.state === 'absent') return { name: c.name, state: 'absent' };
  const out: PodmanContainer = { ...c, state: c.state ?? 'running' };
  const limits = canonicalLimits(c.limits);
  if (limits !== undefined) out.limits = limits;
  return out;
}

/** What of `d` (only what it names) differs from `o` and is fixed when the container is made. */
function podRecreate(d: PodmanContainer, o: PodmanContainer): string[] {
  const out: string[] = [];
  if (d.image !== undefined && d.image !== o.image) out.push(`image ${d.image}`);
  if (d.command !== undefined && JSON.stringify(d.command) !== JSON.stringify(o.command)) out.push('command');
  if (d.network !== undefined && d.network !== o.network) out.push(`network ${d.network}`);
  for (const [k, v] of Object.entries(d.limits ?? {}))
    if (v !== (o.limits as Record<string, unknown> | undefined)?.[k]) out.push(`${k} ${String(v)}`);
  return out;
}

/** The Podman part of the diff (resources `podman/NAME`). */
function diffPodman(desired: ContainersSection, observed: ContainersSection): ChangeSpec<PodmanContainer>[] {
  const have = new Map((observed.podman ?? []).map((c) => [c.name, canonicalPod(c)]));
  const changes: ChangeSpec<PodmanContainer>[] = [];
  for (const raw of desired.podman ?? []) {
    const d = canonicalPod(raw);
    const o = have.get(d.name);
    const exists = o !== undefined && o.state !== 'absent';
    const resource = `podman/${d.name}`;
    if (d.state === 'absent') {
      if (exists)
        changes.push({
          resource,
          op: 'delete',
          before: o,
          after: null,
          summary: `remove podman container ${d.name}`,
        });
      continue;
    }
    if (!exists) {
      changes.push({
        resource,
        op: 'create',
        before: null,
        after: d,
        summary: `create podman container ${d.name} from ${d.image ?? '?'} (${d.state})`,
      });
      continue;
    }
    const recreate = podRecreate(d, o);
    if (recreate.length > 0 || d.state !== o.state) {
      const what = [...(d.state !== o.state ? [d.state ?? 'running'] : []), ...recreate];
      changes.push({
        resource,
        op: 'update',
        before: o,
        // What it becomes: the observed container with what the document names.
        after: { ...o, ...d },
        summary: `set podman container ${d.name}: ${what.join(', ')}${recreate.length > 0 ? ' (recreates it)' : ''}`,
      });
    }
  }
  return changes;
}

/** The pure diff. */
export function diffContainers(
  desired: ContainersSection,
  observed: ContainersSection,
): ChangeSpec<ContainersValue>[] {
  return [...diffMachines(desired, observed), ...diffPodman(desired, observed)];
}

function diffMachines(desired: ContainersSection, observed: ContainersSection): ChangeSpec<MachineEntry>[] {
  const have = new Map((observed.machines ?? []).map((m) => [m.name, canonical(m)]));
  const changes: ChangeSpec<MachineEntry>[] = [];
  for (const raw of desired.machines ?? []) {
    const d = canonical(raw);
    const o = have.get(d.name);
    const exists = o !== undefined && o.state !== 'absent';
    const resource = `machine/${d.name}`;
    if (d.state === 'absent') {
      if (exists)
        changes.push({
          resource,
          op: 'delete',
          before: o,
          after: null,
          summary: `remove machine ${d.name} and its image`,
        });
      continue;
    }
    if (!exists) {
      const from =
        raw.source === undefined
          ? 'its image'
          : 'directory' in raw.source
            ? raw.source.directory
            : 'tarball' in raw.source
              ? `tarball ${raw.source.tarball}`
              : `image ${raw.source.image}`;
      changes.push({
        resource,
        op: 'create',
        before: null,
        after: d,
        summary: `create machine ${d.name} from ${from} (${d.state})`,
        dependsOn: machineDependencies(d.name),
      });
      continue;
    }
    const diffs = differences(d, o);
    if (diffs.length > 0) {
      const restart = o.state === 'running' && d.state === 'running' && settingsChanged(d, o);
      changes.push({
        resource,
        op: 'update',
        before: o,
        after: d,
        summary: `set machine ${d.name}: ${diffs.join(', ')}${restart ? ' (restarts it)' : ''}`,
        dependsOn: machineDependencies(d.name),
      });
    }
  }
  return changes;
}

/** Create the containers plugin. */
export function createContainersPlugin(options: ContainersPluginOptions = {}): ContainersPlugin {
  const jobTimeoutMs = options.jobTimeoutMs ?? 90_000;
  const backupLifetimeMs = options.backupLifetimeMs ?? 25 * 3600_000;
  const root = (ctx: PluginContext): string => normalize(ctx.target.root ?? '/');
  const podman = (ctx: PluginContext): PodmanClient =>
    new PodmanClient(options.podmanSocket ?? join(root(ctx), 'run/podman/podman.sock'));

  async function observePodman(ctx: PluginContext, names: string[] | undefined): Promise<PodmanContainer[]> {
    const client = podman(ctx);
    const out: PodmanContainer[] = [];
    for (const name of names ?? (await client.names()))
      out.push((await client.inspect(name)) ?? { name, state: 'absent' });
    return out;
  }

  /** Bring a Podman container to `want` from `before` (null: there is none). */
  async function convergePod(
    ctx: PluginContext,
    want: PodmanContainer,
    before: PodmanContainer | null,
  ): Promise<void> {
    const client = podman(ctx);
    if (before !== null && podRecreate(want, before).length > 0) {
      await client.remove(want.name, options.podmanStopTimeoutS);
      before = null;
    }
    if (before === null) {
      if (want.image === undefined)
        throw new OpdbusError(
          'OPDBUS_ERR_CONTAINERS_INVALID',
          `Podman container ${want.name} does not exist and its entry names no image to create it from; add \`image: NAME\` (one \`podman images\` lists).`,
          { data: { container: want.name } },
        );
      await client.create(want);
    }
    if ((want.state ?? 'running') === 'running') await client.start(want.name);
    else if (before?.state === 'running') await client.stop(want.name, options.podmanStopTimeoutS);
  }

  async function applyPod(ctx: PluginContext, change: ContainersChange): Promise<void> {
    const name = change.resource.slice('podman/'.length);
    if (change.op === 'delete') return podman(ctx).remove(name, options.podmanStopTimeoutS);
    const current = await podman(ctx).inspect(name);
    return convergePod(ctx, change.after as PodmanContainer, current);
  }
  const settingsPath = (ctx: PluginContext, name: string): string =>
    join(root(ctx), 'etc/systemd/nspawn', `${name}.nspawn`);
  const dropInPath = (ctx: PluginContext, name: string): string =>
    join(root(ctx), 'etc/systemd/system', `${machineUnit(name)}.d`, VETH_DROP_IN);

  /** Write or remove the veth drop-in of a machine as its network says; reloads systemd on a change. */
  async function syncDropIn(ctx: PluginContext, s: MachineSession, m: MachineEntry): Promise<void> {
    const file = dropInPath(ctx, m.name);
    const host = hostInterfaceOf(m);
    const want = host === undefined ? undefined : vethDropIn(host);
    const have = await readFile(file, 'utf8').catch(() => undefined);
    if (want === have) return;
    if (want === undefined) await rm(file, { force: true });
    else {
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, want, { mode: 0o644 });
    }
    await s.reload();
  }

  /** Put the veth's host end on the declared Open vSwitch bridge (or on none). */
  async function syncPort(s: MachineSession, m: MachineEntry, before: MachineEntry | null): Promise<void> {
    const host = hostInterfaceOf(m);
    const old = before === null ? undefined : hostInterfaceOf(before);
    if (old !== undefined && old !== host) await (await s.ovs()).detach(old, m.name);
    if (host === undefined || m.network === undefined || !('ovsBridge' in m.network)) return;
    const ports = await s.ovs();
    if (m.network.ovsBridge === null) await ports.detach(host, m.name);
    else await ports.attach(m.network.ovsBridge, host, m.name);
  }

  async function withSession<T>(ctx: PluginContext, fn: (s: MachineSession) => Promise<T>): Promise<T> {
    const s = await MachineSession.open(ctx, jobTimeoutMs);
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  }

  async function readSettings(
    ctx: PluginContext,
    name: string,
  ): Promise<ReturnType<typeof parseSettings> | undefined> {
    try {
      return parseSettings(await readFile(settingsPath(ctx, name), 'utf8'));
    } catch {
      return undefined;
    }
  }

  function limitsOf(u: UnitFacts): MachineLimits {
    const out: MachineLimits = {};
    if (u.cpuQuotaPerSecUSec !== UINT64_MAX) out.cpuQuota = Number(u.cpuQuotaPerSecUSec) / 10_000;
    if (u.memoryMax !== UINT64_MAX) out.memoryMax = Number(u.memoryMax);
    if (u.tasksMax !== UINT64_MAX) out.tasksMax = Number(u.tasksMax);
    return out;
  }

  async function entry(
    ctx: PluginContext,
    s: MachineSession,
    name: string,
    images: ImageInfo[],
    running: Set<string>,
  ): Promise<MachineEntry> {
    const image = images.find((i) => i.name === name);
    const unit = await s.unit(name);
    const isRunning = running.has(name) || RUNNING.has(unit.activeState);
    if (image === undefined && !isRunning) return { name, state: 'absent' };
    const out: MachineEntry = {
      name,
      state: isRunning ? 'running' : 'stopped',
      enabled: unit.fileState === 'enabled',
    };
    const settings = await readSettings(ctx, name);
    if (settings !== undefined) Object.assign(out, settings);
    // The bridge a veth is on is what OVSDB says, not what the settings file remembers.
    if (out.network !== undefined && 'ovsBridge' in out.network)
      out.network = {
        ...out.network,
        ovsBridge: await (await s.ovs()).bridgeOf(hostInterfaceOf(out)!),
      };
    const limits = limitsOf(unit);
    if (Object.keys(limits).length > 0) out.limits = limits;
    return out;
  }

  /**
   * Machines and Podman containers: all of them (each backend that answers), or those the scope
   * names (a backend the scope names must answer).
   */
  async function observe(
    ctx: PluginContext,
    scope: ContainersSection | undefined,
  ): Promise<ContainersSection> {
    if (scope !== undefined) {
      const out: ContainersSection = {};
      if (scope.machines !== undefined || scope.podman === undefined)
        Object.assign(out, await observeMachines(ctx, scope));
      if (scope.podman !== undefined)
        out.podman = await observePodman(
          ctx,
          scope.podman.map((c) => c.name),
        );
      return out;
    }
    const [machines, pods] = await Promise.allSettled([
      observeMachines(ctx, undefined),
      observePodman(ctx, undefined),
    ]);
    if (machines.status === 'rejected' && pods.status === 'rejected') throw machines.reason;
    return {
      ...(machines.status === 'fulfilled' ? machines.value : {}),
      ...(pods.status === 'fulfilled' ? { podman: pods.value } : {}),
    };
  }

  async function observeMachines(
    ctx: PluginContext,
    scope: ContainersSection | undefined,
  ): Promise<ContainersSection> {
    return withSession(ctx, async (s) => {
      const images = (await s.images()).filter((i) => !i.name.startsWith(BACKUP_PREFIX));
      const running = new Set(await s.machines());
      const names =
        scope === undefined
          ? [...new Set([...images.map((i) => i.name), ...running])].sort()
          : (scope.machines ?? []).map((m) => m.name);
      const machines: MachineEntry[] = [];
      for (const name of names) machines.push(await entry(ctx, s, name, images, running));
      return { machines: scope === undefined ? machines.filter((m) => m.state !== 'absent') : machines };
    });
  }

  /** Make the image of a new machine from its source (or check it has one). */
  async function makeImage(
    ctx: PluginContext,
    s: MachineSession,
    m: MachineEntry,
    source: MachineEntry['source'],
    backup: string | undefined,
  ): Promise<void> {
    const images = await s.images();
    if (images.some((i) => i.name === m.name)) return;
    if (backup !== undefined && images.some((i) => i.name === backup)) {
      await s.cloneImage(backup, m.name);
      return;
    }
    if (source === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_INVALID',
        `Machine ${m.name} has no image and its entry names no source; add \`source: { directory: PATH }\` or \`source: { image: NAME }\`.`,
        { data: { machine: m.name } },
      );
    }
    if ('image' in source) {
      await s.cloneImage(source.image, m.name);
      return;
    }
    if ('tarball' in source) {
      await extractImage(ctx, m.name, source.tarball);
      return;
    }
    const from = join(root(ctx), source.directory);
    try {
      if (!(await stat(from)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_INVALID',
        `The source directory ${source.directory} of machine ${m.name} does not exist on the target (${from}): ${(err as Error).message}.`,
        { data: { machine: m.name, directory: source.directory } },
      );
    }
    const to = join(root(ctx), 'var/lib/machines', m.name);
    await mkdir(join(root(ctx), 'var/lib/machines'), { recursive: true, mode: 0o700 });
    await cp(from, to, {
      recursive: true,
      verbatimSymlinks: true,
      preserveTimestamps: true,
      errorOnExist: true,
      force: false,
    });
  }

  /** Extract a tarball on the target as the image of machine `name` (removed again if that fails). */
  async function extractImage(ctx: PluginContext, name: string, tarball: string): Promise<void> {
    const file = join(root(ctx), tarball);
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_INVALID',
        `The source tarball ${tarball} of machine ${name} does not exist on the target (${file}): ${(err as Error).message}.`,
        { data: { machine: name, tarball } },
      );
    }
    const to = join(root(ctx), 'var/lib/machines', name);
    await mkdir(join(root(ctx), 'var/lib/machines'), { recursive: true, mode: 0o700 });
    await mkdir(to, { mode: 0o755 });
    try {
      // Owners and modes as archived (an OS tree); no absolute paths or ".." out of the image.
      await extract({ file, cwd: to, preserveOwner: true, strict: true });
    } catch (err) {
      await rm(to, { recursive: true, force: true });
      throw new OpdbusError(
        'OPDBUS_ERR_CONTAINERS_INVALID',
        `Could not extract the tarball ${tarball} of machine ${name}: ${(err as Error).message}; it must be a tar archive, plain or compressed with gzip, brotli or zstd.`,
        { data: { machine: name, tarball }, cause: err },
      );
    }
  }

  async function writeSettings(ctx: PluginContext, m: MachineEntry): Promise<void> {
    await mkdir(join(root(ctx), 'etc/systemd/nspawn'), { recursive: true });
    await writeFile(settingsPath(ctx, m.name), renderSettings(m), { mode: 0o644 });
  }

  async function setLimits(
    s: MachineSession,
    name: string,
    limits: MachineLimits | undefined,
  ): Promise<void> {
    if (limits === undefined) return;
    const props: [string, bigint][] = [];
    if (limits.cpuQuota !== undefined)
      props.push(['CPUQuotaPerSecUSec', BigInt(Math.round(limits.cpuQuota * 10_000))]);
    if (limits.memoryMax !== undefined) props.push(['MemoryMax', BigInt(sizeBytes(limits.memoryMax))]);
    if (limits.tasksMax !== undefined) props.push(['TasksMax', BigInt(limits.tasksMax)]);
    await s.setProperties(name, props);
  }

  /** Bring a machine to `want`, from `before` (null: it does not exist). */
  async function converge(
    ctx: PluginContext,
    s: MachineSession,
    want: MachineEntry,
    before: MachineEntry | null,
    backup?: string,
  ): Promise<void> {
    const source = want.source;
    await makeImage(ctx, s, want, source, backup);
    const current = before ?? { name: want.name, state: 'stopped' as const };
    const rewrite =
      before === null || settingsChanged(want, current) || (await readSettings(ctx, want.name)) === undefined;
    const merged: MachineEntry = { ...current, ...pick(want) };
    // The file also names a veth's Open vSwitch bridge, which changes without a restart.
    const file = await readFile(settingsPath(ctx, want.name), 'utf8').catch(() => undefined);
    if (rewrite || file !== renderSettings(merged)) await writeSettings(ctx, merged);
    await syncDropIn(ctx, s, merged);
    await setLimits(s, want.name, want.limits);
    if (want.enabled !== undefined && want.enabled !== (before?.enabled ?? false))
      await s.setEnabled(want.name, want.enabled);
    const facts = await s.unit(want.name);
    const running = RUNNING.has(facts.activeState);
    if (want.state === 'stopped' && running) await s.job(want.name, 'stop');
    if ((want.state ?? 'running') === 'running') {
      if (running && rewrite && before !== null) await s.job(want.name, 'stop');
      if (!running || (rewrite && before !== null)) {
        await s.resetFailed(want.name);
        await s.job(want.name, 'start');
      }
    }
    await syncPort(s, merged, before);
  }

  async function remove(ctx: PluginContext, s: MachineSession, name: string): Promise<void> {
    const settings = await readSettings(ctx, name);
    const host = settings === undefined ? undefined : hostInterfaceOf({ name, ...settings });
    if (host !== undefined) await (await s.ovs()).detach(host, name);
    const facts = await s.unit(name);
    if (RUNNING.has(facts.activeState)) await s.job(name, 'stop');
    await s.resetFailed(name);
    if (facts.fileState === 'enabled') await s.setEnabled(name, false);
    await s.revertProperties(name);
    if ((await s.images()).some((i) => i.name === name)) await s.removeImage(name);
    await rm(settingsPath(ctx, name), { force: true });
    if ((await readFile(dropInPath(ctx, name)).catch(() => undefined)) !== undefined) {
      await rm(dropInPath(ctx, name), { force: true });
      await s.reload();
    }
  }

  async function applyChange(ctx: PluginContext, s: MachineSession, change: ContainersChange): Promise<void> {
    const name = change.resource.slice('machine/'.length);
    if (change.op === 'delete') return remove(ctx, s, name);
    return converge(ctx, s, change.after as MachineEntry, change.before as MachineEntry | null);
  }

  return definePlugin<ContainersSection, ContainersCheckpoint, ContainersValue>({
    name: 'containers',
    version: packageVersion(import.meta.url),
    description:
      'systemd-nspawn machines (image, settings, limits, enabled, running) through systemd-machined and systemd over D-Bus.',
    schema: containersSchema,

    async probe(ctx) {
      // Two backends, each probed: machined + systemd-nspawn@.service, and Podman's API.
      const machined = await withSession(ctx, async (s) => {
        await s.images();
        await s.manager.getUnitFileState('systemd-nspawn@.service');
        return `systemd-machined and systemd-nspawn@.service on ${ctx.target.busAddress ?? 'the system bus'}`;
      }).then(
        (detail) => ({ ok: true as const, detail }),
        (err: unknown) => ({
          ok: false as const,
          detail: `systemd-machined or systemd-nspawn@.service is not available: ${(err as Error).message} (Debian: apt-get install systemd-container)`,
        }),
      );
      const client = podman(ctx);
      const pod = await client.version().then(
        (version) => ({ ok: true as const, detail: `Podman ${version} at ${client.socketPath}` }),
        (err: unknown) => ({
          ok: false as const,
          detail: `the Podman backend is not available: ${(err as Error).message}`,
        }),
      );
      if (!machined.ok && !pod.ok) return { available: false, reason: `${machined.detail}; ${pod.detail}` };
      return { available: true, detail: `${machined.detail}; ${pod.detail}` };
    },

    query(ctx, queryOptions) {
      return observe(ctx, queryOptions?.scope);
    },

    diff(desired, observed) {
      return diffContainers(desired, observed);
    },

    apply(change, ctx) {
      if (change.resource.startsWith('podman/')) return applyPod(ctx, change);
      return withSession(ctx, (s) => applyChange(ctx, s, change));
    },

    async checkpoint(ctx, changes) {
      const token: ContainersCheckpoint = { machines: {}, backups: {} };
      const pods = changes.filter((c) => c.resource.startsWith('podman/'));
      if (pods.length > 0) {
        token.podman = {};
        for (const change of pods) {
          const name = change.resource.slice('podman/'.length);
          const before = await podman(ctx).inspect(name);
          token.podman[name] = before;
        }
      }
      const machineChanges = changes.filter((c) => c.resource.startsWith('machine/'));
      if (machineChanges.length === 0) return token;
      return withSession(ctx, async (s) => {
        const images = await s.images();
        // Clones kept for earlier transactions that are long over.
        for (const i of images)
          if (i.name.startsWith(BACKUP_PREFIX) && Date.now() - i.created > backupLifetimeMs)
            await s.removeImage(i.name).catch(() => undefined);
        const running = new Set(await s.machines());
        for (const change of machineChanges) {
          const name = change.resource.slice('machine/'.length);
          const before = await entry(ctx, s, name, images, running);
          token.machines[name] = before.state === 'absent' ? null : before;
          if (change.op === 'delete' && images.some((i) => i.name === name)) {
            const backup = `${BACKUP_PREFIX}${name}-${randomBytes(4).toString('hex')}`.slice(0, 63);
            await s.cloneImage(name, backup);
            token.backups[name] = backup;
          }
        }
        return token;
      });
    },

    async restore(token, ctx) {
      const failures: string[] = [];
      if (token.podman !== undefined) {
        const desired: ContainersSection = {
          podman: Object.entries(token.podman).map(([name, e]) =>
            e === null ? { name, state: 'absent' } : e,
          ),
        };
        const observed = await observe(ctx, desired);
        for (const spec of diffPodman(desired, observed)) {
          try {
            await applyPod(ctx, makeChange('containers', spec));
          } catch (err) {
            failures.push(`${spec.summary}: ${(err as Error).message}`);
          }
        }
      }
      if (Object.keys(token.machines).length > 0)
        await withSession(ctx, async (s) => {
          const desired: ContainersSection = {
            machines: Object.entries(token.machines).map(([name, e]) =>
              e === null ? { name, state: 'absent' } : e,
            ),
          };
          const observed = await observe(ctx, desired);
          const plan = createPlan(
            diffContainers(desired, observed).map((spec) => makeChange('containers', spec)),
          );
          for (const change of plan.changes) {
            const name = change.resource.slice('machine/'.length);
            try {
              if (change.op === 'delete') await remove(ctx, s, name);
              else
                await converge(
                  ctx,
                  s,
                  change.after as MachineEntry,
                  change.before as MachineEntry | null,
                  token.backups[name],
                );
            } catch (err) {
              failures.push(`${change.summary}: ${(err as Error).message}`);
            }
          }
          for (const [name, backup] of Object.entries(token.backups)) {
            if (failures.some((f) => f.includes(name))) continue;
            await s.removeImage(backup).catch(() => undefined);
          }
        });
      if (failures.length > 0)
        throw new OpdbusError('OPDBUS_ERR_CONTAINERS_RESTORE', `Could not restore: ${failures.join('; ')}.`, {
          data: { failures },
        });
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      // Each backend that answers: machined's signals, Podman's event stream.
      const stops: (() => Promise<void>)[] = [];
      const problems: string[] = [];
      try {
        const s = await MachineSession.open(ctx, jobTimeoutMs);
        try {
          const subscriptions = await s.onMachines((event, name) =>
            onEvent({
              plugin: 'containers',
              resource: `machine/${name}`,
              detail: `machine ${name} ${event === 'new' ? 'started' : 'stopped'}`,
              raw: { event, machine: name, unit: machineUnit(name) },
            }),
          );
          stops.push(async () => {
            for (const sub of subscriptions) await sub.unsubscribe().catch(() => undefined);
            await s.close();
          });
        } catch (err) {
          await s.close();
          throw err;
        }
      } catch (err) {
        problems.push(`machined: ${(err as Error).message}`);
      }
      try {
        const stop = await podman(ctx).events(
          ({ action, name, raw }) => {
            if (!PODMAN_ACTIONS.has(action)) return;
            onEvent({
              plugin: 'containers',
              resource: `podman/${name}`,
              detail: `podman container ${name}: ${action}`,
              raw: asJson(raw),
            });
          },
          (err) =>
            ctx.logger.warn({ err }, "Podman's event stream failed; Podman drift shows at the next query"),
        );
        stops.push(() => Promise.resolve(stop()));
      } catch (err) {
        problems.push(`Podman: ${(err as Error).message}`);
      }
      if (stops.length === 0)
        throw new OpdbusError(
          'OPDBUS_ERR_CONTAINERS_MACHINE',
          `Neither backend can be watched: ${problems.join('; ')}.`,
          { data: { problems } },
        );
      return async () => {
        for (const stop of stops) await stop();
      };
    },
  });
}

/** The containers plugin with default options. */
export const containersPlugin: ContainersPlugin = createContainersPlugin();
