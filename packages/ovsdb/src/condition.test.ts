import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { matchesConditions, normalizeConditions, rowEquals, valueEquals } from './condition.js';
import type { Row } from './datum.js';
import { DatabaseSchema } from './schema.js';

const schema = DatabaseSchema.parse(
  JSON.parse(readFileSync(new URL('../test/fixtures/kitchen.ovsschema', import.meta.url), 'utf8')),
  'kitchen.ovsschema',
);
const row: Row = {
  _uuid: '6f1c4a3e-1b2c-4d5e-8f90-0123456789ab',
  name: 'apple',
  size: 12,
  color: 'red',
  tags: ['a', 'b'],
  labels: new Map([
    ['k', 'v'],
    ['x', 'y'],
  ]),
};
const holds = (where: unknown[]): boolean =>
  matchesConditions(row, normalizeConditions(schema, 'Item', where).normalized);

describe('client-side conditions (as ovsdb-server evaluates them)', () => {
  it('==, != on scalars, optional values, sets and maps', () => {
    expect(holds([['name', '==', 'apple']])).toBe(true);
    expect(holds([['name', '!=', 'apple']])).toBe(false);
    expect(holds([['color', '==', 'red']])).toBe(true);
    expect(holds([['color', '==', null]])).toBe(false);
    expect(holds([['tags', '==', ['b', 'a']]])).toBe(true);
    expect(holds([['labels', '==', { x: 'y', k: 'v' }]])).toBe(true);
    expect(holds([['_uuid', '==', '6f1c4a3e-1b2c-4d5e-8f90-0123456789ab']])).toBe(true);
  });

  it('ordering on integers', () => {
    expect(holds([['size', '<', 13]])).toBe(true);
    expect(holds([['size', '<=', 11]])).toBe(false);
    expect(
      holds([
        ['size', '>=', 12],
        ['size', '>', 11],
      ]),
    ).toBe(true);
  });

  it('includes / excludes on sets, maps and scalars', () => {
    expect(holds([['tags', 'includes', ['a']]])).toBe(true);
    expect(holds([['tags', 'includes', ['a', 'z']]])).toBe(false);
    expect(holds([['tags', 'excludes', ['z']]])).toBe(true);
    expect(holds([['labels', 'includes', { k: 'v' }]])).toBe(true);
    expect(holds([['labels', 'includes', { k: 'other' }]])).toBe(false);
    expect(holds([['labels', 'excludes', { k: 'other' }]])).toBe(true);
    expect(holds([['name', 'includes', 'apple']])).toBe(true);
    expect(holds([['name', 'excludes', 'apple']])).toBe(false);
  });

  it('constant conditions and conjunction', () => {
    expect(holds([true])).toBe(true);
    expect(holds([false])).toBe(false);
    expect(holds([true, ['name', '==', 'pear']])).toBe(false);
    expect(holds([])).toBe(true);
  });

  it('value and row equality', () => {
    expect(valueEquals(['a', 'b'], ['b', 'a'])).toBe(true);
    expect(valueEquals(new Map([[1, 'a']]), new Map([[1, 'b']]))).toBe(false);
    expect(valueEquals(null, [])).toBe(true);
    expect(rowEquals({ a: 1, b: ['x'] }, { a: 1, b: ['x'] })).toBe(true);
    expect(rowEquals({ a: 1 }, { a: 1, b: 2 })).toBe(false);
  });
});
