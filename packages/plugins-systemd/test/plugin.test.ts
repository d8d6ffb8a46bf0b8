import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry, isOpdbusError, parseStateDocument, type OpdbusError } from '@opdbus/core';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSystemdPlugin } from '../src/plugin.js';
import {
  canonicalProperty,
  indexesToMask,
  maskToIndexes,
  parseIndexSet,
  parseSize,
} from '../src/properties.js';
import { parseTimer, renderTimer } from '../src/timers.js';
import type { SystemdSection } from '../src/schema.js';
import { describeIf } from '@opdbus/sandbox/testing';

describe('property values', () => {
  it('normalise CPU and node sets, sizes and quotas', () => {
    expect(parseIndexSet('0-3,6')).toEqual([0, 1, 2, 3, 6]);
    expect(parseIndexSet([3, 1, 1])).toEqual([1, 3]);
    expect(maskToIndexes(indexesToMask([0, 9]))).toEqual([0, 9]);
    expect(parseSize('1G')).toBe(1073741824);
    expect(parseSize('infinity')).toBe('infinity');
    expect(canonicalProperty('CPUQuota', '50.0%')).toBe('50%');
  });
  it('render a timer that parses back to itself', () => {
    const spec = {
      onCalendar: ['Mon 02:00', 'Fri 02:00'],
      command: '/bin/backup',
      persistent: true,
      randomizedDelaySec: 30,
      description: 'Backup',
      user: 'nobody',
    };
    const files = renderTimer('backup', { ...spec, accuracySec: undefined });
    expect(parseTimer(files.timer, files.service)).toEqual(spec);
  });
});

const probe = probeSandbox().container;

describeIf(probe, 'systemd plugin against systemd in a container', () => {
  let ct: SystemdContainer;
  let stateDir: string;
  const plugin = createSystemdPlugin({ jobTimeoutMs: 30_000 });
  const registry = new PluginRegistry([plugin]);
  let engine: Engine;
  const doc = (section: SystemdSection) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins: { systemd: section } }), {
      source: 'test.yaml',
      registry,
    });
  const show = async (unit: string, property: string): Promise<string> =>
    (await ct.exec('systemctl', ['show', '-p', property, '--value', unit], { check: true })).stdout.trim();
  /** Apply, expect it to fail and be rolled back; the plugin's error code and message. */
  const failure = async (section: SystemdSection): Promise<{ code: unknown; message: string }> => {
    const err = await engine.apply(doc(section)).catch((e: unknown) => e);
    expect(isOpdbusError(err, 'OPDBUS_ERR_APPLY_FAILED'), String(err)).toBe(true);
    return { code: (err as OpdbusError).data?.causeCode, message: (err as OpdbusError).message };
  };
  beforeAll(async () => {
    ct = await startSystemdContainer();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-systemd-'));
    engine = new Engine({ registry, stateDir, target: { busAddress: ct.busAddress, root: ct.rootDir } });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('places a service on CPUs and NUMA nodes, verified over D-Bus and in the running process', async () => {
    const section: SystemdSection = {
      units: {
        'opdbus-numa.service': {
          content: '[Service]\nExecStart=/bin/sleep infinity\n',
          active: true,
          properties: {
            CPUAffinity: '0',
            NUMAPolicy: 'bind',
            NUMAMask: '0',
            Nice: 5,
            CPUWeight: 50,
            MemoryMax: '64M',
            AllowedCPUs: [0],
          },
        },
      },
    };
    expect((await engine.apply(doc(section))).status).toBe('committed');
    expect(await show('opdbus-numa.service', 'CPUAffinity')).toBe('0');
    expect(await show('opdbus-numa.service', 'NUMAPolicy')).toBe('bind');
    expect(await show('opdbus-numa.service', 'NUMAMask')).toBe('0');
    expect(await show('opdbus-numa.service', 'CPUWeight')).toBe('50');
    expect(await show('opdbus-numa.service', 'MemoryMax')).toBe(String(64 * 1024 * 1024));
    const dropIn = await readFile(
      ct.path('/etc/systemd/system/opdbus-numa.service.d/50-opdbus-properties.conf'),
      'utf8',
    );
    expect(dropIn).toContain('CPUAffinity=0\nNUMAPolicy=bind\nNUMAMask=0\nNice=5');
    // The unit started after its drop-in was loaded: its process runs on CPU 0 at nice 5.
    const pid = await show('opdbus-numa.service', 'MainPID');
    const status = (await ct.exec('cat', [`/proc/${pid}/status`], { check: true })).stdout;
    expect(status).toMatch(/Cpus_allowed_list:\s+0\n/);
    const stat = (await ct.exec('cat', [`/proc/${pid}/stat`], { check: true })).stdout;
    expect(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]).toBe('5'); // field 19: nice
    // The live cgroup properties are persisted by systemd in system.control.
    expect(
      await readFile(ct.path('/etc/systemd/system.control/opdbus-numa.service.d/50-CPUWeight.conf'), 'utf8'),
    ).toContain('CPUWeight=50');
    const observed = await plugin.query(engine.context('systemd'), { scope: section });
    expect(observed.units?.['opdbus-numa.service']?.properties).toEqual({
      CPUAffinity: [0],
      NUMAPolicy: 'bind',
      NUMAMask: [0],
      Nice: 5,
      CPUWeight: 50,
      MemoryMax: 67108864,
      AllowedCPUs: [0],
    });
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect(await show('opdbus-numa.service', 'LoadState')).toBe('not-found');
  });

  it('restarts a running unit whose execution properties change, so the new CPU set is what runs', async () => {
    const unit = (cpu: string): SystemdSection => ({
      units: {
        'opdbus-move.service': {
          content: '[Service]\nExecStart=/bin/sleep infinity\n',
          active: true,
          properties: { CPUAffinity: cpu },
        },
      },
    });
    expect((await engine.apply(doc(unit('0')))).status).toBe('committed');
    const before = await show('opdbus-move.service', 'MainPID');
    const planned = await engine.plan(doc(unit('1')));
    expect(planned.plan.changes.map((c) => c.summary)).toEqual([expect.stringContaining('restarts it')]);
    expect((await engine.apply(doc(unit('1')))).status).toBe('committed');
    const after = await show('opdbus-move.service', 'MainPID');
    expect(after).not.toBe(before);
    expect((await ct.exec('cat', [`/proc/${after}/status`], { check: true })).stdout).toMatch(
      /Cpus_allowed_list:\s+1\n/,
    );
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect(await show('opdbus-move.service', 'LoadState')).toBe('not-found');
  });

  it('reports a unit systemd cannot load, with its LoadError, and rolls back', async () => {
    const cause = await failure({
      units: { 'opdbus-bad.service': { content: '[Service]\nType=oneshot\n', active: true } },
    });
    expect(cause.code).toBe('OPDBUS_ERR_SYSTEMD_UNIT_INVALID');
    expect(cause.message).toMatch(/could not load opdbus-bad\.service \(bad-setting\)/);
    expect(await show('opdbus-bad.service', 'LoadState')).toBe('not-found');
  });

  it('refuses to enable a unit without [Install], and a schedule systemd rejects', async () => {
    expect(
      (
        await failure({
          units: { 'opdbus-static.service': { content: '[Service]\nExecStart=/bin/true\n', enabled: true } },
        })
      ).code,
    ).toBe('OPDBUS_ERR_SYSTEMD_NO_INSTALL');
    expect(
      (
        await failure({
          timers: { 'opdbus-never': { onCalendar: 'someday at noonish', command: '/bin/true' } },
        })
      ).code,
    ).toBe('OPDBUS_ERR_SYSTEMD_UNIT_INVALID');
  });

  it('masks a vendor unit instead of removing it, and restores it', async () => {
    expect((await failure({ units: { 'systemd-tmpfiles-clean.timer': { state: 'absent' } } })).code).toBe(
      'OPDBUS_ERR_SYSTEMD_VENDOR_UNIT',
    );
    expect(
      (
        await engine.apply(
          doc({ units: { 'systemd-tmpfiles-clean.timer': { masked: true, active: false } } }),
        )
      ).status,
    ).toBe('committed');
    expect(await show('systemd-tmpfiles-clean.timer', 'UnitFileState')).toBe('masked');
    await engine.rollback();
    expect(await show('systemd-tmpfiles-clean.timer', 'UnitFileState')).not.toBe('masked');
    expect(await show('systemd-tmpfiles-clean.timer', 'ActiveState')).toBe('active');
  });

  it('refuses execution properties on a unit type without them', async () => {
    expect(
      (
        await failure({
          units: {
            'opdbus.target': { content: '[Unit]\nDescription=t\n', properties: { CPUAffinity: [0] } },
          },
        })
      ).code,
    ).toBe('OPDBUS_ERR_SYSTEMD_PROPERTY');
  });
});
