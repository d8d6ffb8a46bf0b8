import {
  OpdbusError,
  isOpdbusError,
  packageVersion,
  type Expansion,
  type ExpansionPlugin,
} from '@opdbus/core';
import {
  parseCpuList,
  readTopology,
  resolvePlacements,
  type NumaSection,
  type PlacementResult,
  type Topology,
} from '@opdbus/numa';
import { machineUnit, numaPluginSchema, type NumaPluginSection } from './schema.js';

/** Options of {@link createNumaPlugin}. */
export interface NumaPluginOptions {
  /** Filesystem root holding sys/ and proc/ (default `/`; a generated tree in tests, like HWLOC_FSROOT). */
  root?: string;
  /**
   * Read the topology another way (e.g. cached by a daemon). Default: `readTopology({ root,
   * wholeSystem: true })` (the whole machine, whatever cpuset the planning process runs in).
   */
  topology?: () => Promise<Topology>;
}

const PLACEMENTS = 'plugins.numa.placements';

/**
 * A resolver error about a machine's unit, rewritten to name the machine and its path in the
 * document (`plugins.numa.machines["NAME"]`) instead of the unit it was resolved as.
 */
function forMachines(err: unknown, machines: ReadonlyMap<string, string>): unknown {
  if (!isOpdbusError(err)) return err;
  const unit = typeof err.data?.unit === 'string' ? err.data.unit : undefined;
  const name = unit === undefined ? undefined : machines.get(unit);
  if (unit === undefined || name === undefined) return err;
  const from = `${PLACEMENTS}[${JSON.stringify(unit)}]`;
  const to = `plugins.numa.machines[${JSON.stringify(name)}]`;
  return new OpdbusError(
    err.code,
    err.message.replace(`Placement of ${unit} (${from})`, `Placement of machine ${name} (${to})`),
    { data: { ...err.data, path: to, machine: name }, cause: err },
  );
}

/** What {@link resolveNumaSection} answers. */
export interface ResolvedNumaSection {
  /** Every placement, machines' under their units, sorted by unit. */
  result: PlacementResult;
  /** The machine each machine unit (`systemd-nspawn@NAME.service`) places, by unit. */
  machines: ReadonlyMap<string, string>;
}

/**
 * Resolve a `numa` section against a topology as the plugin does at plan time: machines are
 * placed as their units, together with the units (exclusive CPUs are shared out among both), and
 * an error about a machine's unit names the machine and its path in the document. Undefined when
 * the section places nothing.
 */
export function resolveNumaSection(
  section: NumaPluginSection,
  topology: Topology,
): ResolvedNumaSection | undefined {
  const machines = new Map(Object.keys(section.machines ?? {}).map((name) => [machineUnit(name), name]));
  const all: NumaSection = { placements: { ...section.placements } };
  for (const [name, request] of Object.entries(section.machines ?? {}))
    all.placements[machineUnit(name)] = request;
  if (Object.keys(all.placements).length === 0) return undefined;
  try {
    return { result: resolvePlacements(all, topology, { path: PLACEMENTS }), machines };
  } catch (err) {
    throw forMachines(err, machines);
  }
}

/**
 * Create the `numa` plugin. Its section, `numa.placements`, asks for CPUs, memory and locality
 * per systemd unit, and `numa.machines` the same per systemd-nspawn machine (its unit
 * `systemd-nspawn@NAME.service`); at plan time the plugin reads the machine's topology and resolves each
 * request (see `resolvePlacements` of @opdbus/numa) into the unit's `CPUAffinity`,
 * `NUMAPolicy` and `NUMAMask` in the `systemd` section, with the reason for each choice as a
 * plan note. The systemd plugin applies, verifies and rolls those back like any other unit
 * property (restarting a running unit, since they act when its process starts).
 *
 * The section has no host state of its own, so the plugin implements only `probe` and `expand`
 * (an {@link ExpansionPlugin}): the engine reports the placements asked for as its observed state
 * and it has no changes of its own — every change it causes is a systemd change.
 */
export function createNumaPlugin(options: NumaPluginOptions = {}): ExpansionPlugin<NumaPluginSection> {
  // The whole machine: units are placed by systemd, not confined to the cpuset of the process
  // that plans them.
  const topology = options.topology ?? (() => readTopology({ root: options.root ?? '/', wholeSystem: true }));
  return {
    name: 'numa',
    version: packageVersion(import.meta.url),
    description:
      'NUMA-aware placement of systemd units and systemd-nspawn machines, resolved into CPUAffinity, NUMAPolicy and NUMAMask.',
    schema: numaPluginSchema,
    empty: { placements: {} },

    async probe() {
      try {
        const t = await topology();
        return { available: true, detail: `${t.nodes.length} NUMA node(s), ${t.cpus.length} online CPU(s)` };
      } catch (err) {
        return {
          available: false,
          reason: `the CPU/NUMA topology cannot be read: ${(err as Error).message}`,
        };
      }
    },

    async expand(section): Promise<Expansion> {
      // No placements, no contribution: the systemd section (and the bus, and the topology) are
      // not needed.
      const empty = Object.keys({ ...section.placements, ...section.machines }).length === 0;
      const resolved = empty ? undefined : resolveNumaSection(section, await topology());
      if (resolved === undefined) return { sections: {} };
      const { result, machines } = resolved;
      const units: Record<string, { properties: Record<string, unknown> }> = {};
      for (const placement of result.placements) {
        const properties: Record<string, unknown> = {};
        // CPU and node sets as sorted index lists: the systemd plugin's canonical form.
        if (placement.properties.CPUAffinity !== undefined)
          properties.CPUAffinity = parseCpuList(placement.properties.CPUAffinity);
        if (placement.properties.NUMAPolicy !== undefined)
          properties.NUMAPolicy = placement.properties.NUMAPolicy;
        if (placement.properties.NUMAMask !== undefined)
          properties.NUMAMask = parseCpuList(placement.properties.NUMAMask);
        units[placement.unit] = { properties };
      }
      return {
        sections: { systemd: { units } },
        notes: result.placements.flatMap((p) => {
          const name = machines.get(p.unit);
          const note = { plugin: 'systemd', resource: `unit/${p.unit}`, note: `numa: ${p.reason}` };
          return name === undefined
            ? [note]
            : [
                { ...note, note: `numa: machine ${name}: ${p.reason}` },
                { plugin: 'containers', resource: `machine/${name}`, note: `numa: ${p.unit}: ${p.reason}` },
              ];
        }),
      };
    },
  };
}

/** The numa plugin reading the running machine's topology. */
export const numaPlugin: ExpansionPlugin<NumaPluginSection> = createNumaPlugin();
