// readTopology on this machine's own /sys: only what is stable is asserted (the node's free
// memory and /proc/meminfo change, and node meminfo need not equal /proc/meminfo).
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCpuList, readTopology, type Topology } from '../src/index.js';
import { hasLstopo, hwlocView } from './hwloc.js';
import { itIf, requirement } from '@opdbus/sandbox/testing';

let t: Topology;
let allowedView: Topology;
beforeAll(async () => {
  t = await readTopology({ wholeSystem: true });
  allowedView = await readTopology();
});

describe('this machine (/)', () => {
  it('online CPUs are /sys/devices/system/cpu/online, partitioned into cores and packages', () => {
    expect(t.root).toBe('/');
    expect(t.cpus).toEqual(parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8')));
    expect(t.cpus.length).toBeGreaterThan(0);
    expect(t.cores.flatMap((c) => c.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
    expect(t.packages.flatMap((p) => p.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
  });

  it("by default shows what this process's cpuset allows, and names it when that is less", () => {
    expect(allowedView.wholeSystem).toBe(false);
    expect(allowedView.cpus).toEqual(allowedView.allowed.cpus);
    expect(allowedView.cpus.length).toBeGreaterThan(0);
    for (const cpu of allowedView.cpus) expect(t.cpus).toContain(cpu);
    expect(allowedView.nodes.map((n) => n.id)).toEqual(allowedView.allowed.nodes);
    if (allowedView.allowed.source === null) {
      expect(allowedView.cpus).toEqual(t.cpus);
      expect(allowedView.nodes.map((n) => n.id)).toEqual(t.nodes.map((n) => n.id));
    } else {
      expect(existsSync(allowedView.allowed.source)).toBe(true);
    }
  });

  it('nodes are those of /sys/devices/system/node and hold every online CPU', () => {
    const dir = '/sys/devices/system/node';
    const expected = existsSync(dir)
      ? readdirSync(dir)
          .filter((e) => /^node\d+$/.test(e))
          .map((e) => Number(e.slice(4)))
          .sort((a, b) => a - b)
      : [0];
    expect(t.nodes.map((n) => n.id)).toEqual(expected);
    expect(t.nodes.map((n) => n.id)).toContain(0);
    expect(t.nodes.flatMap((n) => n.cpus).sort((a, b) => a - b)).toEqual(t.cpus);
    for (const node of t.nodes) {
      expect(node.distances).toHaveLength(t.nodes.length);
      expect(node.distances[t.nodes.indexOf(node)]).toBe(10);
      if (node.cpus.length > 0) expect(node.memoryBytes).toBeGreaterThan(0);
    }
  });

  it('caches cover every CPU when the kernel shows cache information', () => {
    if (!existsSync('/sys/devices/system/cpu/cpu0/cache/index0')) {
      expect(t.caches).toEqual([]);
      return;
    }
    const l1 = t.caches.filter((c) => c.level === 1);
    expect(l1.flatMap((c) => c.cpus).sort((a, b) => a - b)).toEqual(expect.arrayContaining(t.cpus));
    for (const cache of t.caches) {
      expect(cache.sizeBytes).toBeGreaterThan(0);
      expect(cache.cpus.length).toBeGreaterThan(0);
    }
  });

  it('PCI devices are /sys/bus/pci/devices, with the network interfaces sysfs puts under them', () => {
    const dir = '/sys/bus/pci/devices';
    const addresses = existsSync(dir) ? readdirSync(dir).sort() : [];
    expect(t.pciDevices.map((d) => d.address)).toEqual(addresses);
    for (const name of existsSync('/sys/class/net') ? readdirSync('/sys/class/net') : []) {
      const found = readlinkSync(`/sys/class/net/${name}`).match(
        /[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]/g,
      );
      if (found === null) continue;
      const owner = t.pciDevices.find((d) => d.address === found[found.length - 1]);
      expect(owner?.netInterfaces, name).toContain(name);
    }
    for (const dev of t.pciDevices) expect(t.nodes.map((n) => n.id)).toContain(dev.node);
  });

  itIf(
    requirement('lstopo', hasLstopo, 'lstopo-no-graphics is missing; apt-get install hwloc'),
    'agrees with hwloc on CPUs, cores, nodes and caches',
    async () => {
      // lstopo shows what this process may use, as readTopology does by default.
      const t = allowedView;
      const hw = await hwlocView('/');
      expect(hw.pus).toEqual(t.cpus);
      const sets = (lists: number[][]): string[] => lists.map((l) => l.join(',')).sort();
      expect(sets(hw.cores)).toEqual(sets(t.cores.map((c) => c.cpus)));
      expect(hw.nodes.map((n) => n.id).sort((a, b) => a - b)).toEqual(t.nodes.map((n) => n.id));
      expect(sets(hw.caches.map((c) => [c.level, c.sizeBytes, ...c.cpus]))).toEqual(
        sets(t.caches.map((c) => [c.level, c.sizeBytes, ...c.cpus])),
      );
    },
  );
});
