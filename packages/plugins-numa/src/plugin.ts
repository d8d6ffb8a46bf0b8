import { packageVersion, type Expansion, type ExpansionPlugin } from '@opdbus/core';
import {
  numaSectionSchema,
  parseCpuList,
  readTopology,
  resolvePlacements,
  type NumaSection,
  type Topology,
} from '@opdbus/numa';

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

/**
 * Create the `numa` plugin. Its section, `numa.placements`, asks for CPUs, memory and locality
 * per systemd unit; at plan time the plugin reads the machine's topology and resolves each
 * request (see `resolvePlacements` of @opdbus/numa) into the unit's `CPUAffinity`,
 * `NUMAPolicy` and `NUMAMask` in the `systemd` section, with the reason for each choice as a
 * plan note. The systemd plugin applies, verifies and rolls those back like any other unit
 * property (restarting a running unit, since they act when its process starts).
 *
 * The section has no host state of its own, so the plugin implements only `probe` and `expand`
 * (an {@link ExpansionPlugin}): the engine reports the placements asked for as its observed state
 * and it has no changes of its own — every change it causes is a systemd change.
 */
export function createNumaPlugin(options: NumaPluginOptions = {}): ExpansionPlugin<NumaSection> {
  // The whole machine: units are placed by systemd, not confined to the cpuset of the process
  // that plans them.
  const topology = options.topology ?? (() => readTopology({ root: options.root ?? '/', wholeSystem: true }));
  return {
    name: 'numa',
    version: packageVersion(import.meta.url),
    description: 'NUMA-aware placement of systemd units, resolved into CPUAffinity, NUMAPolicy and NUMAMask.',
    schema: numaSectionSchema,
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
      // No placements, no contribution: the systemd section (and the bus) are not needed.
      if (Object.keys(section.placements).length === 0) return { sections: {} };
      const result = resolvePlacements(section, await topology(), { path: 'plugins.numa.placements' });
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
        notes: result.placements.map((p) => ({
          plugin: 'systemd',
          resource: `unit/${p.unit}`,
          note: `numa: ${p.reason}`,
        })),
      };
    },
  };
}

/** The numa plugin reading the running machine's topology. */
export const numaPlugin: ExpansionPlugin<NumaSection> = createNumaPlugin();
