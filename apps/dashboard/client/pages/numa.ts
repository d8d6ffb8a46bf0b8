import type { ComponentChildren } from 'preact';
import { ErrorBox, Page, html, useApi } from '../ui.js';

interface Topology {
  cpus: number[];
  offlineCpus: number[];
  isolatedCpus: number[];
  nodes: { id: number; cpus: number[]; memoryBytes: number; distances: number[] }[];
  packages: { index: number; id: number | null; cpus: number[]; nodes: number[] }[];
  cores: { id: number; package: number | null; cpus: number[]; node: number | null }[];
  caches: { level: number; type: string; sizeBytes: number; cpus: number[] }[];
  warnings: string[];
}

interface Placement {
  unit: string;
  machine?: string;
  desired: { cpus: number[]; nodes: number[]; memoryNodes: number[]; policy: string; reason: string };
  observed?: { cpus: number[] | null; nodes: number[]; memoryNodes: number[] | null; policy: string | null };
  inForce: boolean | null;
}

interface NumaReport {
  topology: Topology;
  placements: Placement[];
  error?: string;
  observedError?: string;
}

const list = (xs: readonly number[] | null | undefined): string =>
  xs === null || xs === undefined ? 'unset' : xs.length === 0 ? '—' : xs.join(',');

const size = (b: number): string =>
  b >= 2 ** 30
    ? `${(b / 2 ** 30).toFixed(1)} GiB`
    : b >= 2 ** 20
      ? `${(b / 2 ** 20).toFixed(0)} MiB`
      : `${(b / 1024).toFixed(0)} KiB`;

const CORE_W = 64;
const GAP = 8;

/**
 * The topology as an SVG, as hwloc's lstopo draws it: packages hold NUMA nodes, a node holds its
 * shared caches and cores, a core its CPUs (hardware threads).
 */
function TopologySvg({ t, placed }: { t: Topology; placed: Map<number, string[]> }): ComponentChildren {
  const boxes: ComponentChildren[] = [];
  let y = 0;
  const width =
    Math.max(...t.nodes.map((n) => t.cores.filter((c) => c.node === n.id).length), 1) * (CORE_W + GAP) +
    3 * GAP;
  for (const pkg of t.packages.length > 0
    ? t.packages
    : [{ index: 0, id: null, cpus: t.cpus, nodes: t.nodes.map((n) => n.id) }]) {
    const top = y;
    y += 24;
    for (const nodeId of pkg.nodes) {
      const node = t.nodes.find((n) => n.id === nodeId);
      const cores = t.cores.filter(
        (c) => c.node === nodeId && (c.package === null || c.package === pkg.index || c.package === pkg.id),
      );
      const caches = t.caches
        .filter((c) => c.level >= 2 && c.cpus.some((cpu) => node?.cpus.includes(cpu)))
        .filter(
          (c, i, all) => all.findIndex((d) => d.level === c.level && d.cpus.join() === c.cpus.join()) === i,
        )
        .sort((a, b) => b.level - a.level);
      const nodeTop = y;
      y += 22;
      for (const cache of caches) {
        boxes.push(
          html`<g
            ><rect x=${2 * GAP} y=${y} width=${width - 4 * GAP} height="20" class="cache" /><text
              x=${2 * GAP + 6}
              y=${y + 14}
              >L${cache.level} ${cache.type === 'Unified' ? '' : cache.type} ${size(cache.sizeBytes)} (CPUs
              ${cache.cpus.join(',')})</text
            ></g
          >`,
        );
        y += 24;
      }
      cores.forEach((core, i) => {
        const x = 2 * GAP + i * (CORE_W + GAP);
        boxes.push(
          html`<g
            ><rect x=${x} y=${y} width=${CORE_W} height="46" class="core" /><text x=${x + 6} y=${y + 14}
              >Core ${core.id}</text
            >
            ${core.cpus.map((cpu, j) => html`<g data-cpu=${cpu}><title>CPU ${cpu}${placed.has(cpu) ? `: ${placed.get(cpu)!.join(', ')}` : ''}</title><rect x=${x + 4 + j * 28} y=${y + 20} width="24" height="20" class=${`cpu${t.isolatedCpus.includes(cpu) ? ' isolated' : ''}${placed.has(cpu) ? ' placed' : ''}`} /><text x=${x + 8 + j * 28} y=${y + 34}>${cpu}</text></g>`)}</g
          >`,
        );
      });
      y += 54;
      boxes.unshift(
        html`<g
          ><rect x=${GAP} y=${nodeTop} width=${width - 2 * GAP} height=${y - nodeTop} class="node" /><text
            x=${GAP + 6}
            y=${nodeTop + 15}
            >NUMA node ${nodeId}${node ? ` · ${size(node.memoryBytes)}` : ''}</text
          ></g
        >`,
      );
      y += GAP;
    }
    boxes.unshift(
      html`<g
        ><rect x="0" y=${top} width=${width} height=${y - top} class="package" /><text x="6" y=${top + 16}
          >Package ${pkg.id ?? pkg.index}</text
        ></g
      >`,
    );
    y += GAP;
  }
  return html`<svg
    class="topology"
    viewBox=${`0 0 ${width} ${y}`}
    width=${width}
    role="img"
    aria-labelledby="topo-title"
  >
    <title id="topo-title">
      Topology: ${t.packages.length} package(s), ${t.nodes.length} NUMA node(s), ${t.cores.length} cores, ${t.cpus.length} CPUs
    </title>
    ${boxes}
  </svg>`;
}

/** Where the desired document places services, and whether systemd has it. */
function Placements({ r }: { r: NumaReport }): ComponentChildren {
  if (r.error !== undefined) return html`<p class="error">The placements cannot be resolved: ${r.error}</p>`;
  if (r.placements.length === 0)
    return html`<p class="note" data-testid="placements-none">
      No service is placed: the desired document has no <code>numa.placements</code> or <code>numa.machines</code>.
    </p>`;
  return html`${
    r.observedError === undefined
      ? null
      : html`<p class="note">What systemd has could not be read: ${r.observedError}</p>`
  }
    <table data-testid="placements">
      <thead>
        <tr>
          <th scope="col">Unit</th>
          <th scope="col">CPUs</th>
          <th scope="col">Nodes</th>
          <th scope="col">Memory nodes</th>
          <th scope="col">Policy</th>
          <th scope="col">systemd has</th>
          <th scope="col">Why these</th>
        </tr>
      </thead>
      <tbody>
        ${r.placements.map(
          (p) => html`<tr data-unit=${p.unit} class=${p.inForce === false ? 'differs' : ''}>
            <th scope="row">
              ${p.machine === undefined ? null : html`machine <code>${p.machine}</code><br />`}<code>${p.unit}</code>
            </th>
            <td>${list(p.desired.cpus)}</td>
            <td>${list(p.desired.nodes)}</td>
            <td>${list(p.desired.memoryNodes)}</td>
            <td>${p.desired.policy}</td>
            <td>
              ${
                p.observed === undefined
                  ? 'unknown'
                  : html`<span class=${`badge ${p.inForce ? 'ok' : 'drifted'}`}>${p.inForce ? 'in force' : 'not in force'}</span>${' '}
                      ${`CPUs ${list(p.observed.cpus)} (node ${list(p.observed.nodes)}), memory ${list(p.observed.memoryNodes)}, ${p.observed.policy ?? 'default policy'}`}`
              }
            </td>
            <td>${p.desired.reason}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
}

/** NUMA: packages, nodes, caches and cores as an SVG, with the node distances and placed services. */
export function NumaPage(): ComponentChildren {
  const r = useApi<NumaReport>('/v1/numa', ['reload', 'transaction']);
  const t = r.data?.topology;
  // CPUs → the units placed on them (as systemd has it where known, else as asked).
  const placed = new Map<number, string[]>();
  for (const p of r.data?.placements ?? [])
    for (const cpu of p.observed?.cpus ?? p.desired.cpus)
      placed.set(cpu, [...(placed.get(cpu) ?? []), p.unit]);
  return html`<${Page} title="NUMA">
    <${ErrorBox} error=${r.error} />
    ${
      t === undefined
        ? null
        : html`<p>
              ${t.packages.length} package(s), ${t.nodes.length} NUMA node(s), ${t.cores.length} cores, ${t.cpus.length} CPUs online${t.offlineCpus.length > 0 ? `, ${t.offlineCpus.length} offline` : ''}${t.isolatedCpus.length > 0 ? `, isolated: ${t.isolatedCpus.join(',')}` : ''}.
            </p>
            <div class="svgwrap"><${TopologySvg} t=${t} placed=${placed} /></div>
            <h2>Placed services</h2>
            <${Placements} r=${r.data!} />
            <h2>Node distances</h2>
            <table>
              <thead>
                <tr>
                  <th scope="col">from \\ to</th>
                  ${t.nodes.map((n) => html`<th scope="col">node ${n.id}</th>`)}
                </tr>
              </thead>
              <tbody>
                ${t.nodes.map(
                  (n) =>
                    html`<tr>
                      <th scope="row">node ${n.id}</th>
                      ${n.distances.map((d) => html`<td>${d}</td>`)}
                    </tr>`,
                )}
              </tbody>
            </table>
            ${t.warnings.map((w) => html`<p class="note">${w}</p>`)}`
    }
  </${Page}>`;
}
