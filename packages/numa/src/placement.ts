/**
 * NUMA-aware placement: requests for CPUs, memory and locality (a node, or near a PCI device) of
 * systemd units, resolved against a {@link Topology} into the unit properties systemd takes
 * (CPUAffinity=, NUMAPolicy=, NUMAMask=), each with the reason for the choice.
 *
 * Pure and deterministic: the same section and topology give the same result, whatever the order
 * of the section's keys.
 */
import { OpdbusError, lazySchema } from '@opdbus/core';
import { z } from 'zod';
import { formatCpuList } from './cpuList.js';
import type { CpuCore, NumaNode, PciDevice, Topology } from './topology.js';

// ---------------------------------------------------------------------------------------------
// The state document section

const sizePattern = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i;
const unitPattern = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|mount|swap)$/;

/** Memory policies, with systemd's NUMAPolicy= names. */
export const numaPolicies = ['bind', 'preferred', 'interleave', 'local', 'default'] as const;

/** A memory policy: systemd's NUMAPolicy= (and set_mempolicy(2)'s MPOL_*). */
export type NumaPolicy = (typeof numaPolicies)[number];

/**
 * The MPOL_* value of each policy: systemd's D-Bus property NUMAPolicy (type `i`) carries it.
 */
export const numaPolicyCodes: Readonly<Record<NumaPolicy, number>> = {
  default: 0,
  preferred: 1,
  bind: 2,
  interleave: 3,
  local: 4,
};

/** The zod schema of one placement request (a value of `numa.placements`). */
export const placementRequestSchema = lazySchema(() =>
  z
    .strictObject({
      cpus: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe('How many CPUs (hardware threads) the unit gets; they become its CPUAffinity=.'),
      memory: z
        .union([z.number().int().min(0), z.string().regex(sizePattern, 'a size such as 512M, 32G or 1.5T')])
        .optional()
        .describe(
          'Memory the unit needs on its NUMA nodes: bytes, or a size with K, M, G, T (powers of 1024, as systemd).',
        ),
      node: z.number().int().min(0).optional().describe('Place on this NUMA node and no other.'),
      nodes: z
        .array(z.number().int().min(0))
        .min(1)
        .optional()
        .describe(
          'Place on these NUMA nodes only (memory-only nodes such as CXL memory may be listed for memory).',
        ),
      near: z
        .string()
        .min(1)
        .optional()
        .describe(
          'Place near a PCI device: its address (0000:3b:00.0 or 3b:00.0) or a name sysfs shows under it (network interface, card0, nvme0, mlx5_0).',
        ),
      strict: z
        .boolean()
        .optional()
        .describe(
          'With `near`: fail rather than fall back to the next nearest node when the device node is full.',
        ),
      exclusive: z
        .boolean()
        .optional()
        .describe(
          'No other placement gets these CPUs, nor the other hardware threads of their cores. Exclusive placements spread over nodes.',
        ),
      smt: z
        .enum(['pack', 'avoid'])
        .optional()
        .describe(
          '`pack` (default): hardware threads of a core together; `avoid`: one thread per core (the others stay free, or reserved when exclusive).',
        ),
      numaPolicy: z
        .enum(numaPolicies)
        .optional()
        .describe(
          'Memory policy (NUMAPolicy=): bind (default), preferred (the first chosen node), interleave, local, or default (leave it alone).',
        ),
      span: z
        .boolean()
        .optional()
        .describe('Allow more than one node when one does not have room (default true; never with `node`).'),
    })
    .superRefine((request, ctx) => {
      if (request.cpus === undefined && request.memory === undefined) {
        ctx.addIssue({ code: 'custom', message: 'a placement asks for `cpus`, `memory` or both' });
      }
      const where = [request.node, request.nodes, request.near].filter((x) => x !== undefined).length;
      if (where > 1) {
        ctx.addIssue({ code: 'custom', message: 'use one of `node`, `nodes` and `near`' });
      }
      if (request.strict !== undefined && request.near === undefined) {
        ctx.addIssue({ code: 'custom', path: ['strict'], message: '`strict` applies to `near` only' });
      }
    })
    .describe('What a unit needs: CPUs, memory, and where (a node, or near a device).'),
);

/** One placement request. */
export type PlacementRequest = z.infer<typeof placementRequestSchema>;

/** The zod schema of `numa.placements`: systemd unit name → request. */
export const numaPlacementsSchema = lazySchema(() =>
  z
    .record(z.string(), placementRequestSchema)
    .superRefine((placements, ctx) => {
      for (const unit of Object.keys(placements)) {
        if (!unitPattern.test(unit)) {
          ctx.addIssue({
            code: 'custom',
            path: [unit],
            message:
              'not a systemd unit that runs processes: use a .service, .socket, .mount or .swap unit name',
          });
        }
      }
    })
    .describe(
      'CPUs, memory and locality for systemd units (.service, .socket, .mount, .swap), resolved into CPUAffinity=, NUMAPolicy= and NUMAMask=.',
    ),
);

/** The zod schema of the `numa` section of the state document. */
export const numaSectionSchema = lazySchema(() =>
  z.strictObject({ placements: numaPlacementsSchema }).describe('NUMA-aware placement of systemd units.'),
);

/** The `numa` section of the state document. */
export type NumaSection = z.infer<typeof numaSectionSchema>;

// ---------------------------------------------------------------------------------------------
// The result

/** The unit properties of a placement, in unit-file syntax, keyed by systemd directive name. */
export interface SystemdNumaProperties {
  /** `CPUAffinity=`, e.g. `0-3,32-35` (absent when the request has no CPUs). */
  CPUAffinity?: string;
  /** `NUMAPolicy=` (absent for `default`). */
  NUMAPolicy?: Exclude<NumaPolicy, 'default'>;
  /** `NUMAMask=`, e.g. `1` (absent for `local` and `default`). */
  NUMAMask?: string;
}

/** A resolved placement. */
export interface ResolvedPlacement {
  unit: string;
  /** The CPUs (CPUAffinity=), sorted. */
  cpus: number[];
  /** The nodes of those CPUs. */
  nodes: number[];
  /** The nodes memory is bound to / preferred on / interleaved over (NUMAMask=). */
  memoryNodes: number[];
  numaPolicy: NumaPolicy;
  exclusive: boolean;
  /** The memory asked for, in bytes (0 when none). */
  memoryBytes: number;
  /** Threads kept idle for an exclusive placement: the other threads of its cores. */
  reservedCpus: number[];
  /** What systemd takes (unit-file syntax). */
  properties: SystemdNumaProperties;
  /** Which node(s) and why, for people. */
  reason: string;
}

/** Every placement of a section, resolved. */
export interface PlacementResult {
  /** By unit name, sorted. */
  placements: ResolvedPlacement[];
  /** The order they were resolved in (exclusive first, then constrained, then larger, then by name). */
  order: string[];
}

/** Options of {@link resolvePlacements}. */
export interface ResolveOptions {
  /** Prefix of the document path in errors (default `plugins.numa.placements`). */
  path?: string;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Bytes of a size: a number of bytes, or `512M`, `32G`, `1.5T` (powers of 1024). */
export function parseSize(size: number | string): number {
  if (typeof size === 'number') return size;
  const match = sizePattern.exec(size.trim());
  if (match === null)
    throw new OpdbusError('OPDBUS_ERR_STATE_INVALID', `"${size}" is not a size such as 512M or 32G.`);
  const power = ' KMGTP'.indexOf((match[2] ?? '').toUpperCase() || ' ');
  return Math.round(Number(match[1]) * 1024 ** power);
}

/** A size for people: `32 GiB`, `1.5 TiB`, `512 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text =
    value >= 100 || Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${units[unit]}`;
}

/**
 * The bytes of a CPU or node set as systemd's D-Bus properties CPUAffinity and NUMAMask (type
 * `ay`) carry it: bit `i % 8` of byte `i / 8` is member `i`.
 */
export function cpuSetToBytes(members: Iterable<number>): number[] {
  const bytes: number[] = [];
  for (const m of members) {
    const index = Math.floor(m / 8);
    while (bytes.length <= index) bytes.push(0);
    bytes[index]! |= 1 << (m % 8);
  }
  return bytes;
}

/** The members of a CPU or node set in systemd's D-Bus byte form (the inverse of {@link cpuSetToBytes}). */
export function bytesToCpuSet(bytes: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++)
    for (let bit = 0; bit < 8; bit++) if ((bytes[i]! >> bit) & 1) out.push(i * 8 + bit);
  return out;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function describeDevice(device: PciDevice): string {
  const names = [
    ...device.netInterfaces,
    ...device.drmDevices,
    ...device.nvmeControllers,
    ...device.infinibandDevices,
  ];
  const kind = {
    gpu: 'GPU',
    nic: 'NIC',
    infiniband: 'InfiniBand HCA',
    nvme: 'NVMe',
    storage: 'storage',
    accelerator: 'accelerator',
    bridge: 'bridge',
    other: 'device',
  }[device.kind];
  return `${kind} ${device.address}${names.length > 0 ? ` (${names.join(', ')})` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The resolver

interface State {
  /** CPUs held by exclusive placements (including their reserved sibling threads) → unit. */
  held: Map<number, string>;
  /** How many non-exclusive placements use each CPU. */
  load: Map<number, number>;
  /** Memory claimed per node. */
  claimed: Map<number, number>;
}

interface Slot {
  core: CpuCore;
  /** Threads this request may use, lowest first. */
  threads: number[];
  load: number;
  domain: number;
  group: number;
}

interface Anchor {
  node: number;
  why: string;
  /** The device, when `near`. */
  device?: PciDevice;
}

class Resolver {
  readonly #t: Topology;
  readonly #path: string;
  readonly #state: State = { held: new Map(), load: new Map(), claimed: new Map() };
  readonly #nodeById: Map<number, NumaNode>;
  readonly #nodeIndex: Map<number, number>;
  readonly #isolated: Set<number>;
  readonly #nodeOfCpu: Map<number, number | null>;
  /** For each CPU: index of its last-level cache and of its L2 group (cores sharing an L2). */
  readonly #domainOf = new Map<number, number>();
  readonly #groupOf = new Map<number, number>();

  constructor(topology: Topology, path: string) {
    this.#t = topology;
    this.#path = path;
    this.#nodeById = new Map(topology.nodes.map((n) => [n.id, n]));
    this.#nodeIndex = new Map(topology.nodes.map((n, i) => [n.id, i]));
    this.#isolated = new Set(topology.isolatedCpus);
    this.#nodeOfCpu = new Map(topology.processors.map((p) => [p.id, p.node]));
    const unified = topology.caches.filter((c) => c.type !== 'instruction' && c.level >= 2);
    const top = Math.max(0, ...unified.map((c) => c.level));
    for (const [i, cache] of topology.caches.entries()) {
      if (cache.level === top && cache.type !== 'instruction')
        for (const cpu of cache.cpus) this.#domainOf.set(cpu, i);
      if (cache.level === 2 && cache.type !== 'instruction' && top > 2)
        for (const cpu of cache.cpus) this.#groupOf.set(cpu, i);
    }
  }

  distance(from: number, to: number): number {
    if (from === to) return 10;
    const value = this.#nodeById.get(from)?.distances[this.#nodeIndex.get(to) ?? -1];
    return value ?? 20;
  }

  #fail(
    code: `OPDBUS_ERR_NUMA_${string}`,
    unit: string,
    message: string,
    data: Record<string, unknown> = {},
  ): OpdbusError {
    const path = `${this.#path}[${JSON.stringify(unit)}]`;
    return new OpdbusError(code, `Placement of ${unit} (${path}): ${message}`, {
      data: { path, unit, ...data },
    });
  }

  #anchor(unit: string, request: PlacementRequest): Anchor | undefined {
    if (request.node !== undefined) {
      if (!this.#nodeById.has(request.node)) {
        throw this.#fail(
          'OPDBUS_ERR_NUMA_UNKNOWN_NODE',
          unit,
          `node ${request.node} does not exist; this machine has node(s) ${formatCpuList(this.#nodeById.keys())}.`,
          { node: request.node },
        );
      }
      return { node: request.node, why: `node ${request.node} as asked` };
    }
    if (request.near === undefined) return undefined;
    const device = this.#findDevice(request.near);
    if (device === undefined) {
      const known = this.#t.pciDevices
        .filter((d) => d.kind !== 'bridge' && d.kind !== 'other')
        .map((d) => describeDevice(d));
      throw this.#fail(
        'OPDBUS_ERR_NUMA_UNKNOWN_DEVICE',
        unit,
        `no PCI device "${request.near}" (by address, network interface, DRM, NVMe or RDMA name) on this machine${known.length > 0 ? `; devices: ${known.slice(0, 12).join('; ')}` : ''}.`,
        { near: request.near },
      );
    }
    let node = device.node;
    if (node === null) {
      const match = this.#t.nodes.find(
        (n) =>
          n.cpus.length > 0 &&
          n.cpus.length === device.localCpus.length &&
          n.cpus.every((c, i) => device.localCpus[i] === c),
      );
      if (match === undefined) {
        throw this.#fail(
          'OPDBUS_ERR_NUMA_NO_LOCALITY',
          unit,
          `${describeDevice(device)} has no NUMA node (numa_node is -1: the firmware does not say where it is attached); name the node with \`node:\` instead of \`near:\`.`,
          { near: request.near, device: device.address },
        );
      }
      node = match.id;
    }
    return { node, why: `${describeDevice(device)} is on node ${node}`, device };
  }

  #findDevice(near: string): PciDevice | undefined {
    const address = /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(near) ? `0000:${near}` : near;
    return this.#t.pciDevices.find(
      (d) =>
        d.address === address.toLowerCase() ||
        d.netInterfaces.includes(near) ||
        d.drmDevices.includes(near) ||
        d.nvmeControllers.includes(near) ||
        d.infinibandDevices.includes(near),
    );
  }

  /** The cores of `node` with the threads this request may use, and their load. */
  #slots(node: number, request: PlacementRequest): Slot[] {
    const exclusive = request.exclusive === true;
    const slots: Slot[] = [];
    for (const core of this.#t.cores) {
      if (core.node !== node) continue;
      if (core.cpus.some((c) => this.#state.held.has(c))) continue;
      const threads = core.cpus.filter((c) => !this.#isolated.has(c));
      if (threads.length === 0) continue;
      const load = Math.max(...core.cpus.map((c) => this.#state.load.get(c) ?? 0));
      if (exclusive && load > 0) continue;
      slots.push({
        core,
        threads: request.smt === 'avoid' ? threads.slice(0, 1) : threads,
        load,
        domain: this.#domainOf.get(core.cpus[0]!) ?? -1,
        group: this.#groupOf.get(core.cpus[0]!) ?? core.id,
      });
    }
    return slots;
  }

  #freeMemory(node: number): number {
    return (this.#nodeById.get(node)?.memoryBytes ?? 0) - (this.#state.claimed.get(node) ?? 0);
  }

  #capacity(slots: Slot[]): number {
    return slots.reduce((sum, s) => sum + s.threads.length, 0);
  }

  resolve(unit: string, request: PlacementRequest): ResolvedPlacement {
    const wantCpus = request.cpus ?? 0;
    const wantMemory = request.memory === undefined ? 0 : parseSize(request.memory);
    const exclusive = request.exclusive === true;
    const policy = request.numaPolicy ?? 'bind';
    const anchor = this.#anchor(unit, request);
    if (request.nodes !== undefined) {
      const unknown = request.nodes.filter((n) => !this.#nodeById.has(n));
      if (unknown.length > 0) {
        throw this.#fail(
          'OPDBUS_ERR_NUMA_UNKNOWN_NODE',
          unit,
          `node(s) ${formatCpuList(unknown)} do not exist; this machine has node(s) ${formatCpuList(this.#nodeById.keys())}.`,
          { nodes: unknown },
        );
      }
    }
    const allowed =
      request.node !== undefined
        ? [request.node]
        : request.nodes !== undefined
          ? [...new Set(request.nodes)].sort((a, b) => a - b)
          : // A GPU's memory is used only when named: not for other units' memory.
            this.#t.nodes.filter((n) => n.memoryKind !== 'GPUMemory').map((n) => n.id);
    if (wantCpus > 0 && allowed.every((n) => (this.#nodeById.get(n)?.cpus.length ?? 0) === 0)) {
      throw this.#fail(
        'OPDBUS_ERR_NUMA_UNKNOWN_NODE',
        unit,
        `node(s) ${formatCpuList(allowed)} have no CPUs (memory-only), and ${plural(wantCpus, 'CPU')} are asked for; add a node with CPUs.`,
        { nodes: allowed },
      );
    }
    const slotsOf = new Map(allowed.map((n) => [n, this.#slots(n, request)]));
    const cpuRoom = (n: number): number => (wantCpus > 0 ? this.#capacity(slotsOf.get(n)!) : 0);
    const idle = (n: number): number =>
      wantCpus > 0 ? this.#capacity(slotsOf.get(n)!.filter((s) => s.load === 0)) : 0;
    const memRoom = (n: number): number => this.#freeMemory(n);
    const fits = (n: number): boolean =>
      (wantCpus === 0 || cpuRoom(n) >= wantCpus) &&
      memRoom(n) >= wantMemory &&
      (wantCpus > 0 || (this.#nodeById.get(n)?.memoryBytes ?? 0) > 0);

    // Rank the allowed nodes: by distance from the anchor, else by room (spreads placements).
    const ranked = [...allowed].sort((a, b) => {
      if (anchor !== undefined) {
        const d = this.distance(anchor.node, a) - this.distance(anchor.node, b);
        if (d !== 0) return d;
      }
      return idle(b) - idle(a) || cpuRoom(b) - cpuRoom(a) || memRoom(b) - memRoom(a) || a - b;
    });
    const strict = request.node !== undefined || request.strict === true;
    const spanAllowed = request.span !== false && request.node === undefined;
    const candidates = strict && anchor !== undefined ? ranked.filter((n) => n === anchor.node) : ranked;

    let chosen: number[] | undefined;
    const single = candidates.find(fits);
    if (single !== undefined) {
      chosen = [single];
    } else if (spanAllowed && !(strict && anchor !== undefined)) {
      chosen = this.#span(ranked, wantCpus, wantMemory, cpuRoom, memRoom);
    }
    if (chosen === undefined) {
      throw this.#shortage(
        unit,
        request,
        strict && anchor !== undefined ? [anchor.node] : ranked,
        wantCpus,
        wantMemory,
        cpuRoom,
        memRoom,
        spanAllowed,
      );
    }

    // Take the CPUs, node by node in the chosen order.
    const cpus: number[] = [];
    const reserved: number[] = [];
    const notes: string[] = [];
    let remaining = wantCpus;
    for (const node of chosen) {
      if (remaining === 0) break;
      const slots = slotsOf.get(node)!;
      const take = Math.min(remaining, this.#capacity(slots));
      if (take === 0) continue;
      const picked = this.#pick(slots, take);
      cpus.push(...picked.cpus);
      remaining -= picked.cpus.length;
      notes.push(picked.note);
      if (exclusive)
        for (const slot of picked.slots)
          for (const c of slot.core.cpus) if (!picked.cpus.includes(c)) reserved.push(c);
    }
    cpus.sort((a, b) => a - b);
    reserved.sort((a, b) => a - b);
    const cpuNodes = [...new Set(cpus.map((c) => this.#nodeOfCpu.get(c) ?? -1))]
      .filter((n) => n >= 0)
      .sort((a, b) => a - b);
    // Why, said before this placement's memory is claimed.
    const where = chosen.length === 1 ? `node ${chosen[0]}` : `nodes ${chosen.join(', ')}`;
    const why = this.#why(anchor, chosen, ranked, wantCpus, wantMemory, cpuRoom, memRoom, idle);
    // Memory: on the CPUs' nodes, then (spill-over, e.g. onto CXL memory) on the other chosen
    // nodes in order; every listed node when `nodes` names them (that is how CXL memory is asked for).
    const hasMemory = (n: number): boolean => (this.#nodeById.get(n)?.memoryBytes ?? 0) > 0;
    let memoryNodes: number[];
    if (request.nodes !== undefined) {
      memoryNodes = allowed.filter(hasMemory);
    } else {
      memoryNodes = cpuNodes.filter(hasMemory);
      let room = memoryNodes.reduce((sum, n) => sum + Math.max(0, memRoom(n)), 0);
      for (const node of chosen) {
        if (memoryNodes.includes(node) || !hasMemory(node) || (memoryNodes.length > 0 && room >= wantMemory))
          continue;
        memoryNodes.push(node);
        room += Math.max(0, memRoom(node));
      }
      if (memoryNodes.length === 0) {
        // CPUs on memoryless nodes: the nearest node with memory.
        const nearest = this.#t.nodes
          .filter((n) => hasMemory(n.id) && n.memoryKind !== 'GPUMemory')
          .sort(
            (a, b) => this.distance(chosen[0]!, a.id) - this.distance(chosen[0]!, b.id) || a.id - b.id,
          )[0];
        if (nearest !== undefined) memoryNodes.push(nearest.id);
      }
    }
    const primary = chosen.find((n) => memoryNodes.includes(n)) ?? memoryNodes[0];
    const claimOrder = [...memoryNodes].sort(
      (a, b) =>
        (a === primary ? -1 : b === primary ? 1 : 0) ||
        this.distance(primary ?? a, a) - this.distance(primary ?? b, b) ||
        a - b,
    );
    const unclaimedBefore = new Map(memoryNodes.map((n) => [n, Math.max(0, memRoom(n))]));
    let toClaim = wantMemory;
    for (const node of claimOrder) {
      const claim = Math.min(toClaim, unclaimedBefore.get(node)!);
      this.#state.claimed.set(node, (this.#state.claimed.get(node) ?? 0) + claim);
      toClaim -= claim;
    }
    memoryNodes.sort((a, b) => a - b);
    for (const cpu of cpus) {
      if (exclusive) this.#state.held.set(cpu, unit);
      else this.#state.load.set(cpu, (this.#state.load.get(cpu) ?? 0) + 1);
    }
    for (const cpu of reserved) this.#state.held.set(cpu, unit);

    const maskNodes = policy === 'preferred' ? (primary === undefined ? [] : [primary]) : memoryNodes;
    const properties: SystemdNumaProperties = {};
    if (cpus.length > 0) properties.CPUAffinity = formatCpuList(cpus);
    if (policy !== 'default') properties.NUMAPolicy = policy;
    if (policy !== 'default' && policy !== 'local' && maskNodes.length > 0)
      properties.NUMAMask = formatCpuList(maskNodes);

    const parts = [`${where}: ${why}`];
    if (notes.length > 0) parts.push(notes.join('; '));
    if (reserved.length > 0) parts.push(`exclusive: sibling thread(s) ${formatCpuList(reserved)} kept idle`);
    else if (exclusive) parts.push('exclusive');
    if (wantMemory > 0) {
      parts.push(
        `${formatBytes(wantMemory)} memory on node(s) ${formatCpuList(memoryNodes)} (${memoryNodes
          .map(
            (n) =>
              `node ${n} had ${formatBytes(unclaimedBefore.get(n)!)} of ${formatBytes(this.#nodeById.get(n)?.memoryBytes ?? 0)} unclaimed`,
          )
          .join(', ')})`,
      );
    }
    if (policy !== 'default')
      parts.push(
        `NUMAPolicy=${policy}${properties.NUMAMask === undefined ? '' : ` NUMAMask=${properties.NUMAMask}`}`,
      );
    return {
      unit,
      cpus,
      nodes: cpuNodes,
      memoryNodes: policy === 'default' || policy === 'local' ? [] : maskNodes,
      numaPolicy: policy,
      exclusive,
      memoryBytes: wantMemory,
      reservedCpus: reserved,
      properties,
      reason: parts.join('; '),
    };
  }

  /** Grow from the best node to the nearest others until CPUs and memory suffice. */
  #span(
    ranked: number[],
    wantCpus: number,
    wantMemory: number,
    cpuRoom: (n: number) => number,
    memRoom: (n: number) => number,
  ): number[] | undefined {
    const withCpus = ranked.filter((n) => wantCpus === 0 || cpuRoom(n) > 0);
    const start = withCpus[0] ?? ranked[0];
    if (start === undefined) return undefined;
    const chosen = [start];
    let cpus = cpuRoom(start);
    let memory = Math.max(0, memRoom(start));
    const rest = ranked
      .filter((n) => n !== start)
      .sort(
        (a, b) => this.distance(start, a) - this.distance(start, b) || ranked.indexOf(a) - ranked.indexOf(b),
      );
    for (const node of rest) {
      if (cpus >= wantCpus && memory >= wantMemory) break;
      const addsCpus = cpus < wantCpus && cpuRoom(node) > 0;
      const addsMemory = memory < wantMemory && memRoom(node) > 0;
      if (!addsCpus && !addsMemory) continue;
      chosen.push(node);
      cpus += cpuRoom(node);
      memory += Math.max(0, memRoom(node));
    }
    return cpus >= wantCpus && memory >= wantMemory ? chosen : undefined;
  }

  /** Pick `count` threads from a node's slots: one cache domain if possible, whole cores, least load. */
  #pick(slots: Slot[], count: number): { cpus: number[]; slots: Slot[]; note: string } {
    // Prefer the least loaded threads: the lowest load level that has room.
    const levels = [...new Set(slots.map((s) => s.load))].sort((a, b) => a - b);
    let usable = slots;
    for (const level of levels) {
      usable = slots.filter((s) => s.load <= level);
      if (this.#capacity(usable) >= count) break;
    }
    const order = (groupOf: (s: Slot) => number, items: Slot[], need: number): number[] => {
      const room = new Map<number, number>();
      const first = new Map<number, number>();
      for (const s of items) {
        const g = groupOf(s);
        room.set(g, (room.get(g) ?? 0) + s.threads.length);
        if (!first.has(g)) first.set(g, s.threads[0]!);
      }
      // Best fit: the smallest group that holds everything; else the largest groups first.
      return [...room.keys()].sort((a, b) => {
        const fa = room.get(a)! >= need;
        const fb = room.get(b)! >= need;
        if (fa !== fb) return fa ? -1 : 1;
        const byRoom = fa ? room.get(a)! - room.get(b)! : room.get(b)! - room.get(a)!;
        return byRoom || first.get(a)! - first.get(b)!;
      });
    };
    const sorted: Slot[] = [];
    for (const domain of order((s) => s.domain, usable, count)) {
      const inDomain = usable.filter((s) => s.domain === domain);
      for (const group of order((s) => s.group, inDomain, Math.min(count, this.#capacity(inDomain)))) {
        sorted.push(
          ...inDomain
            .filter((s) => s.group === group)
            .sort((a, b) => a.load - b.load || a.threads[0]! - b.threads[0]!),
        );
      }
    }
    const picked: Slot[] = [];
    const cpus: number[] = [];
    let remaining = count;
    const pool = [...sorted];
    while (remaining > 0 && pool.length > 0) {
      let index = 0;
      if (pool[0]!.threads.length > remaining) {
        // A partial core: prefer one whose free threads match what is left exactly.
        const domain = pool[0]!.domain;
        const exact = pool.findIndex((s) => s.domain === domain && s.threads.length === remaining);
        if (exact >= 0) index = exact;
      }
      const slot = pool.splice(index, 1)[0]!;
      const threads = slot.threads.slice(0, remaining);
      cpus.push(...threads);
      picked.push(slot);
      remaining -= threads.length;
    }
    const whole = picked.filter((s) => s.core.cpus.every((c) => cpus.includes(c))).length;
    const partial = picked.length - whole;
    const domains = new Set(picked.map((s) => s.domain).filter((d) => d >= 0));
    const cache =
      domains.size === 0
        ? ''
        : domains.size === 1
          ? ` sharing one L${this.#t.caches[[...domains][0]!]!.level}`
          : ` across ${domains.size} L${this.#t.caches[[...domains][0]!]!.level} caches`;
    const cores =
      partial === 0
        ? `${plural(whole, 'whole core')}`
        : whole === 0
          ? `${plural(partial, 'core')} (one thread each)`
          : `${plural(whole, 'whole core')} + ${plural(partial, 'partial core')}`;
    const shared = Math.max(...picked.map((s) => s.load));
    return {
      cpus,
      slots: picked,
      note: `${plural(cpus.length, 'CPU')} (${formatCpuList(cpus)}) as ${cores}${cache}${shared > 0 ? `, shared with ${plural(shared, 'other placement')}` : ''}`,
    };
  }

  #why(
    anchor: Anchor | undefined,
    chosen: number[],
    ranked: number[],
    wantCpus: number,
    wantMemory: number,
    cpuRoom: (n: number) => number,
    memRoom: (n: number) => number,
    idle: (n: number) => number,
  ): string {
    const room = (n: number): string =>
      [
        wantCpus > 0 ? `${cpuRoom(n)} free CPUs` : '',
        wantMemory > 0 ? `${formatBytes(Math.max(0, memRoom(n)))} unclaimed memory` : '',
      ]
        .filter(Boolean)
        .join(', ');
    const first = chosen[0]!;
    if (anchor !== undefined) {
      if (first === anchor.node) {
        return chosen.length === 1
          ? `${anchor.why} (${room(first)})`
          : `${anchor.why}, which has room for part only; nearest nodes added by distance`;
      }
      return `${anchor.why}, which has ${room(anchor.node) || 'no CPUs'}; node ${first} is the nearest with room (distance ${this.distance(anchor.node, first)})`;
    }
    if (chosen.length > 1) return `no single node has room; node ${first} and its nearest nodes by distance`;
    const others = ranked.filter(
      (n) => n !== first && (wantCpus === 0 || (this.#nodeById.get(n)?.cpus.length ?? 0) > 0),
    );
    if (others.length === 0) return `the only node with room (${room(first)})`;
    const key = (n: number): string => `${idle(n)}/${cpuRoom(n)}/${Math.max(0, memRoom(n))}`;
    const tied = others.filter((n) => key(n) === key(first));
    const tie = tied.length > 0 ? `; tied with node(s) ${formatCpuList(tied)}, lowest id first` : '';
    return `most room among node(s) ${formatCpuList([first, ...others])} (${room(first)}${tie})`;
  }

  #shortage(
    unit: string,
    request: PlacementRequest,
    nodes: number[],
    wantCpus: number,
    wantMemory: number,
    cpuRoom: (n: number) => number,
    memRoom: (n: number) => number,
    spanAllowed: boolean,
  ): OpdbusError {
    const details = nodes.map((n) => {
      const node = this.#nodeById.get(n)!;
      const held = node.cpus.filter((c) => this.#state.held.has(c));
      const holders = [...new Set(held.map((c) => this.#state.held.get(c)!))];
      const parts = [`node ${n}:`];
      if (wantCpus > 0) {
        parts.push(`${cpuRoom(n)} of ${node.cpus.length} CPUs free`);
        if (held.length > 0) parts.push(`(${held.length} held exclusively by ${holders.join(', ')})`);
      }
      if (wantMemory > 0)
        parts.push(
          `${formatBytes(Math.max(0, memRoom(n)))} of ${formatBytes(node.memoryBytes)} memory unclaimed`,
        );
      return parts.join(' ');
    });
    const roomCpus = spanAllowed
      ? nodes.reduce((s, n) => s + cpuRoom(n), 0)
      : Math.max(0, ...nodes.map(cpuRoom));
    const roomMemory = spanAllowed
      ? nodes.reduce((s, n) => s + Math.max(0, memRoom(n)), 0)
      : Math.max(0, ...nodes.map((n) => memRoom(n)));
    const short: string[] = [];
    if (wantCpus > 0 && roomCpus < wantCpus)
      short.push(
        `${plural(wantCpus, 'CPU')}${request.exclusive ? ' exclusively' : ''}${request.smt === 'avoid' ? ' on separate cores' : ''}`,
      );
    if (wantMemory > 0 && roomMemory < wantMemory) short.push(`${formatBytes(wantMemory)} memory`);
    const scope =
      request.node !== undefined
        ? `on node ${request.node}`
        : request.strict === true
          ? `on node ${nodes[0]}, where ${request.near} is (strict)`
          : !spanAllowed
            ? 'on any one node (span: false)'
            : request.nodes !== undefined
              ? `on node(s) ${formatCpuList(request.nodes)}`
              : 'on this machine';
    return this.#fail(
      'OPDBUS_ERR_NUMA_INSUFFICIENT',
      unit,
      `needs ${short.join(' and ') || `${plural(wantCpus, 'CPU')} and ${formatBytes(wantMemory)} memory on the same node`} ${scope}, which is more than there is: ${details.join('; ')}. Ask for less, allow more nodes, or make other placements non-exclusive.`,
      {
        needed: { cpus: wantCpus, memoryBytes: wantMemory },
        available: Object.fromEntries(
          nodes.map((n) => [n, { cpus: cpuRoom(n), memoryBytes: Math.max(0, memRoom(n)) }]),
        ),
      },
    );
  }
}

function priority(entry: [string, PlacementRequest]): [number, number, number, number, string] {
  const [unit, r] = entry;
  return [
    r.exclusive === true ? 0 : 1,
    r.node !== undefined || r.nodes !== undefined || r.near !== undefined ? 0 : 1,
    -(r.cpus ?? 0),
    -(r.memory === undefined ? 0 : parseSize(r.memory)),
    unit,
  ];
}

/**
 * Resolve every placement of a `numa` section against a topology.
 *
 * Order (independent of the document's): exclusive placements first, then those tied to a node or
 * device, then larger ones, then by unit name. Within that:
 * - a node is chosen by distance from the node or device asked for, else by most free CPUs and
 *   memory (so placements spread over nodes); more nodes are added by distance when one is not
 *   enough (unless `span: false`, `node:` or `strict`);
 * - CPUs are taken from as few last-level caches (and L2 groups) as possible, best fit first,
 *   whole cores before partial ones, least shared first; CPUs isolated with isolcpus= are never
 *   taken; exclusive placements hold their cores' other threads too;
 * - memory is claimed on the CPUs' nodes (then on the nearest nodes with room), from each node's
 *   total minus what earlier placements claimed (not its momentary free memory, so plans are stable).
 *
 * @throws OpdbusError `OPDBUS_ERR_NUMA_UNKNOWN_NODE`, `..._UNKNOWN_DEVICE`, `..._NO_LOCALITY` or
 *   `..._INSUFFICIENT`, with `data.path` naming the placement in the document.
 */
export function resolvePlacements(
  section: NumaSection,
  topology: Topology,
  options: ResolveOptions = {},
): PlacementResult {
  const resolver = new Resolver(topology, options.path ?? 'plugins.numa.placements');
  const entries = Object.entries(section.placements).sort((a, b) => {
    const pa = priority(a);
    const pb = priority(b);
    for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return (pa[i] as number) - (pb[i] as number);
    return pa[4] < pb[4] ? -1 : pa[4] > pb[4] ? 1 : 0;
  });
  const placements = entries.map(([unit, request]) => resolver.resolve(unit, request));
  return {
    placements: [...placements].sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0)),
    order: entries.map(([unit]) => unit),
  };
}
