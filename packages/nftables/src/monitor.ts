import { EventEmitter } from 'node:events';
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { NetlinkSocket, constants, type NetnsTarget } from '@opdbus/netlink';
import {
  NFNLGRP_NFTABLES,
  NFNL_SUBSYS_NFTABLES,
  NFTA_RULE,
  NFTA_SET_ELEM_LIST,
  NFT_MSG,
} from './constants.js';
import { be64, forEachAttr, hu16, str } from './tlv.js';
import { decodeChain, decodeGeneration, decodeSet, decodeTable, familyName, type NftFamily } from './wire.js';

const { NETLINK } = constants;

/** An nftables change notification (one per object the transaction touched). */
export type NftObjectEvent = {
  type: 'table' | 'chain' | 'set' | 'element' | 'rule';
  action: 'new' | 'delete';
  family: NftFamily;
  table: string;
  /** The chain, set or (for a rule) chain the object is or belongs to. */
  name?: string;
  /** A rule's handle. */
  handle?: number;
};

/** What an {@link NftMonitor} emits. */
export type NftMonitorEvent =
  | NftObjectEvent
  /** The end of a committed transaction: the new generation, and who committed it. */
  | { type: 'generation'; id: number; pid?: number; processName?: string }
  /** The kernel dropped notifications (ENOBUFS): read the ruleset again. */
  | { type: 'overrun' };

/** Options of {@link NftMonitor.open}. */
export interface NftMonitorOptions {
  netns?: NetnsTarget;
  /** Socket receive buffer in bytes (default 4 MiB). */
  receiveBufferSize?: number;
  logger?: Logger;
}

/**
 * Follows the nftables multicast group (NFNLGRP_NFTABLES), as `nft monitor` does: an event per
 * table, chain, set, element and rule a transaction created or deleted, then a `generation`
 * event when the transaction is complete. Emits `event` ({@link NftMonitorEvent}).
 */
export class NftMonitor extends EventEmitter<{ event: [NftMonitorEvent]; error: [Error] }> {
  readonly #socket: NetlinkSocket;
  #closed = false;

  private constructor(socket: NetlinkSocket) {
    super();
    this.#socket = socket;
  }

  /** Join the nftables group in `options.netns` and start emitting. */
  static open(options: NftMonitorOptions = {}): NftMonitor {
    const socket = NetlinkSocket.open(NETLINK.NETFILTER, {
      ...(options.netns === undefined ? {} : { netns: options.netns }),
      receiveBufferSize: options.receiveBufferSize ?? 4 << 20,
      groups: [NFNLGRP_NFTABLES],
      logger: options.logger ?? silentLogger,
    });
    const monitor = new NftMonitor(socket);
    socket.watch(() => monitor.#read(), false);
    return monitor;
  }

  #read(): void {
    if (this.#closed) return;
    try {
      const result = this.#socket.drain((buf, off, len) => {
        const event = decodeEvent(buf, off, len);
        if (event !== undefined) this.emit('event', event);
      });
      if (result === 'overrun') this.emit('event', { type: 'overrun' });
    } catch (err) {
      this.emit(
        'error',
        err instanceof OpdbusError
          ? err
          : new OpdbusError('OPDBUS_ERR_NETLINK_SOCKET', (err as Error).message, { cause: err }),
      );
    }
  }

  /** Stop following. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }
}

function decodeEvent(buf: Buffer, off: number, len: number): NftMonitorEvent | undefined {
  const type = hu16(buf, off + 4);
  if (type >> 8 !== NFNL_SUBSYS_NFTABLES) return undefined;
  const msg = type & 0xff;
  let family: NftFamily;
  try {
    family = familyName(buf[off + 16]!);
  } catch {
    if (msg !== NFT_MSG.NEWGEN) return undefined;
    family = 'inet';
  }
  switch (msg) {
    case NFT_MSG.NEWGEN: {
      const g = decodeGeneration(buf, off, len);
      return { type: 'generation', ...g };
    }
    case NFT_MSG.NEWTABLE:
    case NFT_MSG.DELTABLE: {
      const t = decodeTable(buf, off, len);
      return { type: 'table', action: msg === NFT_MSG.NEWTABLE ? 'new' : 'delete', family, table: t.name };
    }
    case NFT_MSG.NEWCHAIN:
    case NFT_MSG.DELCHAIN: {
      const c = decodeChain(buf, off, len);
      return {
        type: 'chain',
        action: msg === NFT_MSG.NEWCHAIN ? 'new' : 'delete',
        family,
        table: c.table,
        name: c.name,
      };
    }
    case NFT_MSG.NEWSET:
    case NFT_MSG.DELSET: {
      const s = decodeSet(buf, off, len);
      return {
        type: 'set',
        action: msg === NFT_MSG.NEWSET ? 'new' : 'delete',
        family,
        table: s.table,
        name: s.name,
      };
    }
    case NFT_MSG.NEWSETELEM:
    case NFT_MSG.DELSETELEM: {
      let table = '';
      let name = '';
      forEachAttr(buf, off + 20, off + len, (t, s, e) => {
        if (t === NFTA_SET_ELEM_LIST.TABLE) table = str(buf, s, e);
        else if (t === NFTA_SET_ELEM_LIST.SET) name = str(buf, s, e);
      });
      return { type: 'element', action: msg === NFT_MSG.NEWSETELEM ? 'new' : 'delete', family, table, name };
    }
    case NFT_MSG.NEWRULE:
    case NFT_MSG.DELRULE: {
      let table = '';
      let name = '';
      let handle = 0;
      forEachAttr(buf, off + 20, off + len, (t, s, e) => {
        if (t === NFTA_RULE.TABLE) table = str(buf, s, e);
        else if (t === NFTA_RULE.CHAIN) name = str(buf, s, e);
        else if (t === NFTA_RULE.HANDLE) handle = be64(buf, s);
      });
      return {
        type: 'rule',
        action: msg === NFT_MSG.NEWRULE ? 'new' : 'delete',
        family,
        table,
        name,
        handle,
      };
    }
    default:
      return undefined;
  }
}
