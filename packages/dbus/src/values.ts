import { OpdbusError, type JsonValue } from '@opdbus/core';
import { parseSingleType, type DbusType } from './signature.js';
import { Variant } from './variant.js';

/**
 * A D-Bus value as JSON: 64-bit integers become numbers when they fit exactly (else decimal
 * strings), byte arrays become arrays of numbers, variants their value, structs arrays, dicts
 * objects.
 */
export function toJson(value: unknown): JsonValue {
  if (value instanceof Variant) return toJson(value.value);
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(toJson);
  if (value === null || value === undefined) return null;
  if (typeof value === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v);
    return out;
  }
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value;
  // Functions and symbols are not D-Bus values.
  return typeof value === 'symbol' ? value.toString() : '[function]';
}

function badJson(type: DbusType, json: unknown, path: string): never {
  throw new OpdbusError(
    'OPDBUS_ERR_DBUS_ARGS',
    `${path || 'value'}: ${JSON.stringify(json)} is not a valid ${describe(type)}.`,
    { data: { path, value: toJson(json) } },
  );
}

function describe(type: DbusType): string {
  switch (type.kind) {
    case 'basic':
      return `D-Bus "${type.code}" value`;
    case 'variant':
      return 'variant ({ "signature": …, "value": … })';
    case 'array':
      return 'array';
    case 'dict':
      return 'object (dict)';
    case 'struct':
      return `struct (array of ${type.fields.length})`;
  }
}

/**
 * The D-Bus value of type `type` (a signature or a parsed type) for a JSON value, the inverse of
 * {@link toJson}: what the auto plugin sends when a state document sets a property. A variant is
 * written as `{ "signature": "s", "value": … }`. Throws `OPDBUS_ERR_DBUS_ARGS` naming the path.
 */
export function fromJson(type: DbusType | string, json: unknown, path = ''): unknown {
  const t = typeof type === 'string' ? parseSingleType(type) : type;
  switch (t.kind) {
    case 'basic':
      switch (t.code) {
        case 'b':
          if (typeof json !== 'boolean') badJson(t, json, path);
          return json;
        case 's':
        case 'o':
        case 'g':
          if (typeof json !== 'string') badJson(t, json, path);
          return json;
        case 'x':
        case 't':
          if (typeof json === 'number' && Number.isInteger(json)) return BigInt(json);
          if (typeof json === 'string' && /^-?\d+$/.test(json)) return BigInt(json);
          return badJson(t, json, path);
        case 'd':
          if (typeof json !== 'number') badJson(t, json, path);
          return json;
        default:
          if (typeof json !== 'number' || !Number.isInteger(json)) badJson(t, json, path);
          return json;
      }
    case 'variant': {
      if (typeof json !== 'object' || json === null || Array.isArray(json)) badJson(t, json, path);
      const { signature, value } = json as { signature?: unknown; value?: unknown };
      if (typeof signature !== 'string') badJson(t, json, path);
      return new Variant(signature, fromJson(signature, value, `${path}.value`));
    }
    case 'array':
      if (!Array.isArray(json)) badJson(t, json, path);
      if (t.element.kind === 'basic' && t.element.code === 'y') {
        if (!json.every((b) => typeof b === 'number' && Number.isInteger(b) && b >= 0 && b < 256))
          badJson(t, json, path);
        return Buffer.from(json as number[]);
      }
      return json.map((item, i) => fromJson(t.element, item, `${path}[${i}]`));
    case 'dict': {
      if (typeof json !== 'object' || json === null || Array.isArray(json)) badJson(t, json, path);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(json)) out[k] = fromJson(t.value, v, `${path}.${k}`);
      return out;
    }
    case 'struct':
      if (!Array.isArray(json) || json.length !== t.fields.length) badJson(t, json, path);
      return t.fields.map((f, i) => fromJson(f, json[i], `${path}[${i}]`));
  }
}
