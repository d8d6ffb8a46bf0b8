// Where services are placed: the desired document's `numa` placements, resolved against the
// machine's topology, beside what systemd reports for each unit. For the dashboard's NUMA page and
// `GET /v1/numa`.
import type { Engine, StateDocument } from '@opdbus/core';
import type { Topology } from '@opdbus/numa';
import { numaPluginSchema, resolveNumaSection } from '@opdbus/plugins-numa';

/** One placed unit. CPU and node lists are sorted. */
export interface PlacementView {
  unit: string;
  /** The systemd-nspawn machine placed as this unit (`numa.machines`), if it is one. */
  machine?: string;
  /** What the document asks for, resolved against the topology, and why these CPUs. */
  desired: { cpus: number[]; nodes: number[]; memoryNodes: number[]; policy: string; reason: string };
  /**
   * What systemd has for the unit (`null` where the property is unset): the CPUs, the nodes they
   * are on, the memory nodes and the policy. Absent when systemd could not be asked.
   */
  observed?: { cpus: number[] | null; nodes: number[]; memoryNodes: number[] | null; policy: string | null };
  /** Whether systemd has what the document asks for (`null` when it could not be asked). */
  inForce: boolean | null;
}

/** The placements of `GET /v1/numa`. */
export interface PlacementsReport {
  placements: PlacementView[];
  /** Why the placements could not be resolved (e.g. a request this machine cannot meet). */
  error?: string;
  /** Why systemd's side is missing (e.g. the systemd plugin is not available). */
  observedError?: string;
}

interface ObservedProperties {
  CPUAffinity?: number[];
  NUMAMask?: number[];
  NUMAPolicy?: string;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Resolve the document's placements and ask systemd (through the engine's plan of the `numa`
 * section alone, which reads the units' CPUAffinity, NUMAMask and NUMAPolicy and changes nothing)
 * whether each is in force.
 */
export async function numaPlacements(
  engine: Engine,
  doc: StateDocument | undefined,
  topology: Topology,
): Promise<PlacementsReport> {
  const parsed = numaPluginSchema.safeParse(doc?.plugins.numa);
  if (!parsed.success) return { placements: [] };
  const section = parsed.data;
  // Resolved as the numa plugin resolves it at plan time (machines as their units).
  let resolved;
  try {
    resolved = resolveNumaSection(section, topology);
  } catch (err) {
    return { placements: [], error: message(err) };
  }
  if (resolved === undefined) return { placements: [] };
  const { machines } = resolved;
  const nodesOf = (cpus: readonly number[]): number[] =>
    topology.nodes.filter((n) => n.cpus.some((cpu) => cpus.includes(cpu))).map((n) => n.id);
  const placements: PlacementView[] = resolved.result.placements.map((p) => ({
    unit: p.unit,
    ...(machines.has(p.unit) ? { machine: machines.get(p.unit)! } : {}),
    desired: {
      cpus: p.cpus,
      nodes: p.nodes,
      memoryNodes: p.memoryNodes,
      policy: p.numaPolicy,
      reason: p.reason,
    },
    inForce: null,
  }));
  try {
    const plan = await engine.plan({
      version: 1,
      plugins: { numa: section },
      source: `the numa placements of ${doc?.source ?? 'the desired document'}`,
    });
    const units = (plan.observed.systemd as { units?: Record<string, { properties?: ObservedProperties }> })
      ?.units;
    for (const view of placements) {
      const props = units?.[view.unit]?.properties ?? {};
      const cpus = props.CPUAffinity === undefined ? null : [...props.CPUAffinity].sort((a, b) => a - b);
      view.observed = {
        cpus,
        nodes: cpus === null ? [] : nodesOf(cpus),
        memoryNodes: props.NUMAMask === undefined ? null : [...props.NUMAMask].sort((a, b) => a - b),
        policy: props.NUMAPolicy ?? null,
      };
      view.inForce = !plan.plan.changes.some(
        (c) => c.plugin === 'systemd' && c.resource === `unit/${view.unit}`,
      );
    }
    return { placements };
  } catch (err) {
    return { placements, observedError: message(err) };
  }
}
