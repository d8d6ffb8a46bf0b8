import { createHash } from 'node:crypto';

/** A JSON value. Plans, journals, checkpoints and ledger entries are made of these. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Serialise a value as RFC 8785 (JCS) canonical JSON: object members sorted by their UTF-16 code
 * units, no whitespace, numbers in ECMAScript's shortest round-trip form (which is what JCS
 * specifies), strings escaped as `JSON.stringify` does (which matches JCS).
 *
 * `undefined` members are dropped (as JSON.stringify does); non-finite numbers, bigints,
 * functions and symbols are refused because JSON cannot carry them.
 */
export function canonicalJson(value: unknown): string {
  try {
    return write(value);
  } catch (err) {
    // Only on failure: walk again to say where (building paths eagerly costs more than the rest).
    if (err instanceof NotJson)
      throw new TypeError(`canonicalJson: ${locate(value, '$') ?? '$'} ${err.message}`);
    throw err;
  }
}

class NotJson extends Error {}

function describe(value: unknown): string | undefined {
  if (typeof value === 'number' && !Number.isFinite(value)) return `is ${value}, which JSON cannot carry`;
  if (value === null || ['boolean', 'number', 'string', 'object', 'undefined'].includes(typeof value))
    return undefined;
  return `is a ${typeof value}, which JSON cannot carry`;
}

function locate(value: unknown, where: string): string | undefined {
  const problem = describe(value);
  if (problem !== undefined) return where;
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = locate(value[i] ?? null, `${where}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return locate((toJSON as () => unknown).call(value), where);
  for (const key of Object.keys(value)) {
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined) continue;
    const found = locate(member, `${where}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

function write(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new NotJson(describe(value));
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + write(value[i] ?? null);
        return `${out}]`;
      }
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return write((toJSON as () => unknown).call(value));
      // Array.prototype.sort without a comparator orders strings by UTF-16 code units, which is
      // exactly RFC 8785 section 3.2.3 (not by locale).
      const keys = Object.keys(value).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const member = (value as Record<string, unknown>)[key];
        if (member === undefined) continue;
        out += `${first ? '' : ','}${JSON.stringify(key)}:${write(member)}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      throw new NotJson(describe(value));
  }
}

/** SHA-256 of the canonical JSON of `value`, hex-encoded. */
export function hashJson(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
