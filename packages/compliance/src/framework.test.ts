import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { combineStatus } from './evidence.js';
import { evidenceQueryIds, frameworkIds, loadFramework } from './framework.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'opdbus-frameworks-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('framework mappings', () => {
  it('ships SOC 2, PCI DSS and HIPAA, each versioned, every control evidenced or marked manual', async () => {
    const used = new Set<string>();
    for (const id of frameworkIds) {
      const framework = await loadFramework(id);
      expect(framework.framework).toBe(id);
      expect(framework.version).toMatch(/^\d+\.\d+/);
      for (const control of framework.controls) {
        expect(control.evidence.length > 0 || control.manual !== undefined, control.id).toBe(true);
        for (const ref of control.evidence) used.add(ref.query);
      }
    }
    // Every evidence query is used by some shipped control.
    expect([...used].sort()).toEqual([...evidenceQueryIds].sort());
    expect((await loadFramework('soc2')).controls.map((c) => c.id)).toEqual(
      expect.arrayContaining(['CC6.1', 'CC7.2', 'CC8.1']),
    );
    expect((await loadFramework('pci-dss')).controls.map((c) => c.id)).toEqual(
      expect.arrayContaining(['1.3.1', '2.2.1', '8.2.1', '10.2.1', '11.5.2']),
    );
    expect((await loadFramework('hipaa')).controls.map((c) => c.id)).toEqual(
      expect.arrayContaining(['164.312(b)', '164.312(c)(1)']),
    );
  });

  it('names the file and the path of what is wrong in a mapping of your own', async () => {
    const file = join(dir, 'mine.yaml');
    await writeFile(
      file,
      'framework: mine\ntitle: Mine\nstandard: x\nversion: "1.0"\ncontrols:\n  - id: A\n    title: a\n    evidence:\n      - query: ledger.nope\n        why: because\n',
    );
    await expect(loadFramework(file)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_COMPLIANCE_FRAMEWORK',
      message: expect.stringMatching(/mine\.yaml is not valid at controls\.0\.evidence\.0\.query/),
    });
    await writeFile(
      file,
      'framework: mine\ntitle: Mine\nstandard: x\nversion: "1.0"\ncontrols:\n  - id: A\n    title: a\n',
    );
    await expect(loadFramework(file)).rejects.toMatchObject({
      message: expect.stringContaining('a control needs evidence queries'),
    });
    await expect(loadFramework('iso27001')).rejects.toMatchObject({
      code: 'OPDBUS_ERR_COMPLIANCE_FRAMEWORK',
      message: expect.stringContaining('soc2, pci-dss, hipaa'),
    });
  });

  it('combines statuses: a failure wins, then a manual part, then a pass', () => {
    expect(combineStatus(['pass', 'fail', 'manual'])).toBe('fail');
    expect(combineStatus(['pass', 'manual'])).toBe('manual');
    expect(combineStatus(['pass', 'not-applicable'])).toBe('pass');
    expect(combineStatus(['not-applicable'])).toBe('not-applicable');
    expect(combineStatus([], 'manual')).toBe('manual');
  });
});
