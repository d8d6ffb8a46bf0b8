import { OpdbusError, lazySchema, type JsonValue } from '@opdbus/core';
import { Variant } from '@opdbus/dbus';
import { z } from 'zod';

const UINT64_MAX = 2n ** 64n - 1n;

/** A set of CPUs or NUMA nodes: `"0-3,6"` or `[0, 1, 2, 3, 6]`; canonical form: sorted numbers. */
export const indexSetSchema = lazySchema(() =>
  z.union([
    z.array(z.number().int().min(0).max(8191)),
    z.string().regex(/^\s*\d+(\s*-\s*\d+)?(\s*[, ]\s*\d+(\s*-\s*\d+)?)*\s*$/, 'a list such as "0-3,6"'),
  ]),
);

/** A size in bytes: a number, a string with a K/M/G/T suffix (1024-based), or "infinity". */
export const sizeSchema = lazySchema(() =>
  z.union([
    z.number().int().min(0),
    z.string().regex(/^(\d+(\.\d+)?\s*[KMGTPE]?|infinity)$/i, 'bytes, e.g. 512M, 2G or infinity'),
  ]),
);

const weight = lazySchema(() => z.number().int().min(1).max(10000));

/** The NUMA memory policies (numa(7)), as systemd.exec(5) names them. */
export const numaPolicies = ['default', 'preferred', 'bind', 'interleave', 'local'] as const;

/**
 * Resource properties of a unit. cgroup properties are applied live with SetUnitProperties
 * (systemd persists them under /etc/systemd/system.control); execution properties (CPUAffinity,
 * NUMAPolicy, NUMAMask, Nice) are written to the drop-in `50-opdbus-properties.conf` and take
 * effect at the unit's next start. All are verified after apply by reading them back over D-Bus.
 */
export const unitPropertiesSchema = lazySchema(() =>
  z
    .strictObject({
      CPUWeight: weight.optional().describe('cgroup CPU weight, 1–10000 (live).'),
      StartupCPUWeight: weight.optional().describe('CPU weight during boot, 1–10000 (live).'),
      CPUQuota: z
        .string()
        .regex(/^\d+(\.\d+)?%$/, 'a percentage such as "150%"')
        .optional()
        .describe('CPU time quota, e.g. "50%" of one CPU (live).'),
      MemoryMax: sizeSchema.optional().describe('Hard memory limit (live).'),
      MemoryHigh: sizeSchema.optional().describe('Memory throttling limit (live).'),
      MemoryLow: sizeSchema.optional().describe('Memory protection (live).'),
      MemoryMin: sizeSchema.optional().describe('Hard memory protection (live).'),
      MemorySwapMax: sizeSchema.optional().describe('Swap limit (live).'),
      TasksMax: z
        .union([z.number().int().min(1), z.literal('infinity')])
        .optional()
        .describe('Maximum number of tasks (live).'),
      IOWeight: weight.optional().describe('cgroup IO weight, 1–10000 (live).'),
      AllowedCPUs: indexSetSchema.optional().describe('cpuset: CPUs the unit may run on (live).'),
      AllowedMemoryNodes: indexSetSchema
        .optional()
        .describe('cpuset: NUMA nodes the unit may allocate from (live).'),
      CPUAffinity: indexSetSchema
        .optional()
        .describe("CPU affinity of the unit's processes (drop-in; next start)."),
      NUMAPolicy: z.enum(numaPolicies).optional().describe('NUMA memory policy (drop-in; next start).'),
      NUMAMask: indexSetSchema.optional().describe('NUMA nodes of the policy (drop-in; next start).'),
      Nice: z
        .number()
        .int()
        .min(-20)
        .max(19)
        .optional()
        .describe('Scheduling priority (drop-in; next start).'),
    })
    .describe('Resource properties, verified after apply over D-Bus.'),
);

/** The resource properties of a unit, as declared. */
export type UnitProperties = z.infer<typeof unitPropertiesSchema>;
/** A property name. */
export type UnitPropertyName = keyof UnitProperties;

/** Properties applied live with SetUnitProperties. */
export const cgroupProperties: readonly UnitPropertyName[] = [
  'CPUWeight',
  'StartupCPUWeight',
  'CPUQuota',
  'MemoryMax',
  'MemoryHigh',
  'MemoryLow',
  'MemoryMin',
  'MemorySwapMax',
  'TasksMax',
  'IOWeight',
  'AllowedCPUs',
  'AllowedMemoryNodes',
];
/** Properties written to the drop-in (execution environment). */
export const execProperties: readonly UnitPropertyName[] = ['CPUAffinity', 'NUMAPolicy', 'NUMAMask', 'Nice'];

/** The file name of the drop-in that carries execution properties. */
export const PROPERTIES_DROP_IN = '50-opdbus-properties.conf';

/** `"0-3,6"` / `[6,0,1]` → `[0,1,2,3,6]`. */
export function parseIndexSet(value: string | readonly number[]): number[] {
  if (typeof value !== 'string') return [...new Set(value)].sort((a, b) => a - b);
  const out = new Set<number>();
  for (const part of value.split(/[\s,]+/).filter(Boolean)) {
    const [a, b] = part.split('-').map((x) => Number(x.trim()));
    if (a === undefined) continue;
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** A bitmask (`ay`, bit i of byte i/8) → indexes. */
export function maskToIndexes(mask: Uint8Array): number[] {
  const out: number[] = [];
  for (const [byteIndex, byte] of mask.entries())
    for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(byteIndex * 8 + bit);
  return out;
}

/** Indexes → a bitmask (`ay`). */
export function indexesToMask(indexes: readonly number[]): Buffer {
  const max = indexes.length === 0 ? -1 : Math.max(...indexes);
  const mask = Buffer.alloc(Math.floor(max / 8) + 1 > 0 ? Math.floor(max / 8) + 1 : 0);
  for (const i of indexes) mask[Math.floor(i / 8)]! |= 1 << (i % 8);
  return mask;
}

const suffixes: Record<string, number> = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6 };

/** `"512M"` → 536870912, `"infinity"` → "infinity". */
export function parseSize(value: number | string): number | 'infinity' {
  if (typeof value === 'number') return value;
  if (value.toLowerCase() === 'infinity') return 'infinity';
  const match = /^(\d+(?:\.\d+)?)\s*([KMGTPE]?)$/i.exec(value);
  if (match === null)
    throw new OpdbusError('OPDBUS_ERR_SYSTEMD_PROPERTY', `"${value}" is not a size (e.g. 512M).`);
  const power = suffixes[(match[2] ?? '').toUpperCase()] ?? 0;
  return Math.round(Number(match[1]) * 1024 ** power);
}

/** The canonical (comparable, JSON) form of a declared property value. */
export function canonicalProperty(name: UnitPropertyName, value: unknown): JsonValue {
  switch (name) {
    case 'AllowedCPUs':
    case 'AllowedMemoryNodes':
    case 'CPUAffinity':
    case 'NUMAMask':
      return parseIndexSet(value as string | number[]);
    case 'MemoryMax':
    case 'MemoryHigh':
    case 'MemoryLow':
    case 'MemoryMin':
    case 'MemorySwapMax':
      return parseSize(value as string | number);
    case 'CPUQuota': {
      const pct = Number(String(value).replace('%', ''));
      return `${Math.round(pct * 100) / 100}%`;
    }
    default:
      return value as JsonValue;
  }
}

/** The D-Bus property to read, by declared name (they differ only for CPUQuota). */
export function dbusPropertyName(name: UnitPropertyName): string {
  return name === 'CPUQuota' ? 'CPUQuotaPerSecUSec' : name;
}

/**
 * A D-Bus property value → the canonical declared form, or undefined when systemd reports it
 * unset (UINT64_MAX weights and quotas, empty masks, NUMAPolicy -1).
 */
export function fromDbusProperty(name: UnitPropertyName, value: unknown): JsonValue | undefined {
  switch (name) {
    case 'AllowedCPUs':
    case 'AllowedMemoryNodes':
    case 'CPUAffinity':
    case 'NUMAMask': {
      const list = value instanceof Uint8Array ? maskToIndexes(value) : [];
      return list.length === 0 ? undefined : list;
    }
    case 'NUMAPolicy': {
      const n = Number(value);
      return n >= 0 && n < numaPolicies.length ? numaPolicies[n] : undefined;
    }
    case 'Nice':
      return Number(value);
    case 'CPUQuota': {
      const v = BigInt(value as bigint);
      return v === UINT64_MAX ? undefined : `${Number(v) / 10_000}%`;
    }
    case 'MemoryMax':
    case 'MemoryHigh':
    case 'MemorySwapMax':
    case 'TasksMax': {
      const v = BigInt(value as bigint);
      return v === UINT64_MAX ? 'infinity' : Number(v);
    }
    case 'MemoryLow':
    case 'MemoryMin':
      return Number(BigInt(value as bigint));
    default: {
      const v = BigInt(value as bigint);
      return v === UINT64_MAX ? undefined : Number(v);
    }
  }
}

/** The `(sv)` pair SetUnitProperties takes for a cgroup property. */
export function toSetUnitProperty(name: UnitPropertyName, canonical: JsonValue): [string, Variant] {
  switch (name) {
    case 'AllowedCPUs':
    case 'AllowedMemoryNodes':
      return [name, new Variant('ay', indexesToMask(canonical as number[]))];
    case 'CPUQuota':
      return [
        'CPUQuotaPerSecUSec',
        new Variant(
          't',
          BigInt(
            Math.round(
              Number(typeof canonical === 'string' ? canonical.replace('%', '') : canonical) * 10_000,
            ),
          ),
        ),
      ];
    default:
      return [name, new Variant('t', canonical === 'infinity' ? UINT64_MAX : BigInt(canonical as number))];
  }
}

/** The drop-in line for an execution property. */
export function execPropertyLine(name: UnitPropertyName, canonical: JsonValue): string {
  if (Array.isArray(canonical))
    return `${name}=${canonical.map((v) => (typeof v === 'number' ? String(v) : '')).join(' ')}`;
  return `${name}=${typeof canonical === 'string' || typeof canonical === 'number' ? canonical : ''}`;
}

/** The D-Bus interface holding a unit type's resource and execution properties. */
export function unitTypeInterface(unit: string): string | undefined {
  const type = unit.slice(unit.lastIndexOf('.') + 1);
  const map: Record<string, string> = {
    service: 'Service',
    socket: 'Socket',
    mount: 'Mount',
    swap: 'Swap',
    slice: 'Slice',
    scope: 'Scope',
  };
  return map[type] === undefined ? undefined : `org.freedesktop.systemd1.${map[type]}`;
}

/** The unit-file section execution properties go in, for unit types that have them. */
export function execSection(unit: string): string | undefined {
  const type = unit.slice(unit.lastIndexOf('.') + 1);
  return ({ service: 'Service', socket: 'Socket', mount: 'Mount', swap: 'Swap' } as Record<string, string>)[
    type
  ];
}
