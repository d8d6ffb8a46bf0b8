import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';

/** Run npm in `cwd`; from a checkout every dependency of a generated package is a `file:` link. */
function npm(args: readonly string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
    execFile('npm', [...args], { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
        output: stdout + stderr,
      }),
    );
  });
}

// An author's whole path, outside the repository: `plugin new`, `npm install && npm test` in the
// package (its conformance suite), then op-dbus loads it with --plugin DIR and manages the file
// under a --root of our own.
describe('opdbus plugin new, and the package loaded with --plugin', () => {
  let dir: string;
  let pkg: string;
  let root: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-plugin-new-'));
    pkg = join(dir, 'opdbus-plugin-banner');
    root = join(dir, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc', 'banner'), 'Welcome.\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a package whose own tests pass', async () => {
    const made = await runCli(['plugin', 'new', 'banner', '--dir', pkg]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain('linked from the op-dbus checkout');
    const manifest = JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as {
      opdbus: unknown;
      devDependencies: Record<string, string>;
    };
    expect(manifest.opdbus).toEqual({ contract: 1, plugin: 'bannerPlugin' });
    expect(manifest.devDependencies['@opdbus/core']).toMatch(/^file:\/.*packages\/core$/);
    // A second run refuses to overwrite it.
    const again = await runCli(['plugin', 'new', 'banner', '--dir', pkg]);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('exists and is not empty');

    const install = await npm(['install', '--offline', '--no-audit', '--no-fund'], pkg);
    expect(install.code, install.output).toBe(0);
    const test = await npm(['test'], pkg);
    expect(test.code, test.output).toBe(0);
    expect(test.output).toMatch(/test\/conformance\.test\.ts \(\d+ tests/);
    expect(test.output).toMatch(/Tests\s+\d+ passed/);
    expect(test.output).not.toMatch(/\d+ failed/);
  }, 300_000);

  it('is loaded by --plugin DIR: schema, query, diff, apply, rollback under --root', async () => {
    const schema = await runCli(['--plugin', pkg, 'schema']);
    expect(schema.code, schema.stderr).toBe(0);
    expect(
      (JSON.parse(schema.stdout) as { properties: { plugins: { properties: Record<string, unknown> } } })
        .properties.plugins.properties,
    ).toHaveProperty('banner');

    const cli = (...args: string[]) =>
      runCli(['--plugin', pkg, '--state-dir', join(dir, 'state'), '--root', root, ...args]);
    // A global --plugin loads a package; `query --plugin NAME` after the command names a section.
    const queried = await cli('query', '--plugin', 'banner');
    expect(queried.code, queried.stderr).toBe(0);
    expect(queried.stdout).toContain('banner:');
    expect(queried.stdout).not.toContain('sysctl:');
    const observed = join(dir, 'observed.yaml');
    await writeFile(observed, queried.stdout);
    expect((await cli('diff', observed)).code).toBe(0);

    const desired = join(dir, 'desired.yaml');
    await writeFile(
      desired,
      'version: 1\nplugins:\n  banner:\n    state: present\n    content: "Hello.\\n"\n',
    );
    expect((await cli('diff', desired)).code).toBe(2);
    const applied = await cli('apply', desired);
    expect(applied.code, applied.stderr).toBe(0);
    expect(await readFile(join(root, 'etc', 'banner'), 'utf8')).toBe('Hello.\n');
    expect((await cli('rollback')).code).toBe(0);
    expect(await readFile(join(root, 'etc', 'banner'), 'utf8')).toBe('Welcome.\n');
  }, 120_000);

  it('says which package it refused, and the built-in plugins still work', async () => {
    const result = await runCli(['--plugin', join(dir, 'nowhere'), '--plugin', pkg, 'schema'], {
      env: { OPDBUS_PLUGINS: pkg },
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/refused \(OPDBUS_ERR_PLUGIN_LOAD\): .*nowhere has no package.json/);
    const plugins = (JSON.parse(result.stdout) as { properties: { plugins: { properties: object } } })
      .properties.plugins.properties;
    expect(Object.keys(plugins)).toEqual(expect.arrayContaining(['sysctl', 'network', 'banner']));
    const missing = await runCli(['--config', join(dir, 'absent.yaml'), 'schema']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('absent.yaml');
  });
});
