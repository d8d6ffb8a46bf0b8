import { OpdbusError } from '@opdbus/core';
import { z } from 'zod';
import { Variant } from './variant.js';

/** A D-Bus basic type code. */
export type BasicTypeCode = 'y' | 'b' | 'n' | 'q' | 'i' | 'u' | 'x' | 't' | 'd' | 'h' | 's' | 'o' | 'g';

/** One complete D-Bus type, parsed. */
export type DbusType =
  | { kind: 'basic'; code: BasicTypeCode }
  | { kind: 'variant' }
  | { kind: 'array'; element: DbusType }
  | { kind: 'dict'; key: DbusType & { kind: 'basic' }; value: DbusType }
  | { kind: 'struct'; fields: DbusType[] };

const basicCodes: ReadonlySet<string> = new Set([
  'y',
  'b',
  'n',
  'q',
  'i',
  'u',
  'x',
  't',
  'd',
  'h',
  's',
  'o',
  'g',
]);

function fail(signature: string, at: number, what: string): never {
  throw new OpdbusError(
    'OPDBUS_ERR_DBUS_SIGNATURE',
    `Invalid D-Bus signature "${signature}" at position ${at}: ${what}.`,
    { data: { signature, position: at } },
  );
}

/**
 * Parse a D-Bus signature (zero or more complete types) into type trees. Throws
 * `OPDBUS_ERR_DBUS_SIGNATURE` naming the position of the error.
 *
 * @example
 * ```ts
 * parseSignature('a{sv}'); // [{ kind: 'dict', key: { kind: 'basic', code: 's' }, value: { kind: 'variant' } }]
 * ```
 */
export function parseSignature(signature: string): DbusType[] {
  if (signature.length > 255) fail(signature, 255, 'longer than 255 characters');
  let pos = 0;
  const one = (depth: number): DbusType => {
    if (depth > 64) fail(signature, pos, 'nested deeper than 64 levels');
    const c = signature[pos];
    if (c === undefined) fail(signature, pos, 'a complete type was expected');
    pos++;
    if (basicCodes.has(c)) return { kind: 'basic', code: c as BasicTypeCode };
    if (c === 'v') return { kind: 'variant' };
    if (c === 'a') {
      if (signature[pos] === '{') {
        pos++;
        const keyAt = pos;
        const key = one(depth + 1);
        if (key.kind !== 'basic') fail(signature, keyAt, 'a dict key must be a basic type');
        const value = one(depth + 1);
        if (signature[pos] !== '}') fail(signature, pos, 'a dict entry has exactly two types, then "}"');
        pos++;
        return { kind: 'dict', key, value };
      }
      return { kind: 'array', element: one(depth + 1) };
    }
    if (c === '(') {
      const fields: DbusType[] = [];
      while (signature[pos] !== ')') {
        if (signature[pos] === undefined) fail(signature, pos, 'unclosed "("');
        fields.push(one(depth + 1));
      }
      if (fields.length === 0) fail(signature, pos, 'an empty struct "()" is not allowed');
      pos++;
      return { kind: 'struct', fields };
    }
    return fail(signature, pos - 1, `unexpected "${c}"`);
  };
  const types: DbusType[] = [];
  while (pos < signature.length) types.push(one(0));
  return types;
}

/** Parse a signature that must hold exactly one complete type (a property's, a variant's). */
export function parseSingleType(signature: string): DbusType {
  const types = parseSignature(signature);
  if (types.length !== 1 || types[0] === undefined)
    fail(signature, 0, 'exactly one complete type was expected');
  return types[0];
}

/** The signature of a parsed type. */
export function formatType(type: DbusType): string {
  switch (type.kind) {
    case 'basic':
      return type.code;
    case 'variant':
      return 'v';
    case 'array':
      return `a${formatType(type.element)}`;
    case 'dict':
      return `a{${formatType(type.key)}${formatType(type.value)}}`;
    case 'struct':
      return `(${type.fields.map(formatType).join('')})`;
  }
}

/** Whether `signature` is a valid D-Bus signature. */
export function isValidSignature(signature: string): boolean {
  try {
    parseSignature(signature);
    return true;
  } catch {
    return false;
  }
}

const intRanges: Partial<Record<BasicTypeCode, [number, number]>> = {
  y: [0, 255],
  n: [-32768, 32767],
  q: [0, 65535],
  i: [-2147483648, 2147483647],
  u: [0, 4294967295],
  h: [0, 4294967295],
};
const bigRanges: Partial<Record<BasicTypeCode, [bigint, bigint]>> = {
  x: [-(2n ** 63n), 2n ** 63n - 1n],
  t: [0n, 2n ** 64n - 1n],
};

/** Direction of a TypeScript mapping: what callers pass (`in`) or what replies carry (`out`). */
export type TypeDirection = 'in' | 'out';

/**
 * The TypeScript type of a D-Bus type, as the bindings use it: integers are `number` (64-bit ones
 * `bigint`, and callers may pass a `number`), `ay` is `Uint8Array` (a Buffer in replies), structs
 * are tuples, dicts are records, variants are {@link Variant}.
 */
export function tsType(type: DbusType, direction: TypeDirection = 'out'): string {
  switch (type.kind) {
    case 'basic':
      switch (type.code) {
        case 'b':
          return 'boolean';
        case 's':
        case 'o':
        case 'g':
          return 'string';
        case 'x':
        case 't':
          return direction === 'in' ? 'bigint | number' : 'bigint';
        default:
          return 'number';
      }
    case 'variant':
      return 'Variant';
    case 'array':
      if (type.element.kind === 'basic' && type.element.code === 'y') return 'Uint8Array';
      return `Array<${tsType(type.element, direction)}>`;
    case 'dict':
      return `Record<${type.key.code === 's' || type.key.code === 'o' || type.key.code === 'g' ? 'string' : 'string | number'}, ${tsType(type.value, direction)}>`;
    case 'struct':
      return `[${type.fields.map((f) => tsType(f, direction)).join(', ')}]`;
  }
}

/** Source code of a zod schema (using an imported `z` and `Variant`) that checks a value of this type. */
export function zodSource(type: DbusType): string {
  switch (type.kind) {
    case 'basic': {
      const ints = intRanges[type.code];
      if (ints !== undefined) return `z.number().int().min(${ints[0]}).max(${ints[1]})`;
      const bigs = bigRanges[type.code];
      if (bigs !== undefined)
        return `z.union([z.bigint().min(${bigs[0]}n).max(${bigs[1]}n), z.number().int().min(${type.code === 't' ? 0 : 'Number.MIN_SAFE_INTEGER'}).max(Number.MAX_SAFE_INTEGER)])`;
      switch (type.code) {
        case 'b':
          return 'z.boolean()';
        case 'd':
          return 'z.number()';
        case 'o':
          return 'z.string().regex(/^\\/$|^(\\/[A-Za-z0-9_]+)+$/, "a D-Bus object path")';
        default:
          return 'z.string()';
      }
    }
    case 'variant':
      return 'z.instanceof(Variant)';
    case 'array':
      if (type.element.kind === 'basic' && type.element.code === 'y') return 'z.instanceof(Uint8Array)';
      return `z.array(${zodSource(type.element)})`;
    case 'dict':
      return `z.record(z.string(), ${zodSource(type.value)})`;
    case 'struct':
      return `z.tuple([${type.fields.map(zodSource).join(', ')}])`;
  }
}

const objectPathPattern = /^\/$|^(\/[A-Za-z0-9_]+)+$/;

/** A zod schema (built at run time) checking a value of this type, as {@link zodSource} writes it. */
export function zodSchema(type: DbusType): z.ZodType {
  switch (type.kind) {
    case 'basic': {
      const ints = intRanges[type.code];
      if (ints !== undefined) return z.number().int().min(ints[0]).max(ints[1]);
      const bigs = bigRanges[type.code];
      if (bigs !== undefined)
        return z.union([
          z.bigint().min(bigs[0]).max(bigs[1]),
          z
            .number()
            .int()
            .min(type.code === 't' ? 0 : Number.MIN_SAFE_INTEGER)
            .max(Number.MAX_SAFE_INTEGER),
        ]);
      switch (type.code) {
        case 'b':
          return z.boolean();
        case 'd':
          return z.number();
        case 'o':
          return z.string().regex(objectPathPattern, 'a D-Bus object path');
        default:
          return z.string();
      }
    }
    case 'variant':
      return z.instanceof(Variant);
    case 'array':
      if (type.element.kind === 'basic' && type.element.code === 'y') return z.instanceof(Uint8Array);
      return z.array(zodSchema(type.element));
    case 'dict':
      return z.record(z.string(), zodSchema(type.value));
    case 'struct': {
      const [first, ...rest] = type.fields.map(zodSchema);
      // The parser never yields an empty struct.
      return first === undefined ? z.tuple([]) : z.tuple([first, ...rest]);
    }
  }
}
