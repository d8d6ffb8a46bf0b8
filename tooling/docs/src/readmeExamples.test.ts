// Runs the examples in package READMEs, so that "a README with a runnable example" stays true.
// Each example is the first ```ts block of the README; it is transpiled and run with Node from
// this package's directory (which depends on every published package).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const here = fileURLToPath(new URL('../', import.meta.url));
const isRoot = process.getuid?.() === 0;

/** READMEs whose first ts block runs as is (`root`: needs root, e.g. creates namespaces). */
export const runnableReadmes: { readme: string; root: boolean; expect: RegExp }[] = [
  { readme: 'packages/core/README.md', root: false, expect: /committed[\s\S]*OPDBUS_ERR_APPLY_FAILED/ },
  { readme: 'packages/sandbox/README.md', root: true, expect: /unix:path=/ },
  {
    readme: 'packages/netlink/README.md',
    root: true,
    expect: /^lo - up\nbr0 bridge up\nveth0p veth down\nveth0 veth up\n10\.0\.0\.0\/24 connected\n10\.9\.0\.0\/16 10\.0\.0\.254\nEEXIST\n$/,
  },
  {
    readme: 'packages/plugins-network/README.md',
    root: true,
    expect:
      /^create link br0 \(bridge, up\)\ncreate link vx7 \(vxlan, id 7, master br0, up\)\nadd address 10\.7\.0\.1\/24 to br0\ncommitted\n0\n$/,
  },
  {
    readme: 'packages/plugins-sysctl/README.md',
    root: true,
    expect: /set net\.ipv4\.ip_forward[\s\S]*committed/,
  },
];

function firstTsBlock(markdown: string): string {
  const match = /```ts\n([\s\S]*?)```/.exec(markdown);
  if (match === null) throw new Error('no ```ts block');
  return match[1]!;
}

describe('README examples run', () => {
  for (const { readme, root: needsRoot, expect: pattern } of runnableReadmes) {
    it.skipIf(needsRoot && !isRoot)(readme, async () => {
      const source = firstTsBlock(readFileSync(`${root}${readme}`, 'utf8'));
      const js = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      const file = `${here}.readme-example-${readme.replace(/[^a-z]/gi, '-')}.mjs`;
      writeFileSync(file, js);
      try {
        const output = await new Promise<string>((resolve, reject) => {
          execFile(process.execPath, [file], { cwd: here, timeout: 60_000 }, (error, stdout, stderr) => {
            if (error) reject(new Error(`${readme} example failed: ${error.message}\n${stdout}\n${stderr}`));
            else resolve(stdout);
          });
        });
        expect(output).toMatch(pattern);
      } finally {
        rmSync(file, { force: true });
      }
    });
  }
});
