/**
 * The CPUs and memory nodes this process may use: the cgroup cpuset it runs in, found the way
 * hwloc finds it (hwloc/topology-linux.c: hwloc_linux__get_allowed_resources), else the
 * process's own Cpus_allowed_list and Mems_allowed_list. Both are read under the root, so a
 * sysfs/procfs dump of another machine says what its process was allowed.
 */
import { parseCpuList } from './cpuList.js';
import type { SysfsTree } from './sysfs.js';

/** What this process may use, and what said so. */
export interface AllowedResources {
  /** Online CPUs the process may run on. */
  cpus: number[];
  /** Online NUMA nodes it may allocate memory from. */
  nodes: number[];
  /**
   * The file that restricted them (e.g. `/sys/fs/cgroup/system.slice/x.service/cpuset.cpus.effective`,
   * `/proc/self/status`), or null when nothing restricts the process to less than the machine.
   */
  source: string | null;
}

type CgroupType = 'cgroup2' | 'cgroup1' | 'cpuset';

/** The cpuset hierarchy's mount point and kind, as hwloc_find_linux_cgroup_mntpnt looks for it. */
function findCpusetMount(fs: SysfsTree): { type: CgroupType; mount: string } | undefined {
  if (fs.exists('sys/fs/cgroup/cpuset.cpus.effective')) return { type: 'cgroup2', mount: '/sys/fs/cgroup' };
  if (fs.exists('sys/fs/cgroup/cpuset/cpuset.cpus'))
    return { type: 'cgroup1', mount: '/sys/fs/cgroup/cpuset' };
  if (fs.exists('dev/cpuset/cpus')) return { type: 'cpuset', mount: '/dev/cpuset' };
  const mounts = fs.optionalRead('proc/mounts');
  if (mounts === undefined) return undefined;
  for (const line of mounts.split('\n')) {
    const [, dir, type, options] = line.split(' ');
    if (dir === undefined || type === undefined) continue;
    const mount = dir.replace(/\\040/g, ' ');
    if (type === 'cgroup2') {
      const controllers = fs.text(`${mount.replace(/^\/+/, '')}/cgroup.controllers`);
      if (controllers?.split(/\s+/).includes('cpuset')) return { type: 'cgroup2', mount };
    } else if (type === 'cpuset') {
      return { type: 'cpuset', mount };
    } else if (type === 'cgroup') {
      const opts = (options ?? '').split(',');
      if (!opts.includes('cpuset')) continue;
      return { type: opts.includes('noprefix') ? 'cpuset' : 'cgroup1', mount };
    }
  }
  return undefined;
}

/** The process's cpuset name: /proc/self/cpuset, else its cpuset (v1) or unified (v2) cgroup. */
function cpusetName(fs: SysfsTree): string | undefined {
  const direct = fs.optionalRead('proc/self/cpuset');
  if (direct !== undefined && direct !== '') return direct.split('\n')[0];
  const cgroups = fs.optionalRead('proc/self/cgroup');
  if (cgroups === undefined) return undefined;
  for (const line of cgroups.split('\n')) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const rest = line.slice(colon);
    if (rest.startsWith(':cpuset:')) return rest.slice(8);
    if (rest.startsWith('::')) return rest.slice(2);
  }
  return undefined;
}

function statusList(status: string, key: string): number[] | undefined {
  const match = new RegExp(`(?:^|\\n)${key}:\\s*([^\\n]*)`).exec(status);
  return match === null ? undefined : parseCpuList(match[1]!, `/proc/self/status ${key}`);
}

/**
 * Read what this process may use, intersected with the machine's online CPUs and nodes.
 * Unreadable or absent files restrict nothing (as in hwloc).
 */
export function readAllowed(fs: SysfsTree, onlineCpus: number[], onlineNodes: number[]): AllowedResources {
  let cpus: number[] | undefined;
  let mems: number[] | undefined;
  let source: string | null = null;
  const mount = findCpusetMount(fs);
  const name = mount === undefined ? undefined : cpusetName(fs);
  if (mount !== undefined && name !== undefined) {
    const file = (attr: 'cpus' | 'mems'): string =>
      mount.type === 'cgroup2'
        ? `${mount.mount}${name}/cpuset.${attr}.effective`
        : mount.type === 'cgroup1'
          ? `${mount.mount}${name}/cpuset.${attr}`
          : `${mount.mount}${name}/${attr}`;
    const rel = (path: string): string => path.replace(/^\/+/, '').replace(/\/{2,}/g, '/');
    cpus = fs.list(rel(file('cpus')));
    mems = fs.list(rel(file('mems')));
    if (cpus !== undefined || mems !== undefined) source = file(cpus !== undefined ? 'cpus' : 'mems');
  } else {
    // No cpuset hierarchy (or no cgroup of ours in it): what the kernel says of this process.
    const status = fs.optionalRead('proc/self/status');
    if (status !== undefined) {
      cpus = statusList(status, 'Cpus_allowed_list');
      mems = statusList(status, 'Mems_allowed_list');
      if (cpus !== undefined || mems !== undefined) source = '/proc/self/status';
    }
  }
  const within = (all: number[], allowed: number[] | undefined): number[] => {
    if (allowed === undefined) return all;
    const set = new Set(allowed);
    return all.filter((x) => set.has(x));
  };
  const result = { cpus: within(onlineCpus, cpus), nodes: within(onlineNodes, mems) };
  const narrower = result.cpus.length < onlineCpus.length || result.nodes.length < onlineNodes.length;
  return { ...result, source: narrower ? source : null };
}
