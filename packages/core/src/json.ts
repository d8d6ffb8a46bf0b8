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
  return write(value, '$');
}

function write(value: unknown, where: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value))
        throw new TypeError(`canonicalJson: ${where} is ${value}, which JSON cannot carry`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value))
        return `[${value.map((v, i) => write(v ?? null, `${where}[${i}]`)).join(',')}]`;
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return write((toJSON as () => unknown).call(value), where);
      const keys = Object.keys(value).sort(compareUtf16);
      const parts: string[] = [];
      for (const key of keys) {
        const member = (value as Record<string, unknown>)[key];
        if (member === undefined) continue;
        parts.push(`${JSON.stringify(key)}:${write(member, `${where}.${key}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: ${where} is a ${typeof value}, which JSON cannot carry`);
  }
}

/** Compare by UTF-16 code units, as RFC 8785 section 3.2.3 requires (not by locale). */
function compareUtf16(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SHA-256 of the canonical JSON of `value`, hex-encoded. */
export function hashJson(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
