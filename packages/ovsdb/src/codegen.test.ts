import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { generateTypes, pascalCase, typesFileName } from './codegen.js';
import { DatabaseSchema } from './schema.js';
import { itIf, requirement } from '@opdbus/sandbox/testing';

const VSWITCH = '/usr/share/openvswitch/vswitch.ovsschema';
const here = fileURLToPath(new URL('.', import.meta.url));
const kitchen = DatabaseSchema.parse(
  JSON.parse(readFileSync(join(here, '../test/fixtures/kitchen.ovsschema'), 'utf8')),
  'kitchen.ovsschema',
);

/** Type-check files with the repository's strict settings; returns the diagnostics as text. */
function typecheck(files: string[]): string[] {
  const program = ts.createProgram(files, {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

describe('codegen', () => {
  it('names', () => {
    expect(pascalCase('Open_vSwitch')).toBe('OpenVSwitch');
    expect(pascalCase('CT_Zone')).toBe('CTZone');
    expect(pascalCase('sFlow')).toBe('SFlow');
    expect(typesFileName(kitchen)).toBe('kitchen.ts');
  });

  it('types columns from the schema: enums, optional, sets, maps, references', () => {
    const out = generateTypes(kitchen, { source: 'kitchen.ovsschema' });
    expect(out).toContain('export interface Item {');
    expect(out).toContain('  color: "red" | "green" | null;');
    expect(out).toContain('  tags: string[];');
    expect(out).toContain('  slots: Map<number, Uuid>;');
    expect(out).toContain('  parts: Uuid[];');
    expect(out).toContain('  weight: number;');
    expect(out).toContain('/** `name`: string length 1..8; immutable (set at insert). */');
    expect(out).toContain('export interface KitchenTables {\n  Root: Root;\n  Item: Item;\n  Part: Part;\n}');
    expect(generateTypes(kitchen, { source: 'kitchen.ovsschema' })).toBe(out);
  });

  itIf(
    requirement('ovsdb', existsSync(VSWITCH), `${VSWITCH} is missing; apt-get install openvswitch-common`),
    "the shipped types are what the generator makes of Debian's vswitch schema",
    () => {
      const schema = DatabaseSchema.parse(JSON.parse(readFileSync(VSWITCH, 'utf8')), VSWITCH);
      const shipped = readFileSync(join(here, 'schemas', typesFileName(schema)), 'utf8');
      const regenerated = generateTypes(schema, { source: 'vswitch.ovsschema' });
      expect(
        regenerated === shipped,
        `src/schemas/${typesFileName(schema)} is stale: regenerate it with \`opdbus codegen ovsdb ${VSWITCH} --out packages/ovsdb/src/schemas\``,
      ).toBe(true);
    },
  );

  it('the output type-checks under strict settings, alone and used with the client types', () => {
    const dir = mkdtempSync(join(here, '../test/.codegen-'));
    try {
      const schemas = [kitchen];
      if (existsSync(VSWITCH))
        schemas.push(DatabaseSchema.parse(JSON.parse(readFileSync(VSWITCH, 'utf8')), VSWITCH));
      const files = schemas.map((schema) => {
        const file = join(dir, typesFileName(schema));
        writeFileSync(file, generateTypes(schema));
        return file;
      });
      const usage = join(dir, 'usage.ts');
      writeFileSync(
        usage,
        [
          "import type { Database, Replica } from '../../src/index.js';",
          "import type { KitchenTables, Item } from './kitchen.js';",
          'export async function use(db: Database<KitchenTables>, replica: Replica<KitchenTables>): Promise<string | undefined> {',
          "  const [inserted, selected] = await db.transact([{ op: 'insert', table: 'Item', row: { name: 'x', tags: ['a'], labels: { k: 'v' } } }, { op: 'select', table: 'Item', where: [['name', '==', 'x']] }]);",
          '  const first: Item | undefined = selected.rows[0];',
          "  const color: 'red' | 'green' | null | undefined = replica.lookup('Item', 'name', 'x')?.color;",
          '  return `${inserted.uuid} ${first?.name ?? ""} ${color ?? ""}`;',
          '}',
          '// @ts-expect-error: not a column of Item',
          "export const wrong: Parameters<Database<KitchenTables>['transact']>[0] = [{ op: 'insert', table: 'Item', row: { colour: 'red' } }];",
          '',
        ].join('\n'),
      );
      expect(typecheck([...files, usage])).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
