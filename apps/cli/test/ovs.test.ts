// `opdbus --ovsdb …` against a sandbox's ovsdb-server + ovs-vswitchd (userspace datapath), and
// `opdbus codegen ovsdb`, spawning the built CLI.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { probeSandbox, startOvs, type OvsSandbox } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers.js';
import { describeIf, itIf, requirement } from '@opdbus/sandbox/testing';

const run = promisify(execFile);
const probe = probeSandbox();
const VSWITCH = '/usr/share/openvswitch/vswitch.ovsschema';

const ISSUE_YAML = `version: 1
plugins:
  ovs:
    bridges:
      - name: ovsbr0
        datapath_type: netdev
        ports:
          - { name: p1, interfaces: [{ name: p1, type: internal }] }
          - { name: vlan10, tag: 10, interfaces: [{ name: vlan10, type: internal }] }
`;

describeIf(probe.vswitchd, 'opdbus --ovsdb against ovsdb-server + ovs-vswitchd', () => {
  let ovs: OvsSandbox;
  let dir: string;
  let file: string;
  const cli = (...args: string[]) =>
    runCli(['--ovsdb', ovs.address, '--state-dir', join(dir, 'state'), ...args]);
  const vsctl = async (...args: string[]): Promise<string> =>
    (await run('ovs-vsctl', [`--db=${ovs.address}`, '--timeout=20', ...args])).stdout.trim();

  beforeAll(async () => {
    ovs = await startOvs({ vswitchd: true });
    dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-ovs-'));
    file = join(dir, 'ovs.yaml');
    await writeFile(file, ISSUE_YAML);
  });
  afterAll(async () => {
    await ovs?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('diff shows the plan (exit 2); apply commits it (exit 0); diff is then clean (exit 0)', async () => {
    const before = await cli('diff', file);
    expect(before.code).toBe(2);
    expect(before.stdout).toContain('ovs  create  create bridge ovsbr0 (datapath_type netdev)');
    expect(before.stdout).toContain(
      'ovs  create  create port vlan10 on bridge ovsbr0 (tag 10) with interface(s) vlan10 internal',
    );

    const applied = await cli('apply', file);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/\[3\/3\] ovs create bridge\/ovsbr0\/port\/vlan10: ok/);
    expect(applied.stdout).toContain('Verified: the host matches the document');

    const after = await cli('diff', file);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('No changes');
    expect((await vsctl('list-ports', 'ovsbr0')).split('\n')).toEqual(['p1', 'vlan10']);
    expect(await vsctl('get', 'Port', 'vlan10', 'tag')).toBe('10');
  });

  it('query --plugin ovs reads it back; --json too', async () => {
    const yaml = await cli('query', '--plugin', 'ovs');
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toContain('name: ovsbr0');
    const json = await cli('--json', 'query', '--plugin', 'ovs');
    const body = JSON.parse(json.stdout) as {
      plugins: { ovs: { bridges: { name: string; ports: { name: string; tag?: number }[] }[] } };
    };
    const bridge = body.plugins.ovs.bridges.find((b) => b.name === 'ovsbr0');
    expect(bridge?.ports.map((p) => [p.name, p.tag])).toEqual([
      ['ovsbr0', undefined],
      ['p1', undefined],
      ['vlan10', 10],
    ]);
  });

  it('rollback removes what the transaction created', async () => {
    const result = await cli('rollback');
    expect(result.code).toBe(0);
    expect(await vsctl('list-br')).toBe('');
    expect((await cli('diff', file)).code).toBe(2);
  });

  it('an unreachable OVSDB is reported as unavailable (exit 4), saying where', async () => {
    const result = await runCli([
      '--ovsdb',
      `unix:${join(dir, 'nothing.sock')}`,
      '--state-dir',
      join(dir, 'state'),
      'diff',
      file,
    ]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(
      `Plugin "ovs" is not available here: there is no OVSDB socket at ${join(dir, 'nothing.sock')}`,
    );
  });
});

describe('opdbus codegen ovsdb', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opdbus-codegen-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is listed under codegen', async () => {
    const help = await runCli(['codegen', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('ovsdb');
  });

  itIf(
    requirement('ovsdb', existsSync(VSWITCH), `${VSWITCH} is missing; apt-get install openvswitch-common`),
    "writes the types the package ships for Debian's vswitch schema",
    async () => {
      const result = await runCli(['codegen', 'ovsdb', VSWITCH, '--out', join(dir, 'out')]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Wrote .*openVSwitch\.ts: types for 19 tables of Open_vSwitch/);
      const shipped = fileURLToPath(
        new URL('../../../packages/ovsdb/src/schemas/openVSwitch.ts', import.meta.url),
      );
      expect(await readFile(join(dir, 'out', 'openVSwitch.ts'), 'utf8')).toBe(
        await readFile(shipped, 'utf8'),
      );
      const json = await runCli(['--json', 'codegen', 'ovsdb', VSWITCH, '--out', join(dir, 'out2')]);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, database: 'Open_vSwitch', tables: 19 });
    },
  );

  it('a broken schema is invalid input (exit 3) with the path of the problem', async () => {
    const bad = join(dir, 'bad.ovsschema');
    await writeFile(
      bad,
      JSON.stringify({ name: 'X', version: '1.0.0', tables: { T: { columns: { c: { type: 'int' } } } } }),
    );
    const result = await runCli(['codegen', 'ovsdb', bad, '--out', dir]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`${bad}: tables.T.columns.c.type: unknown atomic type "int"`);
    const missing = await runCli(['codegen', 'ovsdb', join(dir, 'none.ovsschema'), '--out', dir]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('Cannot read the OVSDB schema');
  });
});
