/**
 * The risky-change guard: would the firewall after a change still let the management
 * connection through? The connection (from SSH_CONNECTION, or declared) is followed as an
 * established TCP flow, inbound through prerouting/input and outbound through output/postrouting,
 * across every base chain of the table (jumps and gotos followed), with three-valued matching:
 * a rule whose match cannot be decided (a mark, a rate limit, exact expressions) may or may not
 * apply. The connection is safe when every possible outcome is accept.
 */
import {
  CT_STATES,
  DATATYPES,
  parseValue,
  ruleText,
  type ChainSpec,
  type DataType,
  type MatchValue,
  type Rule,
  type Scalar,
  type SetSpec,
  type TableSpec,
} from '@opdbus/nftables';

/** A connection whose loss would lock the operator out. */
export interface ManagementConnection {
  /** The remote end (the operator's machine). */
  client: string;
  clientPort?: number;
  /** The local address it arrives at. */
  server: string;
  serverPort?: number;
  /** The local interface holding `server`, when known. */
  interface?: string;
  /** Where it was learned, for messages (`SSH_CONNECTION`, `declared`). */
  source: string;
}

type Tri = true | false | undefined;
type Outcome = 'accept' | 'drop' | 'fallthrough';

interface Packet {
  v6: boolean;
  saddr: string;
  daddr: string;
  sport: number | undefined;
  dport: number | undefined;
  iifname: string | undefined;
  oifname: string | undefined;
  inbound: boolean;
}

const T = DATATYPES;

function bytesOf(type: DataType, v: string | number): Buffer | undefined {
  try {
    return type.parse(v);
  } catch {
    return undefined;
  }
}

/** Does the value (scalar, prefix, range) contain `x`? */
function scalarHolds(type: DataType, value: Scalar, x: Buffer): Tri {
  let w;
  try {
    w = parseValue(type, value);
  } catch {
    return undefined;
  }
  if (w.kind === 'value') return w.bytes.equals(x);
  return Buffer.compare(w.from, x) <= 0 && Buffer.compare(x, w.to) <= 0;
}

function setHolds(type: DataType, set: SetSpec | undefined, x: Buffer): Tri {
  if (set === undefined || set.elements === undefined || set.map !== undefined) return undefined;
  if (Array.isArray(set.type)) return undefined;
  let any = false;
  for (const el of set.elements) {
    const key = typeof el === 'object' && !Array.isArray(el) ? el.key : el;
    if (Array.isArray(key)) return undefined;
    const r = scalarHolds(type, key, x);
    if (r === true) return true;
    if (r === undefined) any = true;
  }
  // Elements of a set with timeouts come and go: absence decides nothing there.
  if (set.flags?.includes('timeout') || set.flags?.includes('dynamic')) return undefined;
  return any ? undefined : false;
}

function valueHolds(type: DataType, v: MatchValue, x: Buffer | undefined, sets: readonly SetSpec[]): Tri {
  if (x === undefined) return undefined;
  if (typeof v === 'object' && !Array.isArray(v)) {
    const r = valueHolds(type, v.not, x, sets);
    return r === undefined ? undefined : !r;
  }
  if (typeof v === 'string' && v.startsWith('@'))
    return setHolds(
      type,
      sets.find((s) => s.name === v.slice(1)),
      x,
    );
  if (Array.isArray(v)) {
    let unknown = false;
    for (const item of v) {
      const r = scalarHolds(type, item, x);
      if (r === true) return true;
      if (r === undefined) unknown = true;
    }
    return unknown ? undefined : false;
  }
  return scalarHolds(type, v, x);
}

function ifnameHolds(v: MatchValue, name: string | undefined): Tri {
  if (name === undefined) return undefined;
  const one = (s: Scalar): Tri =>
    typeof s === 'string' && s.endsWith('*')
      ? name.startsWith(s.slice(0, -1))
      : typeof s === 'string' && s.startsWith('@')
        ? undefined
        : s === name;
  if (typeof v === 'object' && !Array.isArray(v)) {
    const inner = v.not;
    const r = Array.isArray(inner) ? anyOf(inner.map(one)) : one(inner);
    return r === undefined ? undefined : !r;
  }
  return Array.isArray(v) ? anyOf(v.map(one)) : one(v);
}

function anyOf(results: Tri[]): Tri {
  if (results.includes(true)) return true;
  return results.includes(undefined) ? undefined : false;
}

function and(a: Tri, b: Tri): Tri {
  if (a === false || b === false) return false;
  if (a === undefined || b === undefined) return undefined;
  return true;
}

function ctStateHolds(v: MatchValue): Tri {
  const established = CT_STATES.established!;
  const has = (s: Scalar): Tri => {
    if (typeof s !== 'string' || s.startsWith('@')) return undefined;
    return s.split(',').some((n) => CT_STATES[n.trim()] === established);
  };
  if (typeof v === 'object' && !Array.isArray(v)) {
    const inner = v.not;
    const r = Array.isArray(inner) ? anyOf(inner.map(has)) : has(inner);
    return r === undefined ? undefined : !r;
  }
  return Array.isArray(v) ? anyOf(v.map(has)) : has(v);
}

function matchHolds(rule: Rule, p: Packet, sets: readonly SetSpec[]): Tri {
  if (rule.expr !== undefined) return undefined;
  // A rate limit lets some packets through and not others.
  if (rule.statements?.some((s) => typeof s === 'object' && 'limit' in s)) return undefined;
  const m = rule.match ?? {};
  let r: Tri = true;
  const addr = (v: MatchValue | undefined, which: 'saddr' | 'daddr', type: DataType): void => {
    if (v === undefined) return;
    r = and(r, valueHolds(type, v, bytesOf(type, p[which]), sets));
  };
  if (m.iif !== undefined) r = and(r, p.inbound ? ifnameHolds(m.iif, p.iifname) : false);
  if (m.iifname !== undefined) r = and(r, p.inbound ? ifnameHolds(m.iifname, p.iifname) : false);
  if (m.oif !== undefined) r = and(r, p.inbound ? false : ifnameHolds(m.oif, p.oifname));
  if (m.oifname !== undefined) r = and(r, p.inbound ? false : ifnameHolds(m.oifname, p.oifname));
  if (m.nfproto !== undefined)
    r = and(r, valueHolds(T.nfproto, m.nfproto, bytesOf(T.nfproto, p.v6 ? 'ipv6' : 'ipv4'), sets));
  if (m.l4proto !== undefined) r = and(r, valueHolds(T.inet_proto, m.l4proto, Buffer.from([6]), sets));
  if (m.mark !== undefined || m.ct?.mark !== undefined || m.ct?.status !== undefined) r = and(r, undefined);
  if (m.ip !== undefined) {
    if (p.v6) return false;
    addr(m.ip.saddr, 'saddr', T.ipv4_addr);
    addr(m.ip.daddr, 'daddr', T.ipv4_addr);
    if (m.ip.protocol !== undefined)
      r = and(r, valueHolds(T.inet_proto, m.ip.protocol, Buffer.from([6]), sets));
  }
  if (m.ip6 !== undefined) {
    if (!p.v6) return false;
    addr(m.ip6.saddr, 'saddr', T.ipv6_addr);
    addr(m.ip6.daddr, 'daddr', T.ipv6_addr);
    if (m.ip6.nexthdr !== undefined)
      r = and(r, valueHolds(T.inet_proto, m.ip6.nexthdr, Buffer.from([6]), sets));
  }
  if (m.udp !== undefined || m.icmp !== undefined || m.icmpv6 !== undefined) return false;
  if (m.tcp !== undefined) {
    const port = (n: number | undefined) => (n === undefined ? undefined : Buffer.from([n >> 8, n & 0xff]));
    if (m.tcp.sport !== undefined) r = and(r, valueHolds(T.inet_service, m.tcp.sport, port(p.sport), sets));
    if (m.tcp.dport !== undefined) r = and(r, valueHolds(T.inet_service, m.tcp.dport, port(p.dport), sets));
  }
  if (m.ct?.state !== undefined) r = and(r, ctStateHolds(m.ct.state));
  return r;
}

type Verdict = { kind: 'accept' | 'drop' | 'return' | 'none' } | { kind: 'jump' | 'goto'; chain: string };

function verdictOf(rule: Rule): Verdict {
  if (rule.expr !== undefined) {
    const last = rule.expr[rule.expr.length - 1];
    if (last?.type === 'reject') return { kind: 'drop' };
    if (last?.type === 'immediate' && last.dreg === 0 && last.verdict !== undefined) {
      const v = last.verdict;
      if (v.code === 'accept') return { kind: 'accept' };
      if (v.code === 'drop') return { kind: 'drop' };
      if (v.code === 'return') return { kind: 'return' };
      if ((v.code === 'jump' || v.code === 'goto') && v.chain !== undefined)
        return { kind: v.code, chain: v.chain };
    }
    // A verdict map or a queue: anything may happen.
    return rule.expr.some((e) => e.type === 'lookup' && e.dreg === 0) ? { kind: 'drop' } : { kind: 'none' };
  }
  const v = rule.verdict;
  if (v === undefined || v === 'continue') return { kind: 'none' };
  if (v === 'accept') return { kind: 'accept' };
  if (v === 'drop' || v === 'reject') return { kind: 'drop' };
  if (v === 'return') return { kind: 'return' };
  if ('jump' in v) return { kind: 'jump', chain: v.jump };
  if ('goto' in v) return { kind: 'goto', chain: v.goto };
  return { kind: 'drop' };
}

interface Evaluation {
  outcomes: Set<Outcome>;
  /** Why a drop is possible, for the message. */
  dropBy?: string;
}

function evalChain(table: TableSpec, chain: ChainSpec, p: Packet, depth: number): Evaluation {
  const out: Evaluation = { outcomes: new Set() };
  if (depth > 16)
    return { outcomes: new Set(['accept', 'drop']), dropBy: `chain ${chain.name}: jumps nest too deep` };
  const sets = table.sets ?? [];
  let alive = true;
  for (const [i, rule] of (chain.rules ?? []).entries()) {
    const m = matchHolds(rule, p, sets);
    if (m === false) continue;
    const v = verdictOf(rule);
    if (v.kind === 'none') continue;
    let results: Set<Outcome>;
    let dropBy = `chain ${chain.name}, rule ${i + 1} (${ruleText(rule)})`;
    if (v.kind === 'jump' || v.kind === 'goto') {
      const target = table.chains?.find((c) => c.name === v.chain);
      if (target === undefined) {
        results = new Set(['accept', 'drop', 'fallthrough']);
      } else {
        const sub = evalChain(table, target, p, depth + 1);
        results = sub.outcomes;
        if (sub.dropBy !== undefined) dropBy = sub.dropBy;
      }
    } else if (v.kind === 'return') results = new Set(['fallthrough']);
    else results = new Set([v.kind]);
    for (const o of results) if (o !== 'fallthrough') out.outcomes.add(o);
    if (results.has('drop') && out.dropBy === undefined) out.dropBy = dropBy;
    const continues = results.has('fallthrough');
    if (v.kind === 'return' || (v.kind === 'goto' && continues)) {
      // The chain ends here when the rule applies.
      if (m === true) {
        out.outcomes.add('fallthrough');
        alive = false;
        break;
      }
      out.outcomes.add('fallthrough');
      continue;
    }
    if (m === true && !continues) {
      alive = false;
      break;
    }
  }
  if (alive) out.outcomes.add('fallthrough');
  return out;
}

const HOOKS = { inbound: ['prerouting', 'input'], outbound: ['output', 'postrouting'] } as const;

/**
 * Why the table would drop (or might drop) the management connection, or undefined when every
 * path accepts it. Only filter and route chains are followed (nat chains see no established
 * traffic); bridge, netdev and arp tables are not evaluated.
 */
export function dropsConnection(table: TableSpec, c: ManagementConnection): string | undefined {
  const v6 = c.client.includes(':');
  if (table.family === 'ip' && v6) return undefined;
  if (table.family === 'ip6' && !v6) return undefined;
  if (table.family !== 'ip' && table.family !== 'ip6' && table.family !== 'inet') return undefined;
  for (const direction of ['inbound', 'outbound'] as const) {
    const inbound = direction === 'inbound';
    const p: Packet = {
      v6,
      saddr: inbound ? c.client : c.server,
      daddr: inbound ? c.server : c.client,
      sport: inbound ? c.clientPort : c.serverPort,
      dport: inbound ? c.serverPort : c.clientPort,
      iifname: inbound ? c.interface : undefined,
      oifname: inbound ? undefined : c.interface,
      inbound,
    };
    for (const chain of table.chains ?? []) {
      if (
        chain.hook === undefined ||
        chain.type === 'nat' ||
        !(HOOKS[direction] as readonly string[]).includes(chain.hook)
      )
        continue;
      const e = evalChain(table, chain, p, 0);
      const drops =
        e.outcomes.has('drop') || (e.outcomes.has('fallthrough') && (chain.policy ?? 'accept') === 'drop');
      if (!drops) continue;
      const why = e.outcomes.has('drop')
        ? (e.dropBy ?? `chain ${chain.name}`)
        : `chain ${chain.name} (hook ${chain.hook}): policy drop, and no rule surely accepts it`;
      const port = (n: number | undefined) => (n === undefined ? '' : `:${n}`);
      return `the management connection ${c.client}${port(c.clientPort)} → ${c.server}${port(c.serverPort)} (${c.source}) could be dropped ${inbound ? 'on the way in' : 'on the way out'} by table ${table.family} ${table.name}: ${why}`;
    }
  }
  return undefined;
}
