import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DatabaseSchema } from './schema.js';
import { itIf, requirement } from '@opdbus/sandbox/testing';

const kitchen = JSON.parse(
  readFileSync(new URL('../test/fixtures/kitchen.ovsschema', import.meta.url), 'utf8'),
) as Record<string, unknown>;
const VSWITCH = '/usr/share/openvswitch/vswitch.ovsschema';

describe('DatabaseSchema.parse', () => {
  it('parses every kind of column type with its constraints and the implicit columns', () => {
    const schema = DatabaseSchema.parse(kitchen, 'kitchen.ovsschema');
    expect(schema.name).toBe('Kitchen');
    expect(schema.version).toBe('1.2.3');
    const item = schema.table('Item');
    expect(item.isRoot).toBe(false);
    expect(schema.table('Root').isRoot).toBe(true);
    expect(schema.table('Root').maxRows).toBe(1);
    expect(item.indexes).toEqual([['name']]);
    expect([...item.columns.keys()].slice(0, 3)).toEqual(['_uuid', '_version', 'name']);
    expect(item.declaredColumns.map((c) => c.name)).toContain('notes');
    const kinds = Object.fromEntries(item.declaredColumns.map((c) => [c.name, c.kind]));
    expect(kinds).toEqual({
      name: 'scalar',
      size: 'scalar',
      weight: 'scalar',
      fresh: 'scalar',
      color: 'optional',
      tags: 'set',
      scores: 'set',
      labels: 'map',
      slots: 'map',
      parts: 'set',
      notes: 'optional',
    });
    expect(schema.column('Item', 'color').type.key.enum).toEqual(['red', 'green']);
    expect(schema.column('Item', 'name').mutable).toBe(false);
    expect(schema.column('Item', 'notes').ephemeral).toBe(true);
    expect(schema.column('Item', 'slots').type.value).toEqual({
      type: 'uuid',
      refTable: 'Item',
      refType: 'weak',
    });
    expect(schema.column('Item', 'parts').type.key.refType).toBe('strong');
    expect(schema.column('Item', 'size').type.key).toEqual({
      type: 'integer',
      minInteger: 0,
      maxInteger: 4095,
    });
  });

  it('treats every table as root when no table says isRoot (RFC 7047 §3.2)', () => {
    const schema = DatabaseSchema.parse({
      name: 'X',
      version: '1.0.0',
      tables: { A: { columns: {} }, B: { columns: {} } },
    });
    expect(schema.table('A').isRoot && schema.table('B').isRoot).toBe(true);
  });

  it('names the table and column there are when asked for one that is not', () => {
    const schema = DatabaseSchema.parse(kitchen, 'kitchen.ovsschema');
    expect(() => schema.table('Itme')).toThrow(/no table "Itme"; its tables are Root, Item, Part/);
    expect(() => schema.column('Item', 'colour')).toThrow(
      /Table Item of database Kitchen has no column "colour"; its columns are _uuid, _version, name/,
    );
  });

  it('reports the path of a malformed schema', () => {
    /** A copy of the fixture with the value at `path` replaced. */
    const bad = (path: string[], value: unknown): unknown => {
      const copy = structuredClone(kitchen);
      let node = copy;
      for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
      node[path.at(-1)!] = value;
      return copy;
    };
    const cases: [unknown, RegExp][] = [
      [bad(['version'], '1.2'), /version: expected "x\.y\.z"/],
      [
        bad(['tables', 'Item', 'columns', 'size', 'type'], 'int'),
        /tables\.Item\.columns\.size\.type: unknown atomic type "int"/,
      ],
      [
        bad(['tables', 'Item', 'columns', 'tags', 'type', 'max'], 0),
        /tables\.Item\.columns\.tags\.type\.max: expected a positive integer/,
      ],
      [
        bad(['tables', 'Item', 'columns', 'parts', 'type', 'key', 'refTable'], 'Nope'),
        /refTable Nope is not a table of this schema/,
      ],
      [
        bad(['tables', 'Item', 'indexes'], [['nope']]),
        /tables\.Item\.indexes\[0\]: "nope" is not a column of Item/,
      ],
      [bad(['tables', 'Item', 'columns', '_x'], { type: 'string' }), /reserved/],
      [
        bad(['tables', 'Item', 'columns', 'color', 'type', 'key', 'enum'], ['set', ['red', 3]]),
        /enum\[1\]: 3 is not a string/,
      ],
    ];
    for (const [json, pattern] of cases)
      expect(() => DatabaseSchema.parse(json, 'bad.ovsschema')).toThrow(
        expect.objectContaining({ code: 'OPDBUS_ERR_OVSDB_SCHEMA', message: expect.stringMatching(pattern) }),
      );
  });

  itIf(
    requirement('ovsdb', existsSync(VSWITCH), `${VSWITCH} is missing; apt-get install openvswitch-common`),
    "parses Debian's vswitch schema",
    () => {
      const schema = DatabaseSchema.parse(JSON.parse(readFileSync(VSWITCH, 'utf8')), VSWITCH);
      expect(schema.name).toBe('Open_vSwitch');
      expect(schema.table('Open_vSwitch').isRoot).toBe(true);
      expect(schema.table('Port').isRoot).toBe(false);
      expect(schema.column('Port', 'tag').type.key).toEqual({
        type: 'integer',
        minInteger: 0,
        maxInteger: 4095,
      });
      expect(schema.column('Bridge', 'fail_mode').kind).toBe('optional');
    },
  );
});
