/**
 * An nftables transaction: the messages between NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END,
 * which the kernel applies all together or not at all.
 */
import { Writer, beginMessage, constants, endMessage } from '@opdbus/netlink';
import {
  NFNL_BATCH_GENID,
  NFNL_MSG_BATCH_BEGIN,
  NFNL_MSG_BATCH_END,
  NFNL_SUBSYS_NFTABLES,
  NFPROTO,
  NFTA_RULE,
  NFTA_SET,
  NFTA_SET_ELEM_LIST,
  NFT_MSG,
  NFT_MSG_NAME,
  NFT_SET_F,
} from './constants.js';
import { encodeExpr, type NftAnonymousSet, type NftElementData, type NftExpr } from './expr.js';
import { put } from './tlv.js';
import {
  FAMILY_NUMBER,
  checkName,
  commentUdata,
  elementSize,
  msgType,
  putChain,
  putElement,
  putHeader,
  putSet,
  putTable,
  type NftFamily,
  type NftHook,
  type NftSet,
} from './wire.js';

const { NLM_F } = constants;

/** One message of a batch, written when the batch is encoded. */
export interface BatchMessage {
  /** NFT_MSG_* */
  msg: number;
  family: NftFamily;
  /** NLM_F_* besides REQUEST and ACK. */
  flags: number;
  /** What it does, for errors: `add rule inet filter input`. */
  description: string;
  /** Writes the attributes after nfgenmsg. */
  body: (w: Writer) => void;
}

/** Where a new rule goes in its chain. */
export type RulePosition = { at: 'end' } | { at: 'start' } | { after: number } | { before: number };

/** A rule to add or replace. */
export interface BatchRule {
  table: string;
  chain: string;
  expressions: readonly NftExpr[];
  /** Stored as the rule's comment (what `nft list` shows as `comment "…"`). */
  comment?: string;
  /** Raw libnftnl udata (hex), instead of `comment`. */
  userdata?: string;
}

/** The largest NFTA_SET_ELEM_LIST_ELEMENTS payload per message (attribute lengths are 16 bits). */
const ELEMENTS_PER_MESSAGE_BYTES = 60_000;

/** The encoded batch: one datagram, and what each sequence number was. */
export interface EncodedBatch {
  buffer: Buffer;
  /** The BATCH_BEGIN's sequence number (errors about the whole batch come with it). */
  beginSeq: number;
  /** Each message's sequence number, in order. */
  messages: { seq: number; message: BatchMessage }[];
}

/**
 * Builds one nftables transaction. Methods append messages in order; the kernel processes them
 * in that order (a table before its chains, rules' deletions before their sets' …) and commits
 * all or none. Anonymous sets of `lookup` expressions are created with their rule.
 *
 * @example
 * ```ts
 * const batch = new NftBatch();
 * batch.addTable('inet', { name: 'filter' });
 * batch.addChain('inet', { table: 'filter', name: 'input', type: 'filter', hook: { hooknum: 1, priority: 0 }, policy: 'accept' });
 * await client.commit(batch);
 * ```
 */
export class NftBatch {
  readonly messages: BatchMessage[] = [];
  #setId = 0;

  /** Number of messages (without BEGIN/END). */
  get length(): number {
    return this.messages.length;
  }

  #push(message: BatchMessage): void {
    this.messages.push(message);
  }

  /** NEWTABLE: create the table, or update its flags/comment when it exists (`exclusive`: fail if it exists). */
  addTable(
    family: NftFamily,
    table: { name: string; flags?: number; comment?: string },
    options: { exclusive?: boolean } = {},
  ): this {
    checkName('table', table.name);
    this.#push({
      msg: NFT_MSG.NEWTABLE,
      family,
      flags: NLM_F.CREATE | (options.exclusive ? NLM_F.EXCL : 0),
      description: `add table ${family} ${table.name}`,
      body: (w) => putTable(w, table),
    });
    return this;
  }

  /** DELTABLE: delete the table and everything in it. */
  deleteTable(family: NftFamily, name: string): this {
    this.#push({
      msg: NFT_MSG.DELTABLE,
      family,
      flags: 0,
      description: `delete table ${family} ${name}`,
      body: (w) => putTable(w, { name }),
    });
    return this;
  }

  /**
   * NEWCHAIN: create the chain, or update an existing one (its policy). A base chain has a
   * `type`, a `hook` and a `policy`.
   */
  addChain(
    family: NftFamily,
    chain: {
      table: string;
      name: string;
      type?: string;
      hook?: NftHook;
      policy?: 'accept' | 'drop';
      comment?: string;
    },
    options: { exclusive?: boolean } = {},
  ): this {
    checkName('chain', chain.name);
    this.#push({
      msg: NFT_MSG.NEWCHAIN,
      family,
      flags: NLM_F.CREATE | (options.exclusive ? NLM_F.EXCL : 0),
      description: `${options.exclusive ? 'create' : 'add'} chain ${family} ${chain.table} ${chain.name}`,
      body: (w) => putChain(w, chain),
    });
    return this;
  }

  /** DELCHAIN: delete an empty chain nothing jumps to. */
  deleteChain(family: NftFamily, table: string, name: string): this {
    this.#push({
      msg: NFT_MSG.DELCHAIN,
      family,
      flags: 0,
      description: `delete chain ${family} ${table} ${name}`,
      body: (w) => putChain(w, { table, name }),
    });
    return this;
  }

  /** DELRULE without a handle: delete every rule of the chain. */
  flushChain(family: NftFamily, table: string, chain: string): this {
    this.#push({
      msg: NFT_MSG.DELRULE,
      family,
      flags: 0,
      description: `flush chain ${family} ${table} ${chain}`,
      body: (w) => {
        put.str(w, NFTA_RULE.TABLE, table);
        put.str(w, NFTA_RULE.CHAIN, chain);
      },
    });
    return this;
  }

  /** NEWRULE: add a rule at a position (default: the end of the chain). */
  addRule(family: NftFamily, rule: BatchRule, position: RulePosition = { at: 'end' }): this {
    const exprs = this.#anonymousSets(family, rule.table, rule.expressions);
    const append = 'at' in position ? position.at === 'end' : 'after' in position;
    const where =
      'at' in position
        ? position.at === 'end'
          ? ''
          : ' at the start'
        : 'after' in position
          ? ` after handle ${position.after}`
          : ` before handle ${position.before}`;
    this.#push({
      msg: NFT_MSG.NEWRULE,
      family,
      flags: NLM_F.CREATE | (append ? NLM_F.APPEND : 0),
      description: `add rule ${family} ${rule.table} ${rule.chain}${rule.comment === undefined ? '' : ` "${rule.comment}"`}${where}`,
      body: (w) => {
        put.str(w, NFTA_RULE.TABLE, rule.table);
        put.str(w, NFTA_RULE.CHAIN, rule.chain);
        if ('after' in position) put.be64(w, NFTA_RULE.POSITION, position.after);
        else if ('before' in position) put.be64(w, NFTA_RULE.POSITION, position.before);
        putRuleBody(w, exprs, rule);
      },
    });
    return this;
  }

  /** NEWRULE with NLM_F_REPLACE: replace the rule with this handle, in place. */
  replaceRule(family: NftFamily, handle: number, rule: BatchRule): this {
    const exprs = this.#anonymousSets(family, rule.table, rule.expressions);
    this.#push({
      msg: NFT_MSG.NEWRULE,
      family,
      flags: NLM_F.REPLACE,
      description: `replace rule ${family} ${rule.table} ${rule.chain} handle ${handle}${rule.comment === undefined ? '' : ` "${rule.comment}"`}`,
      body: (w) => {
        put.str(w, NFTA_RULE.TABLE, rule.table);
        put.str(w, NFTA_RULE.CHAIN, rule.chain);
        put.be64(w, NFTA_RULE.HANDLE, handle);
        putRuleBody(w, exprs, rule);
      },
    });
    return this;
  }

  /** DELRULE: delete the rule with this handle. */
  deleteRule(family: NftFamily, table: string, chain: string, handle: number): this {
    this.#push({
      msg: NFT_MSG.DELRULE,
      family,
      flags: 0,
      description: `delete rule ${family} ${table} ${chain} handle ${handle}`,
      body: (w) => {
        put.str(w, NFTA_RULE.TABLE, table);
        put.str(w, NFTA_RULE.CHAIN, chain);
        put.be64(w, NFTA_RULE.HANDLE, handle);
      },
    });
    return this;
  }

  /** NEWSET: create a named set or map (`exclusive`: fail when it exists). */
  addSet(
    family: NftFamily,
    set: Omit<NftSet, 'family' | 'handle'>,
    options: { exclusive?: boolean } = {},
  ): this {
    checkName('set', set.name);
    const id = ++this.#setId;
    this.#push({
      msg: NFT_MSG.NEWSET,
      family,
      flags: NLM_F.CREATE | (options.exclusive ? NLM_F.EXCL : 0),
      description: `add ${set.flags & NFT_SET_F.MAP ? 'map' : 'set'} ${family} ${set.table} ${set.name}`,
      body: (w) => putSet(w, { ...set, id }),
    });
    return this;
  }

  /** DELSET: delete a set no rule uses. */
  deleteSet(family: NftFamily, table: string, name: string): this {
    this.#push({
      msg: NFT_MSG.DELSET,
      family,
      flags: 0,
      description: `delete set ${family} ${table} ${name}`,
      body: (w) => {
        put.str(w, NFTA_SET.TABLE, table);
        put.str(w, NFTA_SET.NAME, name);
      },
    });
    return this;
  }

  /** NEWSETELEM: add elements (split over as many messages as their size needs). */
  addElements(family: NftFamily, table: string, set: string, elements: readonly NftElementData[]): this {
    this.#elements(NFT_MSG.NEWSETELEM, NLM_F.CREATE, 'add', family, table, set, elements);
    return this;
  }

  /** DELSETELEM: delete elements (each interval's start and end are elements of their own). */
  deleteElements(family: NftFamily, table: string, set: string, elements: readonly NftElementData[]): this {
    this.#elements(NFT_MSG.DELSETELEM, 0, 'delete', family, table, set, elements);
    return this;
  }

  /** DELSETELEM without elements: delete every element of the set. */
  flushSet(family: NftFamily, table: string, set: string): this {
    this.#push({
      msg: NFT_MSG.DELSETELEM,
      family,
      flags: 0,
      description: `flush set ${family} ${table} ${set}`,
      body: (w) => {
        put.str(w, NFTA_SET_ELEM_LIST.TABLE, table);
        put.str(w, NFTA_SET_ELEM_LIST.SET, set);
      },
    });
    return this;
  }

  #elements(
    msg: number,
    flags: number,
    verb: string,
    family: NftFamily,
    table: string,
    set: string,
    elements: readonly NftElementData[],
    setId?: number,
  ): void {
    let start = 0;
    while (start < elements.length) {
      let size = 0;
      let end = start;
      while (end < elements.length) {
        const s = elementSize(elements[end]!);
        if (end > start && size + s > ELEMENTS_PER_MESSAGE_BYTES) break;
        size += s;
        end++;
      }
      const chunk = elements.slice(start, end);
      const first = start;
      this.#push({
        msg,
        family,
        flags,
        description: `${verb} ${chunk.length} element(s) ${verb === 'add' ? 'to' : 'of'} set ${family} ${table} ${set}${elements.length > chunk.length ? ` (elements ${first + 1}-${end} of ${elements.length})` : ''}`,
        body: (w) => {
          put.str(w, NFTA_SET_ELEM_LIST.TABLE, table);
          put.str(w, NFTA_SET_ELEM_LIST.SET, set);
          if (setId !== undefined) put.be32(w, NFTA_SET_ELEM_LIST.SET_ID, setId);
          const n = put.nest(w, NFTA_SET_ELEM_LIST.ELEMENTS);
          for (const el of chunk) putElement(w, el);
          put.end(w, n);
        },
      });
      start = end;
    }
  }

  /** Create the anonymous sets of lookups (before the rule) and point the lookups at them. */
  #anonymousSets(family: NftFamily, table: string, expressions: readonly NftExpr[]): NftExpr[] {
    return expressions.map((expr) => {
      if (expr.type !== 'lookup' || expr.anonymous === undefined) return expr;
      const anon: NftAnonymousSet = expr.anonymous;
      const id = ++this.#setId;
      const name = '__set%d';
      const set: Omit<NftSet, 'family' | 'handle'> = {
        table,
        name,
        flags: anon.flags | NFT_SET_F.ANONYMOUS | NFT_SET_F.CONSTANT,
        keyType: anon.keyType,
        keyLen: anon.keyLen,
        size: anon.elements.length,
      };
      if (anon.dataType !== undefined) set.dataType = anon.dataType;
      if (anon.dataLen !== undefined) set.dataLen = anon.dataLen;
      if (anon.concat !== undefined) set.concat = anon.concat;
      this.#push({
        msg: NFT_MSG.NEWSET,
        family,
        flags: NLM_F.CREATE,
        description: `add anonymous set of a rule in ${family} ${table}`,
        body: (w) => putSet(w, { ...set, id }),
      });
      this.#elements(NFT_MSG.NEWSETELEM, NLM_F.CREATE, 'add', family, table, name, anon.elements, id);
      const { anonymous: _a, ...lookup } = expr;
      return { ...lookup, set: name, setId: id };
    });
  }

  /**
   * Encode BEGIN, the messages with sequence numbers from `seq`, and END, into one datagram.
   * With `generation`, the kernel refuses the batch (ERESTART) unless the ruleset is still at
   * that generation.
   */
  encode(seq: number, generation?: number): EncodedBatch {
    const w = new Writer(4096 + this.messages.length * 256);
    const beginSeq = seq;
    let start = beginMessage(w, NFNL_MSG_BATCH_BEGIN, NLM_F.REQUEST, beginSeq, 0);
    putHeader(w, NFPROTO.UNSPEC, NFNL_SUBSYS_NFTABLES);
    if (generation !== undefined) put.be32(w, NFNL_BATCH_GENID, generation);
    endMessage(w, start);
    const messages: { seq: number; message: BatchMessage }[] = [];
    for (const message of this.messages) {
      const s = ++seq;
      start = beginMessage(w, msgType(message.msg), NLM_F.REQUEST | NLM_F.ACK | message.flags, s, 0);
      putHeader(w, FAMILY_NUMBER[message.family]);
      message.body(w);
      endMessage(w, start);
      messages.push({ seq: s, message });
    }
    start = beginMessage(w, NFNL_MSG_BATCH_END, NLM_F.REQUEST, ++seq, 0);
    putHeader(w, NFPROTO.UNSPEC, NFNL_SUBSYS_NFTABLES);
    endMessage(w, start);
    return { buffer: w.buf.subarray(0, w.pos), beginSeq, messages };
  }
}

function putRuleBody(w: Writer, exprs: readonly NftExpr[], rule: BatchRule): void {
  const n = put.nest(w, NFTA_RULE.EXPRESSIONS);
  for (const expr of exprs) encodeExpr(w, expr);
  put.end(w, n);
  if (rule.userdata !== undefined) put.bytes(w, NFTA_RULE.USERDATA, Buffer.from(rule.userdata, 'hex'));
  else if (rule.comment !== undefined) put.bytes(w, NFTA_RULE.USERDATA, commentUdata(rule.comment));
}

/** The name of a batch message's type, for errors. */
export const messageName = (msg: number): string => NFT_MSG_NAME[msg] ?? `NFT_MSG_${msg}`;
