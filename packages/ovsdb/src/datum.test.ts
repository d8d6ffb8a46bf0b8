import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applyDiff, describeType, tableCodec } from './datum.js';
import { decodeResults, encodeOperation, type Operation } from './operations.js';
import { DatabaseSchema } from './schema.js';

const schema = DatabaseSchema.parse(
  JSON.parse(readFileSync(new URL('../test/fixtures/kitchen.ovsschema', import.meta.url), 'utf8')),
  'kitchen.ovsschema',
);
const item = tableCodec(schema, 'Item');
const U1 = '6f1c4a3e-1b2c-4d5e-8f90-0123456789ab';
const U2 = '7a2d5b4f-2c3d-4e6f-9a01-123456789abc';

describe('the OVSDB data model, both ways', () => {
  it('encodes every column kind to the wire form and decodes it back', () => {
    const row = {
      name: 'apple',
      size: 12,
      weight: 1.5,
      fresh: true,
      color: 'red',
      tags: ['a', 'b'],
      scores: [],
      labels: new Map([['k', 'v']]),
      slots: { 3: U1 },
      parts: [U1, 'newPart'],
      notes: null,
    };
    const wire = item.encodeRow(row, false);
    expect(wire).toEqual({
      name: 'apple',
      size: 12,
      weight: 1.5,
      fresh: true,
      color: 'red',
      tags: ['set', ['a', 'b']],
      scores: ['set', []],
      labels: ['map', [['k', 'v']]],
      slots: ['map', [[3, ['uuid', U1]]]],
      parts: [
        'set',
        [
          ['uuid', U1],
          ['named-uuid', 'newPart'],
        ],
      ],
      notes: ['set', []],
    });
    const decoded = item.decodeRow(
      {
        ...wire,
        parts: [
          'set',
          [
            ['uuid', U1],
            ['uuid', U2],
          ],
        ],
      },
      U2,
    );
    expect(decoded).toEqual({
      _uuid: U2,
      name: 'apple',
      size: 12,
      weight: 1.5,
      fresh: true,
      color: 'red',
      tags: ['a', 'b'],
      scores: [],
      labels: new Map([['k', 'v']]),
      slots: new Map([[3, U1]]),
      parts: [U1, U2],
      notes: null,
    });
    // A one-element set may be sent as the bare atom.
    expect(item.column('tags').decode('solo')).toEqual(['solo']);
    expect(item.column('color').decode(['set', ['green']])).toBe('green');
    expect(item.column('parts').decode(['uuid', U1])).toEqual([U1]);
  });

  it('names table, column, value and the expected type when a value does not fit', () => {
    const cases: [string, unknown, RegExp][] = [
      ['size', 4096, /Item\.size: 4096 is greater than 4095 \(the column is integer 0\.\.4095\)/],
      ['size', 1.5, /Item\.size: 1\.5 is not an integer/],
      ['weight', 101, /Item\.weight: 101 is greater than 100\.5/],
      ['fresh', 'yes', /Item\.fresh: "yes" is not a boolean/],
      [
        'color',
        'blue',
        /Item\.color: "blue" is not one of "red", "green" \(the column is optional string one of "red" \| "green"\)/,
      ],
      ['name', '', /Item\.name: "" is shorter than 1 characters/],
      ['name', 'ninechars', /is longer than 8 characters/],
      ['tags', ['a', 'b', 'c', 'd'], /Item\.tags: \["a","b","c","d"\] has 4 elements, more than 3/],
      ['tags', ['a', 'a'], /has duplicate elements/],
      ['tags', { a: 1 }, /is not a set \(give an array\)/],
      ['parts', [], /has 0 element\(s\), fewer than 1/],
      ['parts', ['not a uuid!'], /is neither a uuid nor a named uuid/],
      ['labels', ['x'], /is not a map \(give a Map or an object\)/],
      ['labels', { k: 3 }, /Item\.labels: 3 is not a string/],
      ['slots', { 10: U1 }, /Item\.slots: 10 is greater than 9/],
    ];
    for (const [column, value, pattern] of cases) {
      expect(() => item.column(column).encode(value), column).toThrow(
        expect.objectContaining({
          code: 'OPDBUS_ERR_OVSDB_VALUE',
          message: expect.stringMatching(pattern),
          data: expect.objectContaining({ table: 'Item', column }),
        }),
      );
    }
    expect(() => item.encodeRow({ _uuid: U1 }, false)).toThrow(/Item\._uuid: .* cannot be written/);
    expect(() => item.encodeRow({ name: 'x' }, true)).toThrow(
      /Item\.name: "x" cannot be updated: the column is immutable/,
    );
    expect(() => item.encodeRow({ nmae: 'x' }, false)).toThrow(
      expect.objectContaining({
        code: 'OPDBUS_ERR_OVSDB_SCHEMA',
        message: expect.stringContaining('no column "nmae"'),
      }),
    );
  });

  it('describes types for people', () => {
    expect(describeType(schema.column('Item', 'slots').type)).toBe('map integer 1..9 → uuid → Item (weak)');
    expect(describeType(schema.column('Item', 'tags').type)).toBe('set (0..3) of string');
    expect(describeType(schema.column('Item', 'parts').type)).toBe('set (1..∞) of uuid → Part');
  });

  it('applies update2 diffs as ovsdb-server does', () => {
    const tags = schema.column('Item', 'tags');
    expect(applyDiff(tags, ['a', 'b'], ['b', 'c'])).toEqual(['a', 'c']);
    const labels = schema.column('Item', 'labels');
    expect(
      applyDiff(
        labels,
        new Map([
          ['keep', '1'],
          ['drop', '2'],
          ['change', '3'],
        ]),
        new Map([
          ['drop', '2'],
          ['change', '4'],
          ['add', '5'],
        ]),
      ),
    ).toEqual(
      new Map([
        ['keep', '1'],
        ['change', '4'],
        ['add', '5'],
      ]),
    );
    expect(applyDiff(schema.column('Item', 'color'), 'red', null)).toBeNull();
    expect(applyDiff(schema.column('Item', 'size'), 1, 2)).toBe(2);
  });
});

describe('operations', () => {
  it('encodes all ten operations with conditions and mutations in wire form', () => {
    const ops: Operation[] = [
      { op: 'insert', table: 'Part', row: { label: 'p' }, uuidName: 'newPart' },
      { op: 'insert', table: 'Item', row: { name: 'x', parts: ['newPart'] }, uuidName: 'newItem' },
      {
        op: 'select',
        table: 'Item',
        where: [['name', '==', 'x'], ['tags', 'includes', ['a']], true],
        columns: ['name', '_uuid'],
      },
      { op: 'update', table: 'Item', where: [['_uuid', '==', U1]], row: { size: 3 } },
      {
        op: 'mutate',
        table: 'Item',
        where: [['size', '<', 10]],
        mutations: [
          ['size', '+=', 1],
          ['tags', 'insert', ['z']],
          ['labels', 'delete', ['k']],
          ['labels', 'insert', { a: 'b' }],
          ['scores', '*=', 2],
        ],
      },
      { op: 'delete', table: 'Item', where: [['color', '==', null]] },
      {
        op: 'wait',
        table: 'Item',
        where: [['name', '==', 'x']],
        columns: ['size'],
        until: '==',
        rows: [{ size: 3 }],
        timeout: 0,
      },
      { op: 'commit', durable: false },
      { op: 'comment', comment: 'hello' },
      { op: 'assert', lock: 'mine' },
      { op: 'abort' },
    ];
    const wire = ops.map((op, i) => encodeOperation(schema, op, i));
    expect(wire).toEqual([
      { op: 'insert', table: 'Part', row: { label: 'p' }, 'uuid-name': 'newPart' },
      {
        op: 'insert',
        table: 'Item',
        row: { name: 'x', parts: ['set', [['named-uuid', 'newPart']]] },
        'uuid-name': 'newItem',
      },
      {
        op: 'select',
        table: 'Item',
        where: [['name', '==', 'x'], ['tags', 'includes', ['set', ['a']]], true],
        columns: ['name', '_uuid'],
      },
      { op: 'update', table: 'Item', where: [['_uuid', '==', ['uuid', U1]]], row: { size: 3 } },
      {
        op: 'mutate',
        table: 'Item',
        where: [['size', '<', 10]],
        mutations: [
          ['size', '+=', 1],
          ['tags', 'insert', ['set', ['z']]],
          ['labels', 'delete', ['set', ['k']]],
          ['labels', 'insert', ['map', [['a', 'b']]]],
          ['scores', '*=', 2],
        ],
      },
      { op: 'delete', table: 'Item', where: [['color', '==', ['set', []]]] },
      {
        op: 'wait',
        table: 'Item',
        where: [['name', '==', 'x']],
        columns: ['size'],
        until: '==',
        rows: [{ size: 3 }],
        timeout: 0,
      },
      { op: 'commit', durable: false },
      { op: 'comment', comment: 'hello' },
      { op: 'assert', lock: 'mine' },
      { op: 'abort' },
    ]);
  });

  it('says which operation is wrong and why', () => {
    expect(() =>
      encodeOperation(
        schema,
        { op: 'mutate', table: 'Item', where: [], mutations: [['labels', '+=', 1]] },
        4,
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'OPDBUS_ERR_OVSDB_VALUE',
        message: expect.stringMatching(
          /^In operation 4 \(mutate Item\): Item\.labels: 1 cannot be used with "\+="/,
        ),
        data: expect.objectContaining({ operationIndex: 4, table: 'Item', column: 'labels' }),
      }),
    );
    expect(() =>
      encodeOperation(schema, { op: 'select', table: 'Item', where: [['fresh', '<', true]] }, 0),
    ).toThrow(/cannot be compared with "<"/);
    expect(() => encodeOperation(schema, { op: 'select', table: 'Nope', where: [] }, 2)).toThrow(
      expect.objectContaining({
        code: 'OPDBUS_ERR_OVSDB_SCHEMA',
        data: expect.objectContaining({ operationIndex: 2 }),
      }),
    );
  });

  it("decodes results, and turns an error result into an error with OVSDB's string and the index", () => {
    const ops: Operation[] = [
      { op: 'insert', table: 'Part', row: { label: 'p' } },
      { op: 'select', table: 'Part', where: [] },
      { op: 'update', table: 'Part', where: [], row: { label: 'q' } },
      { op: 'comment', comment: 'c' },
    ];
    expect(
      decodeResults(schema, ops, [
        { uuid: ['uuid', U1] },
        { rows: [{ _uuid: ['uuid', U1], label: 'p', ratio: ['set', [0.5]] }] },
        { count: 1 },
        {},
      ]),
    ).toEqual([{ uuid: U1 }, { rows: [{ _uuid: U1, label: 'p', ratio: 0.5 }] }, { count: 1 }, {}]);
    expect(() =>
      decodeResults(schema, ops, [
        { uuid: ['uuid', U1] },
        { error: 'constraint violation', details: 'no' },
        null,
        null,
      ]),
    ).toThrow(
      expect.objectContaining({
        code: 'OPDBUS_ERR_OVSDB_TRANSACTION',
        message: 'Transaction on Kitchen failed at operation 1 (select Part): constraint violation: no.',
        data: expect.objectContaining({
          error: 'constraint violation',
          details: 'no',
          operationIndex: 1,
          table: 'Part',
        }),
      }),
    );
    // All operations succeeded but the commit failed: an extra result.
    expect(() =>
      decodeResults(schema, ops.slice(0, 1), [
        { uuid: ['uuid', U1] },
        { error: 'referential integrity violation' },
      ]),
    ).toThrow(/failed at commit: referential integrity violation/);
  });
});
