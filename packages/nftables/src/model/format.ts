/**
 * Readable rules rendered as `nft` shows them: the text of `nft list ruleset`, and the JSON of
 * `nft -j list ruleset` (libnftables-json(5)) for the rule's `expr`.
 */
import { exprKey } from '../expr.js';
import type { NftFamily } from '../wire.js';
import type { MatchValue, Rule, RuleMatch, Scalar, Statement, Verdict } from './types.js';
import { isSetRef } from './values.js';

/** The nft syntax of each match, in the order rules are written. */
const LEFT: readonly [string, string][] = [
  ['iif', 'iif'],
  ['iifname', 'iifname'],
  ['oif', 'oif'],
  ['oifname', 'oifname'],
  ['nfproto', 'meta nfproto'],
  ['l4proto', 'meta l4proto'],
  ['mark', 'meta mark'],
  ['ip.saddr', 'ip saddr'],
  ['ip.daddr', 'ip daddr'],
  ['ip.protocol', 'ip protocol'],
  ['ip6.saddr', 'ip6 saddr'],
  ['ip6.daddr', 'ip6 daddr'],
  ['ip6.nexthdr', 'ip6 nexthdr'],
  ['tcp.sport', 'tcp sport'],
  ['tcp.dport', 'tcp dport'],
  ['udp.sport', 'udp sport'],
  ['udp.dport', 'udp dport'],
  ['icmp.type', 'icmp type'],
  ['icmpv6.type', 'icmpv6 type'],
  ['ct.state', 'ct state'],
  ['ct.status', 'ct status'],
  ['ct.mark', 'ct mark'],
];

function get(match: RuleMatch, path: string): MatchValue | undefined {
  const [a, b] = path.split('.') as [string, string | undefined];
  const v = (match as Record<string, unknown>)[a];
  return (b === undefined ? v : (v as Record<string, unknown> | undefined)?.[b]) as MatchValue | undefined;
}

const quoteNames = new Set(['iif', 'iifname', 'oif', 'oifname']);
const hexNames = new Set(['mark', 'ct.mark']);

function scalarText(path: string, v: Scalar): string {
  if (typeof v === 'string' && isSetRef(v)) return v;
  if (quoteNames.has(path) && typeof v === 'string') return `"${v}"`;
  if (hexNames.has(path) && typeof v === 'number') return `0x${v.toString(16).padStart(8, '0')}`;
  return String(v);
}

function valueText(path: string, v: MatchValue): string {
  if (Array.isArray(v)) return `{ ${v.map((x) => scalarText(path, x)).join(', ')} }`;
  if (typeof v === 'object') return `!= ${valueText(path, v.not)}`;
  return scalarText(path, v);
}

function statementText(s: Statement): string {
  if (typeof s === 'string') return s;
  if ('log' in s) {
    const parts = ['log'];
    if (s.log.prefix !== undefined) parts.push(`prefix "${s.log.prefix}"`);
    if (s.log.level !== undefined) parts.push(`level ${s.log.level}`);
    if (s.log.group !== undefined) parts.push(`group ${s.log.group}`);
    if (s.log.snaplen !== undefined) parts.push(`snaplen ${s.log.snaplen}`);
    if (s.log.queueThreshold !== undefined) parts.push(`queue-threshold ${s.log.queueThreshold}`);
    return parts.join(' ');
  }
  if ('limit' in s) {
    const l = s.limit;
    const unit = l.unit === undefined || l.unit === 'packets' ? '' : ` ${l.unit}`;
    const burst =
      l.burst === undefined
        ? ''
        : ` burst ${l.burst} ${l.unit === undefined || l.unit === 'packets' ? 'packets' : 'bytes'}`;
    return `limit rate ${l.over === true ? 'over ' : ''}${l.rate}${unit}/${l.per}${burst}`;
  }
  const flags = (o: { random?: boolean; fullyRandom?: boolean; persistent?: boolean }): string =>
    [o.random ? 'random' : '', o.fullyRandom ? 'fully-random' : '', o.persistent ? 'persistent' : '']
      .filter(Boolean)
      .map((f) => ` ${f}`)
      .join('');
  if ('masquerade' in s)
    return `masquerade${s.masquerade.port === undefined ? '' : ` to :${s.masquerade.port}`}${flags(s.masquerade)}`;
  if ('redirect' in s)
    return `redirect${s.redirect.port === undefined ? '' : ` to :${s.redirect.port}`}${flags(s.redirect)}`;
  if ('snat' in s) return `snat${s.snat.family ? ` ${s.snat.family}` : ''} to ${s.snat.to}${flags(s.snat)}`;
  if ('dnat' in s) return `dnat${s.dnat.family ? ` ${s.dnat.family}` : ''} to ${s.dnat.to}${flags(s.dnat)}`;
  return `meta mark set ${typeof s.mark.set === 'number' ? `0x${s.mark.set.toString(16).padStart(8, '0')}` : s.mark.set}`;
}

function verdictText(v: Verdict): string {
  if (typeof v === 'string') return v;
  if ('jump' in v) return `jump ${v.jump}`;
  if ('goto' in v) return `goto ${v.goto}`;
  if (v.reject.type === 'tcp-reset') return 'reject with tcp reset';
  return `reject with ${v.reject.type} ${v.reject.code ?? (v.reject.type === 'icmpx' || v.reject.type === 'icmpv6' || v.reject.type === 'icmp' ? 'port-unreachable' : '')}`.trimEnd();
}

/** A rule as `nft list` shows it (`tcp dport 22 counter accept comment "ssh"`). */
export function ruleText(rule: Rule): string {
  const parts: string[] = [];
  if (rule.expr !== undefined) {
    parts.push(`[${rule.expr.map((e) => (e.type === 'unknown' ? e.name : e.type)).join(' ')}]`);
  } else {
    const m = rule.match ?? {};
    for (const [path, left] of LEFT) {
      const v = get(m, path);
      if (v !== undefined) parts.push(`${left} ${valueText(path, v)}`);
    }
    for (const s of rule.statements ?? []) parts.push(statementText(s));
    if (rule.verdict !== undefined) parts.push(verdictText(rule.verdict));
  }
  if (rule.name !== undefined) parts.push(`comment "${rule.name}"`);
  return parts.join(' ');
}

// ------------------------------------------------------------------ nft -j

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const JSON_LEFT: Readonly<Record<string, Json>> = {
  iif: { meta: { key: 'iif' } },
  iifname: { meta: { key: 'iifname' } },
  oif: { meta: { key: 'oif' } },
  oifname: { meta: { key: 'oifname' } },
  nfproto: { meta: { key: 'nfproto' } },
  l4proto: { meta: { key: 'l4proto' } },
  mark: { meta: { key: 'mark' } },
  'ct.state': { ct: { key: 'state' } },
  'ct.status': { ct: { key: 'status' } },
  'ct.mark': { ct: { key: 'mark' } },
};

function jsonLeft(path: string): Json {
  const known = JSON_LEFT[path];
  if (known !== undefined) return known;
  const [protocol, field] = path.split('.') as [string, string];
  return { payload: { protocol, field } };
}

function jsonScalar(v: Scalar): Json {
  if (typeof v === 'number') return v;
  const prefix = /^(.+)\/(\d+)$/.exec(v);
  if (prefix !== null) return { prefix: { addr: prefix[1]!, len: Number(prefix[2]) } };
  const range = /^([0-9a-f.:]+)-([0-9a-f.:]+)$/i.exec(v);
  if (range !== null) {
    const a = /^\d+$/.test(range[1]!) ? Number(range[1]) : range[1]!;
    const b = /^\d+$/.test(range[2]!) ? Number(range[2]) : range[2]!;
    return { range: [a, b] };
  }
  return v;
}

function jsonMatch(path: string, v: MatchValue): Json {
  const negated = typeof v === 'object' && !Array.isArray(v);
  const inner = negated ? v.not : v;
  let right: Json;
  let op = negated ? '!=' : '==';
  if (Array.isArray(inner)) right = { set: inner.map(jsonScalar) };
  else if ((path === 'ct.state' || path === 'ct.status') && typeof inner === 'string' && !isSetRef(inner)) {
    const names = inner.split(',');
    if (negated && names.length === 1) right = names[0]!;
    else {
      op = negated ? '==' : 'in';
      right = names.length === 1 ? names[0]! : names;
      if (negated) right = { '&': [right, 0] };
    }
  } else right = jsonScalar(inner);
  return { match: { op, left: jsonLeft(path), right } };
}

function jsonStatement(s: Statement, family: NftFamily): Json {
  if (s === 'counter') return { counter: { packets: 0, bytes: 0 } };
  if (s === 'log') return { log: null };
  if (s === 'masquerade') return { masquerade: null };
  if ('log' in s) {
    const o: Record<string, Json> = {};
    if (s.log.prefix !== undefined) o.prefix = s.log.prefix;
    if (s.log.group !== undefined) o.group = s.log.group;
    if (s.log.level !== undefined) o.level = s.log.level;
    return { log: o };
  }
  if ('limit' in s) {
    const l = s.limit;
    const o: Record<string, Json> = { rate: l.rate };
    if (l.unit !== undefined && l.unit !== 'packets') o.rate_unit = l.unit;
    o.burst = l.burst ?? (l.unit === undefined || l.unit === 'packets' ? 5 : 0);
    if (l.unit !== undefined && l.unit !== 'packets') o.burst_unit = 'bytes';
    o.per = l.per;
    if (l.over === true) o.inv = true;
    return { limit: o };
  }
  const nat = (o: {
    to?: string;
    family?: string;
    port?: Scalar;
    random?: boolean;
    fullyRandom?: boolean;
    persistent?: boolean;
  }) => {
    const out: Record<string, Json> = {};
    if (o.to !== undefined) {
      const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(.+))?$/.exec(
        o.to.includes('.') || o.to.startsWith('[') || o.to.startsWith(':') ? o.to : `[${o.to}]`,
      );
      const addr = m?.[1] ?? m?.[2] ?? '';
      if (addr !== '') {
        out.family = addr.includes(':') ? 'ip6' : 'ip';
        out.addr = jsonScalar(addr);
      } else if (o.family !== undefined) out.family = o.family;
      if (m?.[3] !== undefined) out.port = jsonScalar(/^\d+$/.test(m[3]) ? Number(m[3]) : m[3]);
      if (family === 'ip' || family === 'ip6') delete out.family;
    }
    if (o.port !== undefined) out.port = jsonScalar(o.port);
    const flags = [
      o.random ? 'random' : '',
      o.fullyRandom ? 'fully-random' : '',
      o.persistent ? 'persistent' : '',
    ].filter(Boolean);
    if (flags.length > 0) out.flags = flags.length === 1 ? flags[0]! : flags;
    return Object.keys(out).length === 0 ? null : out;
  };
  if ('masquerade' in s) return { masquerade: nat(s.masquerade) };
  if ('redirect' in s) return { redirect: nat(s.redirect) };
  if ('snat' in s) return { snat: nat(s.snat) };
  if ('dnat' in s) return { dnat: nat(s.dnat) };
  return { mangle: { key: { meta: { key: 'mark' } }, value: Number(s.mark.set) } };
}

function jsonVerdict(v: Verdict, family: NftFamily): Json {
  if (v === 'reject')
    return family === 'ip' || family === 'ip6'
      ? { reject: null }
      : { reject: { type: 'icmpx', expr: 'port-unreachable' } };
  if (typeof v === 'string') return { [v]: null };
  if ('jump' in v) return { jump: { target: v.jump } };
  if ('goto' in v) return { goto: { target: v.goto } };
  if (v.reject.type === 'tcp-reset') return { reject: { type: 'tcp reset' } };
  return { reject: { type: v.reject.type, expr: v.reject.code ?? 'port-unreachable' } };
}

/**
 * The `expr` array `nft -j list ruleset` shows for a readable rule (counters at 0), and its
 * comment. Rules kept as exact expressions have no nft JSON here (undefined).
 */
export function ruleToNftJson(rule: Rule, family: NftFamily): { expr: Json[]; comment?: string } | undefined {
  if (rule.expr !== undefined) return undefined;
  const expr: Json[] = [];
  const m = rule.match ?? {};
  for (const [path] of LEFT) {
    const v = get(m, path);
    if (v !== undefined) expr.push(jsonMatch(path, v));
  }
  for (const s of rule.statements ?? []) expr.push(jsonStatement(s, family));
  if (rule.verdict !== undefined) expr.push(jsonVerdict(rule.verdict, family));
  return rule.name === undefined ? { expr } : { expr, comment: rule.name };
}

/** A key for comparing rules regardless of their name: equal keys, equal rules. */
export function ruleKey(rule: Rule): string {
  if (rule.expr !== undefined) return `expr:${rule.expr.map(exprKey).join('|')}`;
  const { name: _name, ...body } = rule;
  return JSON.stringify(body, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
