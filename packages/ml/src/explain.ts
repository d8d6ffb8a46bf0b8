// Human-readable reasons: which signal, what was expected, what was seen.
import type { ChangeFeatures } from './features.js';
import type { Evidence } from './profile.js';
import { Counter } from './stats.js';

const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

function list(value: unknown): string {
  const entries = value instanceof Counter ? value.top(3) : value;
  if (!Array.isArray(entries) || entries.length === 0) return 'none';
  return (entries as [string, number][]).map(([k, n]) => `${k} ${n}×`).join(', ');
}

function ranges(slots: unknown, name: (s: number) => string): string {
  if (!Array.isArray(slots) || slots.length === 0) return 'none';
  const s = slots as number[];
  const out: string[] = [];
  let start = s[0]!;
  let prev = start;
  for (const x of [...s.slice(1), Number.NaN]) {
    if (x === prev + 1) {
      prev = x;
      continue;
    }
    out.push(start === prev ? name(start) : `${name(start)}–${name(prev)}`);
    start = x;
    prev = x;
  }
  return out.join(', ');
}

const hh = (h: number): string => `${String(h).padStart(2, '0')}h`;

function num(x: unknown): string {
  return typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toPrecision(3)) : String(x);
}

/** A field key `plugin:template#path` shown as `plugin/resource.path` of this change. */
function fieldName(f: ChangeFeatures, field: unknown): string {
  const key = String(field);
  const path = key.slice(key.indexOf('#', f.template.length) + 1);
  return `${f.event.plugin}/${f.event.resource}${path === '' ? '' : `.${path}`}`;
}

/** The reason sentence of one detector, from its evidence. */
export function reasonText(detector: string, f: ChangeFeatures, e: Evidence, p: number): string {
  const ev = f.event;
  const change = `${ev.op} ${ev.plugin}/${ev.resource}`;
  const pct = p < 0.0001 ? '<0.01 %' : `${(p * 100).toPrecision(2)} %`;
  switch (detector) {
    case 'what':
      return e.seen === 0
        ? `new kind of change: ${change} never happened in the history (${e.resourceSeen === 0 ? 'the resource was never touched' : `the resource was changed ${num(e.resourceSeen)}× by other ops`}) [p ${pct}]`
        : `rare change: ${change} happened ${num(e.seen)}× in the history [p ${pct}]`;
    case 'actor':
      return e.actorSeen === 0
        ? `new actor: ${ev.actor} never changed anything in the history (usual for this change: ${list(e.usual)}) [p ${pct}]`
        : `unusual actor: ${ev.actor} for ${change} (usual: ${list(e.usual)}) [p ${pct}]`;
    case 'host':
      return `unusual host: ${ev.host} never made ${change}; ${num(e.onPeers)} of its ${Array.isArray(e.peers) ? e.peers.length : 0} peers did${Array.isArray(e.peers) && e.peers.length > 0 ? ` (${(e.peers as string[]).join(', ')})` : ''}, ${num(e.fleet)} of ${num(e.hosts)} hosts (${num(e.perDay)}× a day each) [p ${pct}]`;
    case 'hour':
      return `unusual hour: ${hh(Number(e.hour))} for ${ev.actor} on ${change} (usual: ${ranges(e.usual, hh)}) [p ${pct}]`;
    case 'day':
      return `unusual day: ${DAYS[Number(e.day)] ?? '?'} for ${ev.actor} on ${change} (usual: ${ranges(e.usual, (d) => DAYS[d]!.slice(0, 3))}) [p ${pct}]`;
    case 'value':
      if (e.kind === 'field')
        return `new field: ${fieldName(f, e.field)} was never set on this resource [p ${pct}]`;
      if (e.kind === 'band')
        return `value out of band: ${fieldName(f, e.field)} = ${num(e.value)} (seen ${num((e.band as number[])[0])}…${num((e.band as number[])[1])}, median ${num(e.median)}) [p ${pct}]`;
      return `unusual value: ${fieldName(f, e.field)} = ${JSON.stringify(e.value)} (usual: ${list(e.usual)}) [p ${pct}]`;
    case 'burst':
      return `burst: ${num(e.count)} changes on ${ev.host} within ±5 min (usual at most ${num(e.usual)}) [p ${pct}]`;
    case 'neighbour':
      return `unlike past changes: the nearest is ${num(e.similarity)} similar${Number(e.similarity) < Number(e.threshold) ? ` (below ${num(e.threshold)})` : ''} [p ${pct}]`;
    case 'autoencoder':
      return `unlike the history as a whole: autoencoder reconstruction error ${num(e.error)} (99th percentile of the history ${num(e.p99)}) [p ${pct}]`;
    default:
      return `${detector} [p ${pct}]`;
  }
}
