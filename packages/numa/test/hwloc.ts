// hwloc as an independent reader of the same tree: `lstopo --of xml` (Debian's hwloc) with
// HWLOC_FSROOT, parsed into the few things the tests compare.
import { execFile, spawnSync } from 'node:child_process';

/** Whether lstopo is installed (Debian package hwloc). */
export const hasLstopo = spawnSync('sh', ['-c', 'command -v lstopo-no-graphics']).status === 0;

interface XmlObject {
  type: string;
  attrs: Record<string, string>;
  children: XmlObject[];
  parent: XmlObject | undefined;
}

/** What hwloc saw. CPU and node sets as sorted number arrays. */
export interface HwlocView {
  pus: number[];
  nodes: { id: number; cpus: number[]; memoryBytes: number }[];
  packages: { id: number; cpus: number[] }[];
  dies: number[][];
  cores: number[][];
  caches: {
    level: number;
    type: 'data' | 'instruction' | 'unified';
    sizeBytes: number;
    lineSizeBytes: number;
    ways: number;
    cpus: number[];
  }[];
  /** Group objects other than hwloc's NUMA groupings (kind ≥ 1000): clusters, when not merged into an L2. */
  clusters: number[][];
  distances: { indexes: number[]; values: number[] } | undefined;
  pci: {
    address: string;
    classId: string;
    vendor: string;
    device: string;
    cpus: number[];
    osdevs: string[];
  }[];
}

/** Parse hwloc's bitmap format: `0x0000000f,0xffffffff` (words most significant first). */
export function parseHwlocSet(text: string): number[] {
  const words = text.split(',').reverse();
  const out: number[] = [];
  words.forEach((word, w) => {
    const value = word === '' ? 0 : parseInt(word.replace(/^0x/, ''), 16);
    for (let bit = 0; bit < 32; bit++) if ((value >>> bit) & 1) out.push(w * 32 + bit);
  });
  return out;
}

function parseXml(xml: string): { root: XmlObject; distances: HwlocView['distances'] } {
  const root: XmlObject = { type: 'root', attrs: {}, children: [], parent: undefined };
  let current = root;
  const tag = /<(\/?)object\b([^>]*?)(\/?)>/g;
  for (let m = tag.exec(xml); m !== null; m = tag.exec(xml)) {
    if (m[1] === '/') {
      current = current.parent ?? root;
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/(\w+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    const obj: XmlObject = { type: attrs.type ?? '?', attrs, children: [], parent: current };
    current.children.push(obj);
    if (m[3] !== '/') current = obj;
  }
  const d = /<distances2 type="NUMANode"[^>]*>([\s\S]*?)<\/distances2>/.exec(xml);
  let distances: HwlocView['distances'];
  if (d !== null) {
    const numbers = (tagName: string): number[] =>
      [...d[1]!.matchAll(new RegExp(`<${tagName}[^>]*>([^<]*)</${tagName}>`, 'g'))]
        .flatMap((x) => x[1]!.trim().split(/\s+/))
        .filter((x) => x !== '')
        .map(Number);
    distances = { indexes: numbers('indexes'), values: numbers('u64values') };
  }
  return { root, distances };
}

function walk(obj: XmlObject, visit: (o: XmlObject) => void): void {
  visit(obj);
  for (const child of obj.children) walk(child, visit);
}

function cpusOf(obj: XmlObject | undefined): number[] {
  for (let o = obj; o !== undefined; o = o.parent)
    if (o.attrs.cpuset !== undefined) return parseHwlocSet(o.attrs.cpuset);
  return [];
}

/** How to run lstopo: more arguments (`--disallowed`) and environment. */
export interface HwlocOptions {
  args?: string[];
  env?: Record<string, string>;
}

/**
 * Run lstopo on the tree under `root` and return what it found. hwloc's x86 backend reads CPUID
 * of the CPU running it (not the tree's machine) to fill in what sysfs lacks, e.g. caches: it is
 * disabled (HWLOC_COMPONENTS=-x86) so that hwloc sees only the tree.
 */
export async function hwlocView(root: string, options: HwlocOptions = {}): Promise<HwlocView> {
  const xml = await new Promise<string>((resolve, reject) => {
    execFile(
      'lstopo-no-graphics',
      ['--of', 'xml', '-', ...(options.args ?? [])],
      {
        env: {
          ...process.env,
          HWLOC_FSROOT: root,
          HWLOC_COMPONENTS: '-x86',
          HWLOC_HIDE_ERRORS: '1',
          ...options.env,
        },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) =>
        error ? reject(new Error(`lstopo failed: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  const { root: tree, distances } = parseXml(xml);
  const view: HwlocView = {
    pus: [],
    nodes: [],
    packages: [],
    dies: [],
    cores: [],
    caches: [],
    clusters: [],
    distances,
    pci: [],
  };
  const cacheTypes = { '0': 'unified', '1': 'data', '2': 'instruction' } as const;
  walk(tree, (o) => {
    const cpus = o.attrs.cpuset === undefined ? [] : parseHwlocSet(o.attrs.cpuset);
    switch (o.type) {
      case 'PU':
        view.pus.push(Number(o.attrs.os_index));
        break;
      case 'NUMANode':
        view.nodes.push({
          id: Number(o.attrs.os_index),
          cpus,
          memoryBytes: Number(o.attrs.local_memory ?? 0),
        });
        break;
      case 'Package':
        view.packages.push({ id: Number(o.attrs.os_index), cpus });
        break;
      case 'Die':
        view.dies.push(cpus);
        break;
      case 'Core':
        view.cores.push(cpus);
        break;
      case 'Group':
        if (Number(o.attrs.kind ?? 0) < 1000) view.clusters.push(cpus);
        break;
      case 'PCIDev': {
        const [classId, ids] = (o.attrs.pci_type ?? '').split(' ');
        const [vendor, device] = (ids ?? '').replace(/[[\]]/g, '').split(':');
        const osdevs: string[] = [];
        for (const child of o.children)
          if (child.type === 'OSDev' && child.attrs.name !== undefined) osdevs.push(child.attrs.name);
        view.pci.push({
          address: o.attrs.pci_busid ?? '',
          classId: classId ?? '',
          vendor: vendor ?? '',
          device: device ?? '',
          cpus: cpusOf(o),
          osdevs,
        });
        break;
      }
      default:
        if (/^L\di?Cache$/.test(o.type)) {
          view.caches.push({
            level: Number(o.attrs.depth),
            type: cacheTypes[(o.attrs.cache_type ?? '0') as '0' | '1' | '2'],
            sizeBytes: Number(o.attrs.cache_size),
            lineSizeBytes: Number(o.attrs.cache_linesize),
            ways: Number(o.attrs.cache_associativity),
            cpus,
          });
        }
    }
  });
  view.pus.sort((a, b) => a - b);
  return view;
}
