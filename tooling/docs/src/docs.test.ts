import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { allCodes } from './errorMaps.js';
import { errorsReference, stateReference } from './generate.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'build') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|mjs)$/.test(name) && !name.endsWith('.test.ts') && !path.includes('/test/'))
      out.push(path);
  }
  return out;
}

describe('generated docs', () => {
  it('docs/state-reference.md is up to date (run `pnpm docs:generate`)', () => {
    expect(readFileSync(join(root, 'docs/state-reference.md'), 'utf8')).toBe(stateReference());
  });

  it('docs/errors.md is up to date (run `pnpm docs:generate`)', async () => {
    expect(readFileSync(join(root, 'docs/errors.md'), 'utf8')).toBe(await errorsReference());
  });

  it('documents every error code the sources raise, once', async () => {
    const documented = new Set((await allCodes()).map((r) => r.code));
    const used = new Set<string>();
    for (const base of ['packages', 'apps']) {
      for (const pkg of readdirSync(join(root, base))) {
        const src = join(root, base, pkg, 'src');
        try {
          statSync(src);
        } catch {
          continue;
        }
        for (const file of sourceFiles(src)) {
          for (const match of readFileSync(file, 'utf8').matchAll(/'(OPDBUS_ERR_[A-Z0-9_]+)'/g))
            used.add(match[1]!);
        }
      }
    }
    const undocumented = [...used].filter((code) => !documented.has(code));
    expect(undocumented).toEqual([]);
  });
});
