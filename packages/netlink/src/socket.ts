import { closeSync } from 'node:fs';
import { OpdbusError, silentLogger, type Logger, type NetnsRunner } from '@opdbus/core';
import { NLMSGERR_ATTR, NLM_F, NLMSG, NETLINK_OPT, SO, SOL_NETLINK, SOL_SOCKET } from './constants.js';
import { NLMSG_HDRLEN, Writer, beginMessage, endMessage, rd } from './codec.js';
import { errnoInfo, requestError, socketError } from './errors.js';
import { native, type PollHandle } from './native.js';
import { Netns } from './netns.js';

/** Where a socket lives: the caller's namespace (undefined), a namespace name/path, or an open runner. */
export type NetnsTarget = string | NetnsRunner | undefined;

/** Options of {@link NetlinkSocket.open}. */
export interface NetlinkSocketOptions {
  /** Create the socket inside this network namespace (a name under /run/netns, a path, `pid:N`, or a runner). */
  netns?: NetnsTarget;
  /**
   * Receive buffer size in bytes (SO_RCVBUFFORCE when root, else SO_RCVBUF, which the kernel
   * caps at net.core.rmem_max). Default: 4 MiB for request sockets.
   */
  receiveBufferSize?: number;
  /** Multicast groups to join (bit numbers, e.g. RTNLGRP.LINK). */
  groups?: readonly number[];
  logger?: Logger;
}

const ENOBUFS = 105;

/**
 * Run `fn` inside a namespace given by name/path/runner (or here when undefined). A name or path
 * is opened and closed again; the sockets created inside stay bound to the namespace.
 */
export function inNetns<T>(target: NetnsTarget, fn: () => T): { value: T; name: string | undefined } {
  if (target === undefined) return { value: fn(), name: undefined };
  if (typeof target !== 'string') return { value: target.run(fn), name: target.name };
  const ns = Netns.open(target);
  try {
    return { value: ns.run(fn), name: target };
  } finally {
    ns.close();
  }
}

/**
 * Userspace buffers for reading, in bytes. A read fills a buffer with as many queued datagrams as
 * fit, so a larger buffer saves system calls (and event-loop turns) only when much is queued, and
 * stays resident: 256 KiB reads a dump of 1000 links in a dozen rounds. The kernel-side queue is
 * the socket's receive buffer (`receiveBufferSize`), which is kernel memory, not the process's.
 */
const READ_BUFFER_SIZE = 256 << 10;

/**
 * The process-wide receive buffer: parsing is synchronous, so one buffer serves every socket.
 * Allocated at the first read (a process that only dumps never needs it).
 */
let rxBuffer: Buffer | undefined;
const rxStatus = new Int32Array(2);

/**
 * A raw AF_NETLINK socket (non-blocking) bound to the namespace it was created in, with batched
 * reads into a shared buffer and readiness polling on the event loop.
 */
export class NetlinkSocket {
  /** The socket's file descriptor. */
  readonly fd: number;
  /** The port id the kernel assigned (nl_pid). */
  readonly portId: number;
  /** The namespace it was created in, when not the caller's. */
  readonly netns: string | undefined;
  readonly protocol: number;
  readonly logger: Logger;
  #poll: PollHandle | undefined;
  #closed = false;
  #onReadable: (() => void) | undefined;

  private constructor(
    fd: number,
    portId: number,
    protocol: number,
    netns: string | undefined,
    logger: Logger,
  ) {
    this.fd = fd;
    this.portId = portId;
    this.protocol = protocol;
    this.netns = netns;
    this.logger = logger;
  }

  /** Open a socket of `protocol` (NETLINK.ROUTE, NETLINK.GENERIC), inside `options.netns` when given. */
  static open(protocol: number, options: NetlinkSocketOptions = {}): NetlinkSocket {
    const sys = native();
    const netnsName = typeof options.netns === 'string' ? options.netns : options.netns?.name;
    let opened: { value: [number, number]; name: string | undefined };
    try {
      opened = inNetns(options.netns, () => sys.nlSocket(protocol));
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      throw socketError(`Opening a netlink socket (protocol ${protocol})`, err, netnsName);
    }
    const [fd, portId] = opened.value;
    const sock = new NetlinkSocket(fd, portId, protocol, opened.name, options.logger ?? silentLogger);
    try {
      const rcvbuf = options.receiveBufferSize ?? 4 << 20;
      try {
        sys.setsockoptInt(fd, SOL_SOCKET, SO.RCVBUFFORCE, rcvbuf);
      } catch {
        // Not root (CAP_NET_ADMIN): fall back to the capped option.
        sys.setsockoptInt(fd, SOL_SOCKET, SO.RCVBUF, rcvbuf);
      }
      try {
        sys.setsockoptInt(fd, SOL_SOCKET, SO.SNDBUFFORCE, 1 << 20);
      } catch {
        sys.setsockoptInt(fd, SOL_SOCKET, SO.SNDBUF, 1 << 20);
      }
      // Errors carry only the header of the failed request, plus the kernel's text (extended ack).
      for (const opt of [NETLINK_OPT.CAP_ACK, NETLINK_OPT.EXT_ACK, NETLINK_OPT.GET_STRICT_CHK]) {
        try {
          sys.setsockoptInt(fd, SOL_NETLINK, opt, 1);
        } catch (err) {
          sock.logger.debug({ err, opt }, 'netlink socket option not supported by this kernel');
        }
      }
      for (const group of options.groups ?? []) {
        sys.setsockoptInt(fd, SOL_NETLINK, NETLINK_OPT.ADD_MEMBERSHIP, group);
      }
    } catch (err) {
      sock.close();
      throw socketError('Configuring a netlink socket', err, opened.name);
    }
    return sock;
  }

  /**
   * Grow the socket's send and/or receive buffer, in bytes (SO_SNDBUFFORCE / SO_RCVBUFFORCE as
   * root, else SO_SNDBUF / SO_RCVBUF, which the kernel caps at net.core.wmem_max / rmem_max). A
   * datagram larger than the send buffer is refused with EMSGSIZE, so a caller that sends one
   * large batch (an nftables transaction) grows it first.
   */
  setBufferSizes(sizes: { send?: number; receive?: number }): void {
    const sys = native();
    const set = (force: number, plain: number, bytes: number): void => {
      try {
        sys.setsockoptInt(this.fd, SOL_SOCKET, force, bytes);
      } catch {
        sys.setsockoptInt(this.fd, SOL_SOCKET, plain, bytes);
      }
    };
    try {
      if (sizes.send !== undefined) set(SO.SNDBUFFORCE, SO.SNDBUF, sizes.send);
      if (sizes.receive !== undefined) set(SO.RCVBUFFORCE, SO.RCVBUF, sizes.receive);
    } catch (err) {
      throw socketError('Setting the buffer sizes of a netlink socket', err, this.netns);
    }
  }

  /** Whether {@link NetlinkSocket.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Send `buffer` as one datagram (the kernel processes every message in it, in order). */
  send(buffer: Buffer): void {
    try {
      native().nlSend(this.fd, buffer, buffer.length);
    } catch (err) {
      throw socketError('Sending a netlink request', err, this.netns);
    }
  }

  /**
   * Read what is queued and hand each whole message to `onMessage(buf, off, len)`. Returns
   * `'empty'` when nothing was queued, `'read'` when messages were handled, `'overrun'` when the
   * kernel reported ENOBUFS (messages were lost).
   */
  drain(onMessage: (buf: Buffer, off: number, len: number) => void): 'empty' | 'read' | 'overrun' {
    const sys = native();
    let any = false;
    for (;;) {
      const buf = (rxBuffer ??= Buffer.allocUnsafe(READ_BUFFER_SIZE));
      const end = sys.nlRecv(this.fd, buf, 0, rxStatus);
      let off = 0;
      while (off + NLMSG_HDRLEN <= end) {
        const len = rd.u32(buf, off);
        if (len < NLMSG_HDRLEN || off + len > end) break;
        onMessage(buf, off, len);
        off += (len + 3) & ~3;
      }
      if (end > 0) any = true;
      const errno = rxStatus[0]!;
      const needed = rxStatus[1]!;
      if (errno === ENOBUFS) return 'overrun';
      if (errno !== 0) {
        const { name } = errnoInfo(errno);
        throw socketError(
          'Reading from a netlink socket',
          Object.assign(new Error(`recv: ${name}`), { code: name, errno }),
          this.netns,
        );
      }
      if (needed > 0) {
        // A datagram did not fit in what was left of the buffer. When messages were read, they
        // are handled: read again from the start. Only a datagram larger than the whole buffer
        // grows it (the buffer stays as large as the largest datagram, not the queue).
        if (end === 0 || needed > buf.length) {
          let size = buf.length * 2;
          while (size < needed) size *= 2;
          rxBuffer = Buffer.allocUnsafe(size);
        }
        continue;
      }
      // The buffer filled up: more may be queued.
      if (end + 65536 > buf.length && end > 0) continue;
      return any ? 'read' : 'empty';
    }
  }

  /** Call `fn` whenever the socket becomes readable; `ref` keeps the process alive meanwhile. */
  watch(fn: () => void, ref: boolean): void {
    this.#onReadable = fn;
    if (this.#poll === undefined && !this.#closed) {
      this.#poll = native().pollStart(this.fd, (errno) => {
        // libuv reports POLLERR (a pending socket error such as ENOBUFS) as EBADF; the next
        // read returns the real error.
        if (errno !== 0) this.logger.debug({ errno: errnoInfo(errno).name }, 'netlink socket poll error');
        this.#onReadable?.();
      });
    }
    if (this.#poll !== undefined) native().pollRef(this.#poll, ref);
  }

  /** Keep (or stop keeping) the process alive while watching. */
  ref(ref: boolean): void {
    if (this.#poll !== undefined) native().pollRef(this.#poll, ref);
  }

  /** Stop watching and close the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onReadable = undefined;
    if (this.#poll !== undefined) native().pollStop(this.#poll);
    this.#poll = undefined;
    closeSync(this.fd);
  }
}

/** A message handed to a request's decoder: the buffer, the message offset and length, its type and flags. */
export type MessageDecoder<T> = (
  buf: Buffer,
  off: number,
  len: number,
  type: number,
  flags: number,
) => T | undefined;

/** One request for {@link NetlinkConnection.request}. */
export interface RequestSpec<T> {
  /** nlmsg_type. */
  type: number;
  /** Flags besides NLM_F_REQUEST (and NLM_F_ACK, added for non-dumps). */
  flags?: number;
  /** A dump (NLM_F_DUMP): collect every reply until NLMSG_DONE. */
  dump?: boolean;
  /** Write the payload after the nlmsghdr. */
  body: (w: Writer) => void;
  /** Turn a reply into a value (undefined: skip it). */
  decode?: MessageDecoder<T>;
  /** The message type's name for errors, e.g. `RTM_NEWLINK`. */
  request: string;
  /** What is being asked, for errors, e.g. `create link br0 (bridge)`. */
  description: string;
}

interface Pending {
  seq: number;
  start: number;
  end: number;
  dump: boolean;
  spec: RequestSpec<unknown>;
  results: unknown[];
  resolve: (results: unknown[]) => void;
  reject: (err: Error) => void;
  /** Dumps keep their bytes to be re-sent when interrupted (NLM_F_DUMP_INTR). */
  bytes?: Buffer;
  interrupted?: boolean;
  retries: number;
}

/** Options of {@link NetlinkConnection}. */
export interface ConnectionOptions extends NetlinkSocketOptions {
  /** Largest datagram of pipelined requests (default 64 KiB). */
  maxBatchBytes?: number;
}

/**
 * Request/reply over a netlink socket, pipelined: every request made in the same tick (or while
 * earlier ones are in flight) is written into one buffer and sent in as few sendmsg(2) calls as
 * possible — like `ip -batch` — and acknowledgements are matched back by sequence number. The
 * kernel answers rtnetlink requests inside sendmsg, so replies are usually read at once, without
 * waiting for the event loop. A dump ends a batch (one dump at a time per socket).
 */
export class NetlinkConnection {
  readonly socket: NetlinkSocket;
  readonly #out = new Writer(16384);
  readonly #queue: Pending[] = [];
  #next = 0;
  readonly #inflight = new Map<number, Pending>();
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #scheduled = false;
  #waiting = false;
  readonly #maxBatch: number;

  constructor(protocol: number, options: ConnectionOptions = {}) {
    this.socket = NetlinkSocket.open(protocol, options);
    this.#maxBatch = options.maxBatchBytes ?? 65536;
  }

  /** The namespace the connection acts in, when not the caller's. */
  get netns(): string | undefined {
    return this.socket.netns;
  }

  /** Send a request; resolves with the decoded replies (a dump's messages, or a reply before the ack). */
  request<T>(spec: RequestSpec<T>): Promise<T[]> {
    if (this.socket.closed) {
      return Promise.reject(
        new OpdbusError(
          'OPDBUS_ERR_NETLINK_CLOSED',
          `The netlink connection was closed; cannot ${spec.description}.`,
        ),
      );
    }
    return new Promise<T[]>((resolve, reject) => {
      const seq = (this.#seq = (this.#seq + 1) >>> 0 || 1);
      const dump = spec.dump === true;
      const flags = NLM_F.REQUEST | (dump ? NLM_F.DUMP : NLM_F.ACK) | (spec.flags ?? 0);
      const start = beginMessage(this.#out, spec.type, flags, seq, 0);
      try {
        spec.body(this.#out);
      } catch (err) {
        this.#out.pos = start;
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      endMessage(this.#out, start);
      const pending: Pending = {
        seq,
        start,
        end: this.#out.pos,
        dump,
        spec: spec,
        results: [],
        resolve: resolve as (results: unknown[]) => void,
        reject,
        retries: 0,
      };
      if (dump) pending.bytes = Buffer.from(this.#out.buf.subarray(start, this.#out.pos));
      this.#queue.push(pending);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#waiting) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    try {
      for (;;) {
        if (this.socket.closed) return;
        if (this.#inflight.size === 0) {
          if (this.#next >= this.#queue.length) {
            this.#queue.length = 0;
            this.#next = 0;
            this.#out.reset();
            this.#idle();
            return;
          }
          this.#sendBatch();
          continue;
        }
        const result = this.socket.drain((buf, off, len) => this.#dispatch(buf, off, len));
        if (result === 'overrun') this.#overrun();
        else if (result === 'empty') {
          this.#wait();
          return;
        }
      }
    } catch (err) {
      this.#failAll(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #sendBatch(): void {
    const first = this.#queue[this.#next]!;
    let last = this.#next;
    if (first.bytes !== undefined && first.retries > 0) {
      // A dump being re-sent: its bytes are no longer in the writer.
      this.#inflight.set(first.seq, first);
      this.#next++;
      this.#sendOrFail([first], first.bytes);
      return;
    }
    const batch: Pending[] = [first];
    while (!first.dump && last + 1 < this.#queue.length) {
      const candidate = this.#queue[last + 1]!;
      if (candidate.end - first.start > this.#maxBatch) break;
      batch.push(candidate);
      last++;
      if (candidate.dump) break;
    }
    for (const p of batch) this.#inflight.set(p.seq, p);
    this.#next = last + 1;
    this.#sendOrFail(batch, this.#out.buf.subarray(first.start, this.#queue[last]!.end));
  }

  #sendOrFail(batch: Pending[], bytes: Buffer): void {
    try {
      this.socket.send(bytes);
    } catch (err) {
      for (const p of batch) {
        this.#inflight.delete(p.seq);
        p.reject(err as Error);
      }
    }
  }

  #dispatch(buf: Buffer, off: number, len: number): void {
    const type = rd.u16(buf, off + 4);
    const flags = rd.u16(buf, off + 6);
    const seq = rd.u32(buf, off + 8);
    const pending = this.#inflight.get(seq);
    if (pending === undefined) return; // a reply to a request we gave up on, or a stray message
    if (type === NLMSG.ERROR) {
      const error = len >= NLMSG_HDRLEN + 4 ? rd.s32(buf, off + NLMSG_HDRLEN) : -71; // EPROTO
      if (error === 0) {
        this.#inflight.delete(seq);
        pending.resolve(pending.results);
        return;
      }
      this.#inflight.delete(seq);
      pending.reject(requestError(this.#identity(pending), -error, extack(buf, off, len, flags)));
      return;
    }
    if (type === NLMSG.DONE) {
      const error = len >= NLMSG_HDRLEN + 4 ? rd.s32(buf, off + NLMSG_HDRLEN) : 0;
      this.#inflight.delete(seq);
      if (error < 0) {
        pending.reject(requestError(this.#identity(pending), -error, extack(buf, off, len, flags)));
      } else if ((pending.interrupted || (flags & NLM_F.DUMP_INTR) !== 0) && pending.retries < 5) {
        // The dump was interrupted by concurrent changes (NLM_F_DUMP_INTR): its view may be
        // inconsistent, so dump again.
        pending.retries++;
        pending.interrupted = false;
        pending.results = [];
        this.#queue.splice(this.#next, 0, pending);
      } else pending.resolve(pending.results);
      return;
    }
    if (type === NLMSG.NOOP || type === NLMSG.OVERRUN) return;
    if ((flags & NLM_F.DUMP_INTR) !== 0) pending.interrupted = true;
    const decode = pending.spec.decode;
    if (decode === undefined) return;
    try {
      const value = decode(buf, off, len, type, flags);
      if (value !== undefined) pending.results.push(value);
    } catch (err) {
      this.#inflight.delete(seq);
      pending.reject(
        new OpdbusError(
          'OPDBUS_ERR_NETLINK_PROTOCOL',
          `Could not parse the reply to ${pending.spec.request} (${pending.spec.description}): ${(err as Error).message}.`,
          { data: { request: pending.spec.request, description: pending.spec.description }, cause: err },
        ),
      );
    }
  }

  #identity(p: Pending): { request: string; description: string; netns: string | undefined } {
    return { request: p.spec.request, description: p.spec.description, netns: this.socket.netns };
  }

  #overrun(): void {
    // Replies were dropped: the outcome of the requests in flight is unknown.
    const lost = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const p of lost) {
      p.reject(
        new OpdbusError(
          'OPDBUS_ERR_NETLINK_OVERRUN',
          `The kernel dropped replies (ENOBUFS: the receive buffer overflowed); the outcome of ${p.spec.request} (${p.spec.description}) is unknown. Query the state again.`,
          {
            data: {
              request: p.spec.request,
              description: p.spec.description,
              errno: 'ENOBUFS',
              errnoNumber: ENOBUFS,
            },
          },
        ),
      );
    }
  }

  #wait(): void {
    this.#waiting = true;
    this.socket.watch(() => {
      this.#waiting = false;
      this.#pump();
    }, true);
  }

  #idle(): void {
    if (this.#waiting) return;
    this.socket.ref(false);
  }

  #failAll(err: Error): void {
    const all = [...this.#inflight.values(), ...this.#queue.slice(this.#next)];
    this.#inflight.clear();
    this.#queue.length = 0;
    this.#next = 0;
    this.#out.reset();
    for (const p of all) p.reject(err);
  }

  /** Close the socket; requests still waiting are rejected with OPDBUS_ERR_NETLINK_CLOSED. */
  close(): void {
    if (this.socket.closed) return;
    this.socket.close();
    // The error only when a request waits: making one costs a stack trace, at every close.
    if (this.#inflight.size === 0 && this.#next >= this.#queue.length) return;
    this.#failAll(
      new OpdbusError(
        'OPDBUS_ERR_NETLINK_CLOSED',
        'The netlink connection was closed before the kernel replied.',
      ),
    );
  }
}

let dumpSeq = Math.floor(Math.random() * 0x7fffffff);

/**
 * Datagrams a dump reads on the calling thread before it goes on in a worker thread: the kernel
 * sends a dump's end in a datagram of its own, so two hold a small dump whole.
 */
const SYNC_DUMP_READS = 2;

/**
 * Dumps read in worker threads, each on its own socket (up to `max`), so that several dumps —
 * links, addresses, routes — are built by the kernel in parallel on several CPUs while the main
 * thread decodes. The kernel builds dump replies inside recvmsg(2), on the thread that reads.
 * A dump's first two datagrams are read on the calling thread: a small dump ends there, and a
 * process that only reads a namespace with a few links starts no thread pool.
 */
export class ParallelDumps {
  readonly #protocol: number;
  readonly #options: NetlinkSocketOptions;
  readonly #max: number;
  readonly #idle: { socket: NetlinkSocket; buffer: Buffer }[] = [];
  readonly #waiters: ((entry: { socket: NetlinkSocket; buffer: Buffer }) => void)[] = [];
  #count = 0;
  #closed = false;

  constructor(protocol: number, options: NetlinkSocketOptions, max = 3) {
    this.#protocol = protocol;
    this.#options = options;
    this.#max = max;
  }

  async #acquire(): Promise<{ socket: NetlinkSocket; buffer: Buffer }> {
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle;
    if (this.#count < this.#max) {
      this.#count++;
      try {
        return {
          socket: NetlinkSocket.open(this.#protocol, this.#options),
          buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
        };
      } catch (err) {
        this.#count--;
        throw err;
      }
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #release(entry: { socket: NetlinkSocket; buffer: Buffer }): void {
    if (this.#closed) {
      entry.socket.close();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(entry);
    else this.#idle.push(entry);
  }

  /** Run a dump (`spec.dump` is implied) and resolve with its decoded messages. */
  async dump<T>(spec: RequestSpec<T>): Promise<T[]> {
    if (this.#closed) {
      throw new OpdbusError(
        'OPDBUS_ERR_NETLINK_CLOSED',
        `The netlink client was closed; cannot ${spec.description}.`,
      );
    }
    const entry = await this.#acquire();
    try {
      for (let attempt = 0; ; attempt++) {
        const { results, interrupted } = await this.#once(entry, spec);
        // NLM_F_DUMP_INTR: the dump crossed a change and may be inconsistent; dump again.
        if (!interrupted || attempt >= 5) return results;
      }
    } finally {
      this.#release(entry);
    }
  }

  async #once<T>(
    entry: { socket: NetlinkSocket; buffer: Buffer },
    spec: RequestSpec<T>,
  ): Promise<{ results: T[]; interrupted: boolean }> {
    const seq = (dumpSeq = (dumpSeq + 1) >>> 0 || 1);
    const w = new Writer(256);
    const start = beginMessage(w, spec.type, NLM_F.REQUEST | NLM_F.DUMP | (spec.flags ?? 0), seq, 0);
    spec.body(w);
    endMessage(w, start);
    entry.socket.send(w.buf.subarray(0, w.pos));
    const identity = { request: spec.request, description: spec.description, netns: entry.socket.netns };
    const results: T[] = [];
    let interrupted = false;
    for (let round = 0; ; round++) {
      // A small dump (a namespace with a few links: its part, then its end) is read at once, on
      // this thread; a larger one goes on in a worker thread, while this one decodes.
      const [end, done, errno, needed] =
        round === 0
          ? native().nlDumpSync(entry.socket.fd, entry.buffer, 0, seq, SYNC_DUMP_READS)
          : await native().nlDumpAsync(entry.socket.fd, entry.buffer, 0, seq);
      const buf = entry.buffer;
      let off = 0;
      let failure: Error | undefined;
      while (off + NLMSG_HDRLEN <= end) {
        const len = rd.u32(buf, off);
        if (len < NLMSG_HDRLEN || off + len > end) break;
        const type = rd.u16(buf, off + 4);
        const flags = rd.u16(buf, off + 6);
        if (rd.u32(buf, off + 8) === seq && failure === undefined) {
          if ((flags & NLM_F.DUMP_INTR) !== 0) interrupted = true;
          if (type === NLMSG.ERROR || type === NLMSG.DONE) {
            const error = len >= NLMSG_HDRLEN + 4 ? rd.s32(buf, off + NLMSG_HDRLEN) : 0;
            if (error < 0) failure = requestError(identity, -error, extack(buf, off, len, flags));
          } else if (type !== NLMSG.NOOP && type !== NLMSG.OVERRUN && spec.decode !== undefined) {
            try {
              const value = spec.decode(buf, off, len, type, flags);
              if (value !== undefined) results.push(value);
            } catch (err) {
              failure = new OpdbusError(
                'OPDBUS_ERR_NETLINK_PROTOCOL',
                `Could not parse the reply to ${spec.request} (${spec.description}): ${(err as Error).message}.`,
                { data: { request: spec.request, description: spec.description }, cause: err },
              );
            }
          }
        }
        off += (len + 3) & ~3;
      }
      if (failure !== undefined) {
        if (!done) await this.#drainRest(entry, seq);
        throw failure;
      }
      if (errno !== 0 && needed === 0) {
        const { name } = errnoInfo(errno);
        throw socketError(
          `Reading the dump for ${spec.description}`,
          Object.assign(new Error(`recv: ${name}`), { code: name, errno }),
          entry.socket.netns,
        );
      }
      if (done) return { results, interrupted };
      if (needed > 0) {
        let size = entry.buffer.length * 2;
        while (size < needed + 65536) size *= 2;
        entry.buffer = Buffer.allocUnsafe(size);
      }
    }
  }

  /** Read and drop the rest of a dump that failed half way, so the socket can be reused. */
  async #drainRest(entry: { socket: NetlinkSocket; buffer: Buffer }, seq: number): Promise<void> {
    for (;;) {
      const [, done, errno] = await native().nlDumpAsync(entry.socket.fd, entry.buffer, 0, seq);
      if (done || errno !== 0) return;
    }
  }

  /** Close the sockets (those in use once their dump ends). */
  close(): void {
    this.#closed = true;
    for (const entry of this.#idle.splice(0)) entry.socket.close();
  }
}

/** The extended-ack message (NLMSGERR_ATTR_MSG) of an error or done message, if any. */
function extack(buf: Buffer, off: number, len: number, flags: number): string | undefined {
  if ((flags & NLM_F.ACK_TLVS) === 0) return undefined;
  let tlv: number;
  if (rd.u16(buf, off + 4) === NLMSG.DONE) tlv = off + NLMSG_HDRLEN + 4;
  else {
    const origLen = (flags & NLM_F.CAPPED) !== 0 ? NLMSG_HDRLEN : rd.u32(buf, off + NLMSG_HDRLEN + 4);
    tlv = off + NLMSG_HDRLEN + 4 + ((origLen + 3) & ~3);
  }
  const end = off + len;
  const parts: string[] = [];
  while (tlv + 4 <= end) {
    const l = rd.u16(buf, tlv);
    const t = rd.u16(buf, tlv + 2);
    if (l < 4 || tlv + l > end) break;
    if (t === NLMSGERR_ATTR.MSG) {
      let e = tlv + l;
      while (e > tlv + 4 && buf[e - 1] === 0) e--;
      parts.push(buf.toString('utf8', tlv + 4, e));
    } else if (t === NLMSGERR_ATTR.MISS_TYPE && l >= 8) {
      parts.push(`missing attribute ${rd.u32(buf, tlv + 4)}`);
    } else if (t === NLMSGERR_ATTR.OFFS && l >= 8 && parts.length === 0) {
      parts.push(`invalid attribute at offset ${rd.u32(buf, tlv + 4)}`);
    }
    tlv += (l + 3) & ~3;
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}
