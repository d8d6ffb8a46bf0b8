// `opdbus compliance` end to end: real applies in a network namespace, then evidence bundles for
// every framework that verify offline (no state directory), and a changed byte in any file of a
// bundle makes `verify` exit 11 naming the file.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { exitCodes } from '../src/exitCodes.js';
import { runCli } from './helpers.js';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

describeIf(asRoot, 'opdbus compliance report, verify and check in a network namespace', () => {
  let netns: SandboxNetns;
  let dir: string;
  let stateDir: string;
  const cli = (...args: string[]) => runCli(['--netns', netns.name, '--state-dir', stateDir, ...args]);
  const keyFile = () => join(stateDir, 'ledger', 'verifier.pub');

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-compliance-'));
    stateDir = join(dir, 'state');
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    await writeFile(a, JSON.stringify({ version: 1, plugins: { sysctl: { 'net.ipv4.ip_forward': 1 } } }));
    await writeFile(
      b,
      JSON.stringify({
        version: 1,
        plugins: {
          sysctl: { 'net.ipv4.ip_forward': 0 },
          firewall: {
            tables: [
              { family: 'inet', name: 'filter', chains: [{ name: 'input', hook: 'input', policy: 'drop' }] },
            ],
          },
        },
      }),
    );
    for (const file of [a, b]) {
      const applied = await cli('apply', file);
      expect(applied.code, applied.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await netns?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('reports every framework into a bundle that verifies offline with the pinned key', async () => {
    for (const framework of ['soc2', 'pci-dss', 'hipaa']) {
      const out = join(dir, `ev-${framework}`);
      const made = await cli('--json', 'compliance', 'report', '--framework', framework, '--out', out);
      expect(made.code, made.stderr).toBe(0);
      expect(JSON.parse(made.stdout)).toMatchObject({ ok: true, dir: out, framework: { id: framework } });
      // Offline: no --state-dir, no namespace.
      const verified = await runCli(['compliance', 'verify', out, '--key-file', keyFile()]);
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.stdout).toMatch(/^Evidence bundle verified: 5 files match the manifest/);
    }
  });

  it('exits 11 naming the file when one byte of any file of the bundle changes', async () => {
    const out = join(dir, 'ev-soc2');
    for (const name of await readdir(out)) {
      const file = join(out, name);
      const original = await readFile(file);
      const changed = Buffer.from(original);
      const at = Math.floor(changed.length / 2);
      changed[at] = changed[at]! ^ 1;
      await writeFile(file, changed);
      const result = await runCli(['--json', 'compliance', 'verify', out, '--key-file', keyFile()]);
      await writeFile(file, original);
      expect(result.code, `${name}: ${result.stdout}`).toBe(exitCodes.TAMPERED.code);
      expect(JSON.parse(result.stdout)).toMatchObject({
        ok: false,
        error: { code: 'OPDBUS_ERR_COMPLIANCE_TAMPERED', data: { file: name } },
      });
    }
    const human = await runCli(['compliance', 'verify', join(dir, 'nowhere')]);
    expect(human.code).toBe(exitCodes.NOT_FOUND.code);
  });

  it('check evaluates the controls now and exits 12 when one fails', async () => {
    const result = await cli('--json', 'compliance', 'check', '--framework', 'pci-dss');
    expect(result.code, result.stderr).toBe(exitCodes.COMPLIANCE_FAILED.code);
    const body = JSON.parse(result.stdout) as {
      ok: boolean;
      frameworks: { controls: { id: string; status: string }[] }[];
    };
    expect(body.ok).toBe(false);
    const status = Object.fromEntries(body.frameworks[0]!.controls.map((c) => [c.id, c.status]));
    // The namespace's input chain drops by default; its redirect settings miss the baseline.
    expect(status).toMatchObject({ '1.3.1': 'pass', '2.2.1': 'fail', '10.2.1': 'pass', '12.10.1': 'manual' });
    const human = await cli('compliance', 'check', '--framework', 'pci-dss');
    expect(human.stdout).toMatch(/FAIL\s+2\.2\.1/);
    expect(human.stdout).toMatch(/net\.ipv4\.conf\.all\.send_redirects = 1 \(expected 0\)/);
    const bad = await cli('compliance', 'report', '--framework', 'iso27001', '--out', join(dir, 'x'));
    expect(bad.code).toBe(exitCodes.INVALID_INPUT.code);
    expect(bad.stderr).toContain('OPDBUS_ERR_COMPLIANCE_FRAMEWORK');
  });
});
