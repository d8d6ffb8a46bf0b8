/**
 * nf_tables objects as the kernel holds them — tables, chains, sets, set elements, rules, the
 * generation — and their netlink encoding (nfgenmsg + NFTA_* attributes).
 */
import type { Writer } from '@opdbus/netlink';
import {
  NFNETLINK_V0,
  NFNL_SUBSYS_NFTABLES,
  NFPROTO,
  NFTA_CHAIN,
  NFTA_DATA,
  NFTA_DEVICE_NAME,
  NFTA_GEN,
  NFTA_HOOK,
  NFTA_LIST_ELEM,
  NFTA_RULE,
  NFTA_SET,
  NFTA_SET_DESC,
  NFTA_SET_ELEM,
  NFTA_SET_ELEM_LIST,
  NFTA_SET_FIELD_LEN,
  NFTA_TABLE,
  NF_ACCEPT,
  NF_DROP,
  UDATA,
} from './constants.js';
import { invalid } from './errors.js';
import {
  decodeExpressions,
  putData,
  putVerdict,
  readData,
  type NftElementData,
  type NftExpr,
} from './expr.js';
import { be32, be64, buildUdata, forEachAttr, parseUdata, put, sbe32, str, udataString } from './tlv.js';

/** nftables address families. */
export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

/** Family name → NFPROTO number. */
export const FAMILY_NUMBER: Readonly<Record<NftFamily, number>> = {
  ip: NFPROTO.IPV4,
  ip6: NFPROTO.IPV6,
  inet: NFPROTO.INET,
  arp: NFPROTO.ARP,
  bridge: NFPROTO.BRIDGE,
  netdev: NFPROTO.NETDEV,
};
const familyByNumber = new Map<number, NftFamily>(
  Object.entries(FAMILY_NUMBER).map(([k, v]) => [v, k as NftFamily]),
);

/** The family of an NFPROTO number. */
export function familyName(n: number): NftFamily {
  const f = familyByNumber.get(n);
  if (f === undefined) throw new Error(`unknown nftables family ${n}`);
  return f;
}

/** A table. */
export interface NftTable {
  family: NftFamily;
  name: string;
  handle: number;
  /** NFT_TABLE_F_* (1: dormant). */
  flags: number;
  /** How many chains, sets … it holds (read only). */
  use?: number;
  comment?: string;
}

/** A base chain's hook. */
export interface NftHook {
  /** NF_INET_* / NF_NETDEV_* / NF_ARP_* hook number. */
  hooknum: number;
  priority: number;
  /** The devices of a netdev (or inet ingress) chain. */
  devices?: string[];
}

/** A chain: a base chain (with a hook) or a regular one. */
export interface NftChain {
  family: NftFamily;
  table: string;
  name: string;
  handle: number;
  hook?: NftHook;
  /** `filter`, `nat` or `route` (base chains). */
  type?: string;
  policy?: 'accept' | 'drop';
  flags?: number;
  /** How many rules and jumps refer to it (read only). */
  use?: number;
  comment?: string;
}

/** A named or anonymous set (or map). */
export interface NftSet {
  family: NftFamily;
  table: string;
  name: string;
  handle: number;
  /** NFT_SET_* flags. */
  flags: number;
  /** nft's datatype id of the key (concatenations combine them, 6 bits each). */
  keyType: number;
  keyLen: number;
  /** A map's data type (NFT_DATA_VERDICT for a verdict map) and length. */
  dataType?: number;
  dataLen?: number;
  objType?: number;
  /** NFT_SET_POL_*. */
  policy?: number;
  /** NFTA_SET_DESC_SIZE. */
  size?: number;
  /** Field lengths of a concatenated key. */
  concat?: number[];
  /** Default element timeout, in milliseconds. */
  timeout?: number;
  /** Garbage collection interval, in milliseconds. */
  gcInterval?: number;
  /** libnftnl udata (key byte order, comment …), hex. */
  userdata?: string;
  comment?: string;
}

/** A rule. */
export interface NftRule {
  family: NftFamily;
  table: string;
  chain: string;
  handle: number;
  expressions: NftExpr[];
  /** libnftnl udata (the comment), hex. */
  userdata?: string;
  comment?: string;
}

/** The ruleset generation: it changes with every committed transaction. */
export interface NftGeneration {
  id: number;
  /** The process that committed the last transaction, when the kernel says. */
  pid?: number;
  processName?: string;
}

/** Write nfgenmsg. */
export function putHeader(w: Writer, family: number, resId = 0): void {
  w.u8(family);
  w.u8(NFNETLINK_V0);
  w.be16(resId);
}

/** The nlmsg_type of an nf_tables message. */
export const msgType = (msg: number): number => (NFNL_SUBSYS_NFTABLES << 8) | msg;

/** Offset of the first attribute of an nf_tables message at `off`. */
const ATTRS = 16 + 4;

// ------------------------------------------------------------------ decoding

/** Decode an NFT_MSG_NEWTABLE message. */
export function decodeTable(buf: Buffer, off: number, len: number): NftTable {
  const t: NftTable = { family: familyName(buf[off + 16]!), name: '', handle: 0, flags: 0 };
  forEachAttr(buf, off + ATTRS, off + len, (type, s, e) => {
    switch (type) {
      case NFTA_TABLE.NAME:
        t.name = str(buf, s, e);
        break;
      case NFTA_TABLE.FLAGS:
        t.flags = be32(buf, s);
        break;
      case NFTA_TABLE.USE:
        t.use = be32(buf, s);
        break;
      case NFTA_TABLE.HANDLE:
        t.handle = be64(buf, s);
        break;
      case NFTA_TABLE.USERDATA: {
        const c = udataString(parseUdata(buf.subarray(s, e)).get(UDATA.TABLE_COMMENT));
        if (c !== undefined) t.comment = c;
        break;
      }
    }
  });
  return t;
}

/** Decode an NFT_MSG_NEWCHAIN message. */
export function decodeChain(buf: Buffer, off: number, len: number): NftChain {
  const c: NftChain = { family: familyName(buf[off + 16]!), table: '', name: '', handle: 0 };
  forEachAttr(buf, off + ATTRS, off + len, (type, s, e) => {
    switch (type) {
      case NFTA_CHAIN.TABLE:
        c.table = str(buf, s, e);
        break;
      case NFTA_CHAIN.NAME:
        c.name = str(buf, s, e);
        break;
      case NFTA_CHAIN.HANDLE:
        c.handle = be64(buf, s);
        break;
      case NFTA_CHAIN.HOOK: {
        const hook: NftHook = { hooknum: 0, priority: 0 };
        forEachAttr(buf, s, e, (ht, hs, he) => {
          if (ht === NFTA_HOOK.HOOKNUM) hook.hooknum = be32(buf, hs);
          else if (ht === NFTA_HOOK.PRIORITY) hook.priority = sbe32(buf, hs);
          else if (ht === NFTA_HOOK.DEV) hook.devices = [str(buf, hs, he)];
          else if (ht === NFTA_HOOK.DEVS) {
            const devices: string[] = [];
            forEachAttr(buf, hs, he, (dt, ds, de) => {
              if (dt === NFTA_DEVICE_NAME) devices.push(str(buf, ds, de));
            });
            hook.devices = devices;
          }
        });
        c.hook = hook;
        break;
      }
      case NFTA_CHAIN.POLICY:
        c.policy = be32(buf, s) === NF_ACCEPT ? 'accept' : 'drop';
        break;
      case NFTA_CHAIN.TYPE:
        c.type = str(buf, s, e);
        break;
      case NFTA_CHAIN.FLAGS:
        c.flags = be32(buf, s);
        break;
      case NFTA_CHAIN.USE:
        c.use = be32(buf, s);
        break;
      case NFTA_CHAIN.USERDATA: {
        const comment = udataString(parseUdata(buf.subarray(s, e)).get(UDATA.CHAIN_COMMENT));
        if (comment !== undefined) c.comment = comment;
        break;
      }
    }
  });
  return c;
}

/** Decode an NFT_MSG_NEWSET message. */
export function decodeSet(buf: Buffer, off: number, len: number): NftSet {
  const set: NftSet = {
    family: familyName(buf[off + 16]!),
    table: '',
    name: '',
    handle: 0,
    flags: 0,
    keyType: 0,
    keyLen: 0,
  };
  forEachAttr(buf, off + ATTRS, off + len, (type, s, e) => {
    switch (type) {
      case NFTA_SET.TABLE:
        set.table = str(buf, s, e);
        break;
      case NFTA_SET.NAME:
        set.name = str(buf, s, e);
        break;
      case NFTA_SET.HANDLE:
        set.handle = be64(buf, s);
        break;
      case NFTA_SET.FLAGS:
        set.flags = be32(buf, s);
        break;
      case NFTA_SET.KEY_TYPE:
        set.keyType = be32(buf, s);
        break;
      case NFTA_SET.KEY_LEN:
        set.keyLen = be32(buf, s);
        break;
      case NFTA_SET.DATA_TYPE:
        set.dataType = be32(buf, s);
        break;
      case NFTA_SET.DATA_LEN:
        set.dataLen = be32(buf, s);
        break;
      case NFTA_SET.OBJ_TYPE:
        set.objType = be32(buf, s);
        break;
      case NFTA_SET.POLICY:
        set.policy = be32(buf, s);
        break;
      case NFTA_SET.TIMEOUT:
        set.timeout = be64(buf, s);
        break;
      case NFTA_SET.GC_INTERVAL:
        set.gcInterval = be32(buf, s);
        break;
      case NFTA_SET.DESC:
        forEachAttr(buf, s, e, (dt, ds, de) => {
          if (dt === NFTA_SET_DESC.SIZE) set.size = be32(buf, ds);
          else if (dt === NFTA_SET_DESC.CONCAT) {
            const fields: number[] = [];
            forEachAttr(buf, ds, de, (ft, fs, fe) => {
              if (ft !== NFTA_LIST_ELEM) return;
              forEachAttr(buf, fs, fe, (lt, ls) => {
                if (lt === NFTA_SET_FIELD_LEN) fields.push(be32(buf, ls));
              });
            });
            if (fields.length > 0) set.concat = fields;
          }
        });
        break;
      case NFTA_SET.USERDATA: {
        set.userdata = buf.toString('hex', s, e);
        const comment = udataString(parseUdata(buf.subarray(s, e)).get(UDATA.SET_COMMENT));
        if (comment !== undefined) set.comment = comment;
        break;
      }
    }
  });
  return set;
}

/** Decode the elements of an NFT_MSG_NEWSETELEM message (which names its table and set). */
export function decodeElements(
  buf: Buffer,
  off: number,
  len: number,
): { table: string; set: string; elements: NftElementData[] } {
  const out: { table: string; set: string; elements: NftElementData[] } = {
    table: '',
    set: '',
    elements: [],
  };
  forEachAttr(buf, off + ATTRS, off + len, (type, s, e) => {
    if (type === NFTA_SET_ELEM_LIST.TABLE) out.table = str(buf, s, e);
    else if (type === NFTA_SET_ELEM_LIST.SET) out.set = str(buf, s, e);
    else if (type === NFTA_SET_ELEM_LIST.ELEMENTS) {
      forEachAttr(buf, s, e, (lt, ls, le) => {
        if (lt === NFTA_LIST_ELEM) out.elements.push(decodeElement(buf, ls, le));
      });
    }
  });
  return out;
}

function decodeElement(buf: Buffer, s: number, e: number): NftElementData {
  const el: NftElementData = { key: '' };
  forEachAttr(buf, s, e, (type, a, b) => {
    switch (type) {
      case NFTA_SET_ELEM.KEY:
        el.key = readData(buf, a, b).value ?? '';
        break;
      case NFTA_SET_ELEM.KEY_END: {
        const v = readData(buf, a, b).value;
        if (v !== undefined) el.keyEnd = v;
        break;
      }
      case NFTA_SET_ELEM.FLAGS: {
        const f = be32(buf, a);
        if (f !== 0) el.flags = f;
        break;
      }
      case NFTA_SET_ELEM.DATA: {
        const d = readData(buf, a, b);
        if (d.verdict !== undefined) el.verdict = d.verdict;
        else if (d.value !== undefined) el.data = d.value;
        break;
      }
      case NFTA_SET_ELEM.TIMEOUT:
        el.timeout = be64(buf, a);
        break;
      case NFTA_SET_ELEM.EXPIRATION:
        el.expiration = be64(buf, a);
        break;
      case NFTA_SET_ELEM.USERDATA:
        el.userdata = buf.toString('hex', a, b);
        break;
    }
  });
  return el;
}

/** Decode an NFT_MSG_NEWRULE message. */
export function decodeRule(buf: Buffer, off: number, len: number): NftRule {
  const r: NftRule = { family: familyName(buf[off + 16]!), table: '', chain: '', handle: 0, expressions: [] };
  forEachAttr(buf, off + ATTRS, off + len, (type, s, e) => {
    switch (type) {
      case NFTA_RULE.TABLE:
        r.table = str(buf, s, e);
        break;
      case NFTA_RULE.CHAIN:
        r.chain = str(buf, s, e);
        break;
      case NFTA_RULE.HANDLE:
        r.handle = be64(buf, s);
        break;
      case NFTA_RULE.EXPRESSIONS:
        r.expressions = decodeExpressions(buf, s, e);
        break;
      case NFTA_RULE.USERDATA: {
        r.userdata = buf.toString('hex', s, e);
        const comment = udataString(parseUdata(buf.subarray(s, e)).get(UDATA.RULE_COMMENT));
        if (comment !== undefined) r.comment = comment;
        break;
      }
    }
  });
  return r;
}

/** Decode an NFT_MSG_NEWGEN message. */
export function decodeGeneration(buf: Buffer, off: number, len: number): NftGeneration {
  const g: NftGeneration = { id: 0 };
  forEachAttr(buf, off + ATTRS, off + len, (type, s, e) => {
    if (type === NFTA_GEN.ID) g.id = be32(buf, s);
    else if (type === NFTA_GEN.PROC_PID) g.pid = be32(buf, s);
    else if (type === NFTA_GEN.PROC_NAME) g.processName = str(buf, s, e);
  });
  return g;
}

// ------------------------------------------------------------------ encoding

/** The comment udata of a table, chain or rule (TLV type 0 in each). */
export const commentUdata = (comment: string): Buffer => buildUdata([[0, comment]]);

/** NEWTABLE / DELTABLE attributes. */
export function putTable(
  w: Writer,
  t: { name: string; flags?: number; comment?: string; handle?: number },
): void {
  put.str(w, NFTA_TABLE.NAME, t.name);
  if (t.flags !== undefined) put.be32(w, NFTA_TABLE.FLAGS, t.flags);
  if (t.comment !== undefined) put.bytes(w, NFTA_TABLE.USERDATA, commentUdata(t.comment));
}

/** NEWCHAIN / DELCHAIN attributes. */
export function putChain(
  w: Writer,
  c: {
    table: string;
    name: string;
    hook?: NftHook;
    type?: string;
    policy?: 'accept' | 'drop';
    comment?: string;
  },
): void {
  put.str(w, NFTA_CHAIN.TABLE, c.table);
  put.str(w, NFTA_CHAIN.NAME, c.name);
  if (c.hook !== undefined) {
    const h = put.nest(w, NFTA_CHAIN.HOOK);
    put.be32(w, NFTA_HOOK.HOOKNUM, c.hook.hooknum);
    put.sbe32(w, NFTA_HOOK.PRIORITY, c.hook.priority);
    const devices = c.hook.devices ?? [];
    if (devices.length === 1) put.str(w, NFTA_HOOK.DEV, devices[0]!);
    else if (devices.length > 1) {
      const d = put.nest(w, NFTA_HOOK.DEVS);
      for (const dev of devices) put.str(w, NFTA_DEVICE_NAME, dev);
      put.end(w, d);
    }
    put.end(w, h);
  }
  if (c.policy !== undefined) put.be32(w, NFTA_CHAIN.POLICY, c.policy === 'accept' ? NF_ACCEPT : NF_DROP);
  if (c.type !== undefined) put.str(w, NFTA_CHAIN.TYPE, c.type);
  if (c.comment !== undefined) put.bytes(w, NFTA_CHAIN.USERDATA, commentUdata(c.comment));
}

/** NEWSET attributes. */
export function putSet(w: Writer, s: Omit<NftSet, 'family' | 'handle'> & { id?: number }): void {
  put.str(w, NFTA_SET.TABLE, s.table);
  put.str(w, NFTA_SET.NAME, s.name);
  put.be32(w, NFTA_SET.FLAGS, s.flags);
  put.be32(w, NFTA_SET.KEY_TYPE, s.keyType);
  put.be32(w, NFTA_SET.KEY_LEN, s.keyLen);
  if (s.dataType !== undefined) put.be32(w, NFTA_SET.DATA_TYPE, s.dataType);
  if (s.dataLen !== undefined) put.be32(w, NFTA_SET.DATA_LEN, s.dataLen);
  if (s.objType !== undefined) put.be32(w, NFTA_SET.OBJ_TYPE, s.objType);
  if (s.policy !== undefined) put.be32(w, NFTA_SET.POLICY, s.policy);
  if (s.size !== undefined || s.concat !== undefined) {
    const d = put.nest(w, NFTA_SET.DESC);
    if (s.size !== undefined) put.be32(w, NFTA_SET_DESC.SIZE, s.size);
    if (s.concat !== undefined) {
      const c = put.nest(w, NFTA_SET_DESC.CONCAT);
      for (const len of s.concat) {
        const f = put.nest(w, NFTA_LIST_ELEM);
        put.be32(w, NFTA_SET_FIELD_LEN, len);
        put.end(w, f);
      }
      put.end(w, c);
    }
    put.end(w, d);
  }
  if (s.id !== undefined) put.be32(w, NFTA_SET.ID, s.id);
  if (s.timeout !== undefined) put.be64(w, NFTA_SET.TIMEOUT, s.timeout);
  if (s.gcInterval !== undefined) put.be32(w, NFTA_SET.GC_INTERVAL, s.gcInterval);
  if (s.userdata !== undefined) put.bytes(w, NFTA_SET.USERDATA, Buffer.from(s.userdata, 'hex'));
}

/** One element inside NFTA_SET_ELEM_LIST_ELEMENTS. */
export function putElement(w: Writer, el: NftElementData): void {
  const n = put.nest(w, NFTA_LIST_ELEM);
  if (el.flags !== undefined && el.flags !== 0) put.be32(w, NFTA_SET_ELEM.FLAGS, el.flags);
  if (el.key !== '') putData(w, NFTA_SET_ELEM.KEY, el.key);
  if (el.keyEnd !== undefined) putData(w, NFTA_SET_ELEM.KEY_END, el.keyEnd);
  if (el.verdict !== undefined) putVerdict(w, NFTA_SET_ELEM.DATA, el.verdict);
  else if (el.data !== undefined) putData(w, NFTA_SET_ELEM.DATA, el.data);
  if (el.timeout !== undefined) put.be64(w, NFTA_SET_ELEM.TIMEOUT, el.timeout);
  if (el.userdata !== undefined) put.bytes(w, NFTA_SET_ELEM.USERDATA, Buffer.from(el.userdata, 'hex'));
  put.end(w, n);
}

/** The encoded size of an element, to split large element lists over several messages. */
export function elementSize(el: NftElementData): number {
  let n = 4 + 8;
  n += 8 + ((el.key.length / 2 + 3) & ~3);
  if (el.keyEnd !== undefined) n += 8 + ((el.keyEnd.length / 2 + 3) & ~3);
  if (el.data !== undefined) n += 8 + ((el.data.length / 2 + 3) & ~3);
  if (el.verdict !== undefined) n += 24 + (el.verdict.chain?.length ?? 0) + 4;
  if (el.timeout !== undefined) n += 12;
  if (el.userdata !== undefined) n += 4 + ((el.userdata.length / 2 + 3) & ~3);
  return n;
}

/** NFTA_DATA helper re-exported for the batch (a set key written as a value). */
export const DATA_VALUE = NFTA_DATA.VALUE;

/** Check a name before it goes to the kernel. */
export function checkName(kind: string, name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > 255)
    throw invalid(`A ${kind} name must be 1 to 255 bytes long (got "${name.slice(0, 40)}").`, { kind, name });
}
