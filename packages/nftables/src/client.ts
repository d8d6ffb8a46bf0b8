import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import {
  NetlinkConnection,
  NetlinkSocket,
  constants,
  errnoInfo,
  type NetnsTarget,
  type RequestSpec,
} from '@opdbus/netlink';
import type { Writer } from '@opdbus/netlink';
import { messageName, type NftBatch } from './batch.js';
import {
  NFPROTO,
  NFTA_CHAIN,
  NFTA_RULE,
  NFTA_SET,
  NFTA_SET_ELEM_LIST,
  NFT_MSG,
  NFT_SET_F,
} from './constants.js';
import type { NftElementData, NftExpr } from './expr.js';
import { forEachAttr, hs32, hu16, hu32, put, str } from './tlv.js';
import {
  FAMILY_NUMBER,
  decodeChain,
  decodeElements,
  decodeGeneration,
  decodeRule,
  decodeSet,
  decodeTable,
  msgType,
  putHeader,
  type NftChain,
  type NftFamily,
  type NftGeneration,
  type NftRule,
  type NftSet,
  type NftTable,
} from './wire.js';

const { NETLINK, NLM_F, NLMSG, NLMSGERR_ATTR } = constants;
const ERESTART = 85;
const ENOBUFS = 105;

/** Options of {@link NftClient.open}. */
export interface NftClientOptions {
  /** Act inside this network namespace (a name under /run/netns, a path, `pid:N`, or a runner). */
  netns?: NetnsTarget;
  logger?: Logger;
}

/** A named set with its elements. */
export interface NftSetWithElements extends NftSet {
  elements: NftElementData[];
}

/** A consistent view of (part of) the ruleset: every object read at one generation. */
export interface NftRuleset {
  /** The generation all of it was read at; pass it to {@link NftClient.commit} to guard a batch. */
  generation: number;
  tables: NftTable[];
  chains: NftChain[];
  /** Named sets and maps with their elements (anonymous sets are inlined into their rules' lookups). */
  sets: NftSetWithElements[];
  /** Rules in chain order. */
  rules: NftRule[];
}

/** A table to read: its family and name. */
export interface NftTableRef {
  family: NftFamily;
  name: string;
}

/** What {@link NftClient.commit} returns. */
export interface CommitResult {
  /** Messages the kernel processed (without BEGIN/END). */
  messages: number;
  /** The batch's size in bytes. */
  bytes: number;
}

/**
 * A native nftables client over nfnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_NFTABLES):
 * what `nft` does through libnftnl, without spawning it. Reads are dumps on one socket; writes
 * are {@link NftBatch} transactions sent as one datagram on another, which the kernel commits
 * all together or not at all, optionally guarded by the generation they were computed from.
 *
 * @example
 * ```ts
 * using nft = NftClient.open({ netns: 'blue' });
 * const ruleset = await nft.listRuleset();
 * const batch = new NftBatch().addTable('inet', { name: 'filter' });
 * await nft.commit(batch, { generation: ruleset.generation });
 * ```
 */
export class NftClient {
  readonly #conn: NetlinkConnection;
  readonly #netns: NetnsTarget;
  readonly #logger: Logger;
  #batchSocket: NetlinkSocket | undefined;
  #seq = Math.floor(Math.random() * 0x3fffffff);
  #closed = false;

  private constructor(options: NftClientOptions) {
    this.#netns = options.netns;
    this.#logger = options.logger ?? silentLogger;
    this.#conn = new NetlinkConnection(NETLINK.NETFILTER, {
      ...(options.netns === undefined ? {} : { netns: options.netns }),
      logger: this.#logger,
    });
  }

  /** Open a client (two netfilter netlink sockets, the second on first commit) in `options.netns`. */
  static open(options: NftClientOptions = {}): NftClient {
    return new NftClient(options);
  }

  /** The namespace the client acts in, when not the caller's. */
  get netns(): string | undefined {
    return this.#conn.netns;
  }

  /** The ruleset's current generation (NFT_MSG_GETGEN). */
  async generation(): Promise<NftGeneration> {
    const [gen] = await this.#conn.request<NftGeneration>({
      type: msgType(NFT_MSG.GETGEN),
      body: (w) => putHeader(w, NFPROTO.UNSPEC),
      decode: (buf, off, len, type) =>
        type === msgType(NFT_MSG.NEWGEN) ? decodeGeneration(buf, off, len) : undefined,
      request: 'NFT_MSG_GETGEN',
      description: 'read the ruleset generation',
    });
    if (gen === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_NETLINK_PROTOCOL',
        'The kernel answered NFT_MSG_GETGEN without a generation.',
      );
    return gen;
  }

  #dump<T>(
    msg: number,
    family: NftFamily | undefined,
    body: (w: Writer) => void,
    reply: number,
    decode: (buf: Buffer, off: number, len: number) => T,
    description: string,
  ): Promise<T[]> {
    const spec: RequestSpec<T> = {
      type: msgType(msg),
      dump: true,
      body: (w) => {
        putHeader(w, family === undefined ? NFPROTO.UNSPEC : FAMILY_NUMBER[family]);
        body(w);
      },
      decode: (buf, off, len, type) => (type === msgType(reply) ? decode(buf, off, len) : undefined),
      request: messageName(msg),
      description,
    };
    return this.#conn.request(spec);
  }

  /** Every table (of one family). */
  listTables(family?: NftFamily): Promise<NftTable[]> {
    return this.#dump(
      NFT_MSG.GETTABLE,
      family,
      () => undefined,
      NFT_MSG.NEWTABLE,
      decodeTable,
      'list tables',
    );
  }

  /** Every chain (of one family, of one table). */
  listChains(family?: NftFamily, table?: string): Promise<NftChain[]> {
    return this.#dump(
      NFT_MSG.GETCHAIN,
      family,
      (w) => {
        if (table !== undefined) put.str(w, NFTA_CHAIN.TABLE, table);
      },
      NFT_MSG.NEWCHAIN,
      decodeChain,
      table === undefined ? 'list chains' : `list chains of ${family} ${table}`,
    );
  }

  /** Every set and map, anonymous ones included (of one family, of one table); without elements. */
  listSets(family?: NftFamily, table?: string): Promise<NftSet[]> {
    return this.#dump(
      NFT_MSG.GETSET,
      family,
      (w) => {
        if (table !== undefined) put.str(w, NFTA_SET.TABLE, table);
      },
      NFT_MSG.NEWSET,
      decodeSet,
      table === undefined ? 'list sets' : `list sets of ${family} ${table}`,
    );
  }

  /** The elements of one set. */
  async listElements(family: NftFamily, table: string, set: string): Promise<NftElementData[]> {
    const parts = await this.#dump(
      NFT_MSG.GETSETELEM,
      family,
      (w) => {
        put.str(w, NFTA_SET_ELEM_LIST.TABLE, table);
        put.str(w, NFTA_SET_ELEM_LIST.SET, set);
      },
      NFT_MSG.NEWSETELEM,
      decodeElements,
      `list the elements of set ${family} ${table} ${set}`,
    );
    return parts.flatMap((p) => p.elements);
  }

  /** Every rule (of one family, table, chain), in chain order. Lookups of anonymous sets are not resolved. */
  listRules(family?: NftFamily, table?: string, chain?: string): Promise<NftRule[]> {
    return this.#dump(
      NFT_MSG.GETRULE,
      family,
      (w) => {
        if (table !== undefined) put.str(w, NFTA_RULE.TABLE, table);
        if (chain !== undefined) put.str(w, NFTA_RULE.CHAIN, chain);
      },
      NFT_MSG.NEWRULE,
      decodeRule,
      chain !== undefined
        ? `list rules of ${family} ${table} ${chain}`
        : table !== undefined
          ? `list rules of ${family} ${table}`
          : 'list rules',
    );
  }

  /**
   * A consistent snapshot of the ruleset, or of the given tables: read at one generation (read
   * again when a transaction commits meanwhile, as `nft` does). Anonymous sets are inlined into
   * the lookups that use them (`lookup.anonymous`), so a rule carries everything needed to write
   * it again.
   */
  async listRuleset(options: { tables?: readonly NftTableRef[] } = {}): Promise<NftRuleset> {
    for (let attempt = 0; ; attempt++) {
      const before = await this.generation();
      const result = await this.#readRuleset(options.tables);
      const after = await this.generation();
      if (before.id === after.id || attempt >= 9) return { ...result, generation: before.id };
      this.#logger.debug(
        { before: before.id, after: after.id },
        'ruleset changed while reading; reading again',
      );
    }
  }

  async #readRuleset(only: readonly NftTableRef[] | undefined): Promise<Omit<NftRuleset, 'generation'>> {
    const allTables = await this.listTables();
    const tables =
      only === undefined
        ? allTables
        : allTables.filter((t) => only.some((o) => o.family === t.family && o.name === t.name));
    let chains: NftChain[];
    let sets: NftSet[];
    let rules: NftRule[];
    if (only === undefined) {
      [chains, sets, rules] = await Promise.all([this.listChains(), this.listSets(), this.listRules()]);
    } else {
      const parts = await Promise.all(
        tables.map((t) =>
          Promise.all([
            this.listChains(t.family, t.name),
            this.listSets(t.family, t.name),
            this.listRules(t.family, t.name),
          ]),
        ),
      );
      chains = parts.flatMap((p) => p[0]);
      sets = parts.flatMap((p) => p[1]);
      rules = parts.flatMap((p) => p[2]);
    }
    const withElements = await Promise.all(
      sets.map(async (s) => ({ ...s, elements: await this.listElements(s.family, s.table, s.name) })),
    );
    const anonymous = new Map<string, NftSetWithElements>();
    const named: NftSetWithElements[] = [];
    for (const s of withElements) {
      if (s.flags & NFT_SET_F.ANONYMOUS) anonymous.set(`${s.family}\0${s.table}\0${s.name}`, s);
      else named.push(s);
    }
    for (const rule of rules) {
      if (!rule.expressions.some((e) => e.type === 'lookup')) continue;
      rule.expressions = rule.expressions.map((e): NftExpr => {
        if (e.type !== 'lookup') return e;
        const anon = anonymous.get(`${rule.family}\0${rule.table}\0${e.set}`);
        if (anon === undefined) return e;
        const def: NonNullable<typeof e.anonymous> = {
          flags: anon.flags & ~(NFT_SET_F.ANONYMOUS | NFT_SET_F.CONSTANT),
          keyType: anon.keyType,
          keyLen: anon.keyLen,
          elements: anon.elements,
        };
        if (anon.dataType !== undefined) def.dataType = anon.dataType;
        if (anon.dataLen !== undefined) def.dataLen = anon.dataLen;
        if (anon.concat !== undefined) def.concat = anon.concat;
        return { ...e, anonymous: def };
      });
    }
    const keep = (o: { family: NftFamily; table: string }): boolean =>
      tables.some((t) => t.family === o.family && t.name === o.table);
    return {
      tables,
      chains: chains.filter(keep),
      sets: named.filter(keep),
      rules: rules.filter(keep),
    };
  }

  /**
   * Send a batch as one transaction and wait for the kernel's verdict on every message. With
   * `generation`, the kernel refuses it unless the ruleset is still at that generation
   * (`OPDBUS_ERR_NFT_GENERATION`: another writer committed meanwhile; nothing changed). A
   * refused message fails the whole batch with `OPDBUS_ERR_NFT_REQUEST` naming the message.
   */
  async commit(batch: NftBatch, options: { generation?: number } = {}): Promise<CommitResult> {
    if (this.#closed)
      throw new OpdbusError(
        'OPDBUS_ERR_NETLINK_CLOSED',
        'The nftables client was closed; cannot commit a batch.',
      );
    if (batch.length === 0) return { messages: 0, bytes: 0 };
    const socket = (this.#batchSocket ??= NetlinkSocket.open(NETLINK.NETFILTER, {
      ...(this.#netns === undefined ? {} : { netns: this.#netns }),
      logger: this.#logger,
    }));
    const seq = this.#seq;
    this.#seq = (this.#seq + batch.length + 3) % 0x3fffffff;
    const encoded = batch.encode(seq, options.generation);
    // One datagram: the send buffer must hold it, the receive buffer every acknowledgement.
    socket.setBufferSizes({
      send: Math.max(1 << 20, encoded.buffer.length + 65536),
      receive: Math.max(4 << 20, encoded.messages.length * 1024),
    });
    const bySeq = new Map(encoded.messages.map((m, index) => [m.seq, { ...m, index }]));
    const answered = new Set<number>();
    const failures: { seq: number; errno: number; extack: string | undefined }[] = [];
    let batchError: { errno: number; extack: string | undefined } | undefined;
    const onMessage = (buf: Buffer, off: number, len: number): void => {
      if (hu16(buf, off + 4) !== NLMSG.ERROR) return;
      const s = hu32(buf, off + 8);
      const errno = len >= 20 ? -hs32(buf, off + 16) : 71;
      const flags = hu16(buf, off + 6);
      if (s === encoded.beginSeq) {
        if (errno !== 0) batchError = { errno, extack: extack(buf, off, len, flags) };
        return;
      }
      if (!bySeq.has(s)) return;
      answered.add(s);
      if (errno !== 0) failures.push({ seq: s, errno, extack: extack(buf, off, len, flags) });
    };
    socket.send(encoded.buffer);
    // The kernel processes the batch inside sendmsg(2): the answers are queued already.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const result = socket.drain(onMessage);
      if (result === 'overrun')
        throw new OpdbusError(
          'OPDBUS_ERR_NFT_BATCH',
          `The kernel dropped its answers to an nftables batch of ${encoded.messages.length} message(s) (ENOBUFS); whether it was committed is unknown. Read the ruleset again.`,
          { data: { errno: 'ENOBUFS', errnoNumber: ENOBUFS, messages: encoded.messages.length } },
        );
      if (batchError !== undefined || failures.length > 0 || answered.size === bySeq.size) break;
      if (result === 'empty') {
        if (Date.now() > deadline)
          throw new OpdbusError(
            'OPDBUS_ERR_NFT_BATCH',
            `The kernel answered ${answered.size} of the ${bySeq.size} message(s) of an nftables batch; whether it was committed is unknown. Read the ruleset again.`,
            { data: { answered: answered.size, messages: bySeq.size } },
          );
        await new Promise<void>((resolve) => socket.watch(resolve, true));
      }
    }
    socket.ref(false);
    const where = this.netns === undefined ? '' : ` in network namespace "${this.netns}"`;
    if (batchError !== undefined) {
      if (batchError.errno === ERESTART)
        throw new OpdbusError(
          'OPDBUS_ERR_NFT_GENERATION',
          `The nftables ruleset${where} changed after it was read (generation ${options.generation ?? '?'} is no longer current): another writer committed a transaction. The batch of ${bySeq.size} message(s) was refused and nothing was changed; read the ruleset again and retry.`,
          { data: { generation: options.generation, errno: 'ERESTART', errnoNumber: ERESTART } },
        );
      const { name, message } = errnoInfo(batchError.errno);
      throw new OpdbusError(
        'OPDBUS_ERR_NFT_REQUEST',
        `The kernel refused the nftables batch${where}: ${name} (${batchError.errno}): ${message}${batchError.extack ? `; the kernel says: ${batchError.extack}` : ''}. Nothing was changed.`,
        {
          data: {
            request: 'NFNL_MSG_BATCH',
            errno: name,
            errnoNumber: batchError.errno,
            ...(batchError.extack ? { extack: batchError.extack } : {}),
          },
        },
      );
    }
    if (failures.length > 0) {
      failures.sort((a, b) => a.seq - b.seq);
      const first = failures[0]!;
      const m = bySeq.get(first.seq)!;
      const { name, message } = errnoInfo(first.errno);
      const others =
        failures.length > 1 ? ` (${failures.length - 1} more message(s) of the batch were refused too)` : '';
      throw new OpdbusError(
        'OPDBUS_ERR_NFT_REQUEST',
        `${messageName(m.message.msg)} (${m.message.description})${where}, message ${m.index + 1} of ${bySeq.size} of the batch, failed: ${name} (${first.errno}): ${message}${first.extack ? `; the kernel says: ${first.extack}` : ''}${others}. The batch was not applied; nothing was changed.`,
        {
          data: {
            request: messageName(m.message.msg),
            description: m.message.description,
            errno: name,
            errnoNumber: first.errno,
            index: m.index,
            ...(first.extack ? { extack: first.extack } : {}),
            ...(this.netns === undefined ? {} : { netns: this.netns }),
          },
        },
      );
    }
    this.#logger.debug({ messages: bySeq.size, bytes: encoded.buffer.length }, 'nftables batch committed');
    return { messages: bySeq.size, bytes: encoded.buffer.length };
  }

  /** Close the sockets. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
    this.#batchSocket?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The extended-ack text of an NLMSG_ERROR, if any. */
function extack(buf: Buffer, off: number, len: number, flags: number): string | undefined {
  if ((flags & NLM_F.ACK_TLVS) === 0) return undefined;
  const origLen = (flags & NLM_F.CAPPED) !== 0 ? 16 : hu32(buf, off + 20);
  const tlvStart = off + 20 + ((origLen + 3) & ~3);
  let text: string | undefined;
  forEachAttr(buf, tlvStart, off + len, (t, s, e) => {
    if (t === NLMSGERR_ATTR.MSG) text = str(buf, s, e);
  });
  return text;
}
