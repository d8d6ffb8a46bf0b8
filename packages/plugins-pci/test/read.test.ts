// The read side on real sysfs trees: hwloc's dumps of real machines (those with a PCI tree),
// checked against what hwloc printed for them and what this machine's lstopo reads from them,
// and this host's own /sys checked against lspci (pciutils) reading the same devices.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, type PluginContext } from '@opdbus/core';
import { itIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPciPlugin, PciSysfs, pciSchema, type PciSection } from '../src/index.js';

const fixtures = fileURLToPath(new URL('../../numa/test/fixtures/hwloc-linux/', import.meta.url));
const hasLstopo = spawnSync('sh', ['-c', 'command -v lstopo-no-graphics']).status === 0;
const hasLspci = spawnSync('sh', ['-c', 'command -v lspci']).status === 0;
const hostHasPci = new PciSysfs('/').addresses().length > 0;

const ctx = (root: string): PluginContext => ({
  target: { root },
  netns: undefined,
  logger: silentLogger,
  stateDir: '/nonexistent',
  signal: undefined,
});

/** hwloc's console output: `PCI L#0 (busid=0004:05:00.0 id=0000:0000 class=0300(VGA))`. */
function consolePci(text: string): { address: string; vendor: string; device: string; class: string }[] {
  return [
    ...text.matchAll(/PCI L#\d+ \(busid=([0-9a-f:.]+) id=([0-9a-f]{4}):([0-9a-f]{4}) class=([0-9a-f]{4})/g),
  ].map((m) => ({ address: m[1]!, vendor: `0x${m[2]!}`, device: `0x${m[3]!}`, class: m[4]! }));
}

const dumps = readdirSync(fixtures)
  .filter((f) => f.endsWith('.console') && /PCI L#/.test(readFileSync(join(fixtures, f), 'utf8')))
  .map((f) => f.slice(0, -'.console'.length))
  .filter((name) => readdirSync(fixtures).includes(`${name}.tar.bz2`));

let base: string;
const roots = new Map<string, string>();
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'opdbus-pci-hwloc-'));
  for (const name of dumps) {
    const dir = join(base, name);
    mkdirSync(dir);
    execFileSync('tar', ['-xjf', join(fixtures, `${name}.tar.bz2`), '-C', dir]);
    roots.set(name, join(dir, readdirSync(dir)[0]!));
  }
});
afterAll(() => {
  if (base !== undefined) rmSync(base, { recursive: true, force: true });
});

it('has at least one hwloc dump with a PCI tree', () => {
  expect(dumps.length).toBeGreaterThan(0);
});

describe.each(dumps)('hwloc dump %s', (name) => {
  it('lists the PCI functions hwloc printed, with their class', async () => {
    const section = await createPciPlugin().query(ctx(roots.get(name)!), { all: true });
    expect(pciSchema.safeParse(section).success).toBe(true);
    const printed = consolePci(readFileSync(join(fixtures, `${name}.console`), 'utf8'));
    expect(Object.keys(section).sort()).toEqual(printed.map((p) => p.address).sort());
    for (const p of printed) expect(section[p.address]!.class!.slice(2, 6)).toBe(p.class);
  });

  itIf(
    requirement('lstopo', hasLstopo, 'lstopo-no-graphics is missing; apt-get install hwloc'),
    "agrees with this machine's lstopo",
    async () => {
      const xml = execFileSync('lstopo-no-graphics', ['--of', 'xml', '-'], {
        env: {
          ...process.env,
          HWLOC_FSROOT: roots.get(name)!,
          HWLOC_COMPONENTS: 'linux,stop',
          HWLOC_HIDE_ERRORS: '1',
        },
        maxBuffer: 64 << 20,
      }).toString();
      const seen = [...xml.matchAll(/type="PCIDev"[^>]*pci_busid="([^"]+)" pci_type="([0-9a-f]{4})/g)].map(
        (m) => `${m[1]} ${m[2]}`,
      );
      const section = await createPciPlugin().query(ctx(roots.get(name)!), { all: true });
      expect(
        Object.entries(section)
          .map(([a, d]) => `${a} ${d.class!.slice(2, 6)}`)
          .sort(),
      ).toEqual(seen.sort());
    },
  );
});

describe('this host', () => {
  itIf(
    [
      requirement('lspci', hasLspci, 'lspci is missing; apt-get install pciutils'),
      requirement('pci bus', hostHasPci, 'this host has no PCI devices in /sys'),
    ],
    'reads what lspci -vmm reads from /sys: addresses, ids, class, driver',
    async () => {
      const section: PciSection = await createPciPlugin().query(ctx('/'), { all: true });
      const out = execFileSync('lspci', ['-D', '-vmm', '-nk'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      }).toString();
      const records = out
        .trim()
        .split(/\n\n+/)
        .map((block) => Object.fromEntries(block.split('\n').map((l) => l.split(':\t') as [string, string])));
      expect(Object.keys(section).sort()).toEqual(records.map((r) => r.Slot).sort());
      for (const r of records) {
        const d = section[r.Slot!]!;
        expect(d.vendor, r.Slot).toBe(`0x${r.Vendor}`);
        expect(d.device, r.Slot).toBe(`0x${r.Device}`);
        expect(d.class!.slice(2, 6), r.Slot).toBe(r.Class);
        if (r.SVendor !== undefined) expect(d.subsystemVendor, r.Slot).toBe(`0x${r.SVendor}`);
        if (r.SDevice !== undefined) expect(d.subsystemDevice, r.Slot).toBe(`0x${r.SDevice}`);
        expect(d.driver ?? undefined, r.Slot).toBe(r.Driver);
        if (r.NUMANode !== undefined) expect(d.numaNode, r.Slot).toBe(Number(r.NUMANode));
        if (r.IOMMUGroup !== undefined) expect(d.iommuGroup, r.Slot).toBe(Number(r.IOMMUGroup));
      }
    },
  );
});
