import { wallClock, type ChangeEvent, type Json, type WallClock } from './events.js';

/** One leaf value of a change's `after` (or `before` for a delete). */
export interface Leaf {
  /** The value's key across the fleet: `plugin:template#path` (array elements share `path[]`). */
  field: string;
  /** Numbers and numeric strings as numbers; everything else as a string. */
  value: number | string;
  /** The value before the change, when the change was an update and the leaf existed before. */
  before?: number | string;
}

/** What the detectors and the embedder read from one change event. */
export interface ChangeFeatures {
  event: ChangeEvent;
  clock: WallClock;
  /** The collection the resource belongs to: `plugin:units` for `units/nginx.service`. */
  kind: string;
  /** The resource with run-specific parts (numbers, hex ids) collapsed: `plugin:links/eth#`. */
  template: string;
  /** `template|op`: what was done. */
  what: string;
  /** Lower-case tokens of the resource path. */
  tokens: string[];
  /** Leaf values (at most {@link MAX_LEAVES}). */
  leaves: Leaf[];
}

/** At most this many leaves of a value are read (large values are summarised by their first leaves). */
export const MAX_LEAVES = 48;

const numericString = /^-?\d+(\.\d+)?$/;
const hexRun = /^(?=.*\d)[0-9a-f]{8,}$/i;

const hexInside = /(?=[0-9a-f]*\d)[0-9a-f]{6,}/gi;

function segmentTemplate(segment: string): string {
  if (hexRun.test(segment)) return '*';
  return segment.replace(hexInside, '*').replace(/\d+/g, '#');
}

/** Split a resource path into its segments (on `/`). */
export function resourceSegments(resource: string): string[] {
  return resource.split('/').filter((s) => s !== '');
}

/** The collection (`plugin:units`) and template (`plugin:units/nginx.service`) of a resource. */
export function resourceKeys(plugin: string, resource: string): { kind: string; template: string } {
  const segments = resourceSegments(resource);
  const kind = `${plugin}:${segments.slice(0, -1).map(segmentTemplate).join('/')}`;
  const template = `${plugin}:${segments.map(segmentTemplate).join('/')}`;
  return { kind, template };
}

/** Tokens of a resource path: its segments split on punctuation, lower case, digits collapsed. */
export function resourceTokens(resource: string): string[] {
  const out = new Set<string>();
  for (const part of resource.toLowerCase().split(/[^a-z0-9]+/)) {
    if (part === '') continue;
    out.add(hexRun.test(part) ? '*' : part.replace(/\d+/g, '#'));
  }
  return [...out];
}

function asLeafValue(value: Json): number | string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return numericString.test(value.trim()) ? Number(value) : value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value === null) return 'null';
  return undefined;
}

/** Flatten a JSON value into `path → leaf` (arrays of scalars become `path[]` with each element). */
export function flatten(
  value: Json,
  prefix: string,
  out: [string, number | string][],
  limit = MAX_LEAVES,
): void {
  if (out.length >= limit) return;
  const leaf = asLeafValue(value);
  if (leaf !== undefined) {
    out.push([prefix, leaf]);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      if (out.length >= limit) return;
      flatten(item, `${prefix}[]`, out, limit);
    }
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const key of Object.keys(value).sort()) {
      if (out.length >= limit) return;
      flatten(value[key]!, prefix === '' ? key : `${prefix}.${key}`, out, limit);
    }
  }
}

/**
 * Read the features of a change: its resource keys, tokens, wall-clock time and leaf values
 * (with the value before the change, for updates).
 */
export function featurize(event: ChangeEvent): ChangeFeatures {
  const { kind, template } = resourceKeys(event.plugin, event.resource);
  const leaves: Leaf[] = [];
  const source = event.op === 'delete' ? event.before : event.after;
  if (source !== null) {
    const after: [string, number | string][] = [];
    flatten(source, '', after);
    const before = new Map<string, number | string>();
    if (event.op === 'update' && event.before !== null) {
      const b: [string, number | string][] = [];
      flatten(event.before, '', b);
      for (const [path, value] of b) if (!path.endsWith('[]')) before.set(path, value);
    }
    for (const [path, value] of after) {
      const leaf: Leaf = { field: `${template}#${path}`, value };
      const prior = before.get(path);
      if (prior !== undefined && prior !== value) leaf.before = prior;
      leaves.push(leaf);
    }
  }
  return {
    event,
    clock: wallClock(event.at),
    kind,
    template,
    what: `${template}|${event.op}`,
    tokens: resourceTokens(event.resource),
    leaves,
  };
}

/** A positive-or-negative number on a log scale (`sign(x) · ln(1 + |x|)`), for values spanning decades. */
export function logScale(x: number): number {
  return Math.sign(x) * Math.log1p(Math.abs(x));
}
