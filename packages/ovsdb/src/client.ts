import type { Socket } from 'node:net';
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { parseOvsdbAddress, type OvsdbAddress } from './address.js';
import { Emitter } from './emitter.js';
import { JsonStreamParser } from './jsonStream.js';
import { Monitor, type MonitorMethod, type MonitorOptions, type MonitorRequests } from './monitor.js';
import {
  decodeResults,
  encodeOperation,
  type Operation,
  type TableMap,
  type TransactResults,
  type UntypedTables,
} from './operations.js';
import { Database } from './database.js';
import type { RequestOptions } from './requestOptions.js';

export type { RequestOptions } from './requestOptions.js';
import { DatabaseSchema } from './schema.js';
import { openSocket, type OvsdbTlsOptions } from './transport.js';

/** How the client reconnects after losing its connection. */
export interface ReconnectOptions {
  /** First delay before reconnecting (default 100 ms); it doubles after each failed attempt. */
  minBackoffMs?: number;
  /** Longest delay between attempts (default 8 s, ovsdb's own default). */
  maxBackoffMs?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

/** Options of {@link OvsdbClient.connect}. */
export interface OvsdbClientOptions {
  /** `unix:PATH`, `tcp:HOST:PORT` or `ssl:HOST:PORT`. */
  address: string;
  /** TLS settings for `ssl:` (key, cert, ca …). */
  tls?: OvsdbTlsOptions;
  /** pino-shaped logger (default silent). */
  logger?: Logger;
  /**
   * Inactivity probe (ms): after this long without a message from the server the client sends
   * an `echo`; if that stays unanswered for another interval, the connection is considered dead
   * and is closed (and reconnected). 0 disables it. Default 5000, ovsdb-server's own default.
   */
  probeIntervalMs?: number;
  /** Reconnect after losing the connection (default true), re-establishing monitors and locks. */
  reconnect?: boolean | ReconnectOptions;
  /** Bound on opening a connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Default bound on each request (default 0: none; a `wait` may legitimately take long). */
  requestTimeoutMs?: number;
  /** Largest message accepted from the server (default 512 MiB). */
  maxMessageBytes?: number;
  /**
   * Let the process exit while no request is outstanding (the socket is unref'd when idle).
   * Monitors alone then do not keep the process alive. Default false.
   */
  unrefWhenIdle?: boolean;
}

/** The client's connection state. */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** Events of {@link OvsdbClient}. */
export type OvsdbClientEvents = {
  /** The connection was lost (`error` says why); requests outstanding were rejected. */
  disconnect: [error: Error];
  /** Reconnected, and monitors and locks were re-established. */
  reconnect: [attempt: number];
  /** A reconnection attempt failed; the client tries again after `delayMs`. */
  reconnectFailed: [error: Error, attempt: number, delayMs: number];
  /** The lock was granted (`locked` notification, or a `lock` reply that granted it). */
  locked: [lock: string];
  /** Another client stole the lock. */
  stolen: [lock: string];
  /**
   * Asking for a lock again after a reconnect failed: the client does not hold it and is not
   * queued for it until it asks again (`lock`/`waitForLock`). Its holder must stop acting as
   * the lock's owner.
   */
  lockError: [lock: string, error: Error];
  /** The server answered an inactivity probe (`echo`) after `rttMs`. */
  probe: [rttMs: number];
  /** The server sent its own inactivity probe (an `echo` request), and the client answered it. */
  echo: [];
  /** A notification the client does not handle itself. */
  notification: [method: string, params: unknown];
  /** The client closed for good (`close()`, or reconnecting gave up). */
  close: [];
};

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
  cleanup: (() => void) | undefined;
}

interface JsonRpcMessage {
  method?: unknown;
  params?: unknown;
  id?: unknown;
  result?: unknown;
  error?: unknown;
}

/** The state of a lock this client asked for. */
export type LockState = 'waiting' | 'held';

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * An OVSDB client (RFC 7047 and ovsdb-server's extensions) over a unix socket, TCP or TLS.
 *
 * Messages are JSON-RPC 1.0 objects sent back to back; replies are matched by id. The client
 * answers the server's `echo` probes and sends its own ({@link OvsdbClientOptions.probeIntervalMs}).
 * When the connection drops it reconnects with exponential backoff and re-establishes its
 * monitors — resuming `monitor_cond_since` monitors from the last transaction id seen — and the
 * locks it holds or waits for; requests made while it reconnects wait for the connection.
 *
 * @example
 * ```ts
 * const client = await OvsdbClient.connect('unix:/run/openvswitch/db.sock');
 * const [{ rows }] = await client.transact('Open_vSwitch', [
 *   { op: 'select', table: 'Bridge', where: [], columns: ['name'] },
 * ]);
 * await client.close();
 * ```
 */
export class OvsdbClient implements AsyncDisposable {
  /** The address as given. */
  readonly address: string;
  readonly logger: Logger;
  readonly #target: OvsdbAddress;
  readonly #options: OvsdbClientOptions;
  readonly #events: Emitter<OvsdbClientEvents>;
  readonly #pending = new Map<number, Pending>();
  readonly #monitors = new Map<string, Monitor>();
  readonly #locks = new Map<string, LockState>();
  readonly #schemas = new Map<string, Promise<DatabaseSchema>>();
  #socket: Socket | undefined;
  #parser: JsonStreamParser;
  #state: ConnectionState = 'connecting';
  #nextId = 1;
  #nextMonitor = 1;
  #lastReceived = Date.now();
  #probeOutstanding = false;
  #probeSentAt = 0;
  #probeTimer: NodeJS.Timeout | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #connectionWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  #busy = 0;
  #resyncing = false;

  private constructor(options: OvsdbClientOptions) {
    this.address = options.address;
    this.#target = parseOvsdbAddress(options.address);
    this.#options = options;
    this.logger = (options.logger ?? silentLogger).child({ ovsdb: options.address });
    this.#events = new Emitter(() => this.logger);
    this.#parser = new JsonStreamParser(
      options.maxMessageBytes === undefined ? {} : { maxValueBytes: options.maxMessageBytes },
    );
  }

  /**
   * Connect to an OVSDB server. Throws `OPDBUS_ERR_OVSDB_ADDRESS` for a malformed address and
   * `OPDBUS_ERR_OVSDB_CONNECT` when the first connection cannot be made (there is no retry for
   * it; the client reconnects only once it has been connected).
   */
  static async connect(options: OvsdbClientOptions | string): Promise<OvsdbClient> {
    const client = new OvsdbClient(typeof options === 'string' ? { address: options } : options);
    await client.#open();
    return client;
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** True while connected. */
  get connected(): boolean {
    return this.#state === 'connected';
  }

  /** Subscribe to a client event; returns the unsubscribe function. */
  on<K extends keyof OvsdbClientEvents>(
    event: K,
    listener: (...args: OvsdbClientEvents[K]) => void,
  ): () => void {
    return this.#events.on(event, listener);
  }

  /** Subscribe to the next occurrence of a client event. */
  once<K extends keyof OvsdbClientEvents>(
    event: K,
    listener: (...args: OvsdbClientEvents[K]) => void,
  ): () => void {
    return this.#events.once(event, listener);
  }

  // ---------------------------------------------------------------- connection

  async #open(): Promise<void> {
    const socket = await openSocket(this.#target, {
      ...(this.#options.tls === undefined ? {} : { tls: this.#options.tls }),
      timeoutMs: this.#options.connectTimeoutMs ?? 10_000,
    });
    if (this.#state === 'closed') {
      socket.destroy();
      throw this.#closedError();
    }
    this.#attach(socket);
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    this.#parser.reset();
    this.#state = 'connected';
    this.#lastReceived = Date.now();
    this.#probeOutstanding = false;
    socket.on('data', (chunk: Buffer) => this.#onData(socket, chunk));
    socket.on('error', (err) => this.logger.debug({ err }, 'ovsdb socket error'));
    socket.on('close', () => this.#onClose(socket, new Error('the connection was closed')));
    if (this.#options.unrefWhenIdle === true && this.#busy === 0) socket.unref();
    this.#armProbe();
    this.logger.debug('ovsdb connected');
  }

  #armProbe(): void {
    clearInterval(this.#probeTimer);
    const interval = this.#options.probeIntervalMs ?? 5000;
    if (interval <= 0) return;
    this.#probeTimer = setInterval(() => {
      if (this.#state !== 'connected') return;
      if (Date.now() - this.#lastReceived < interval) return;
      if (this.#probeOutstanding) {
        this.logger.warn({ interval }, 'no reply to the inactivity probe; dropping the connection');
        this.#dropConnection(
          new OpdbusError(
            'OPDBUS_ERR_OVSDB_TIMEOUT',
            `The OVSDB server at ${this.address} did not answer an echo probe within ${interval} ms.`,
            { data: { address: this.address, probeIntervalMs: interval } },
          ),
        );
        return;
      }
      this.#probeOutstanding = true;
      this.#probeSentAt = Date.now();
      this.#send({ method: 'echo', params: [], id: `probe-${this.#nextId++}` });
    }, interval);
    this.#probeTimer.unref();
  }

  #dropConnection(error: Error): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#onClose(socket, error);
    socket.destroy();
  }

  #onClose(socket: Socket, error: Error): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    clearInterval(this.#probeTimer);
    if (this.#state === 'closed') return;
    const lost = new OpdbusError(
      'OPDBUS_ERR_OVSDB_DISCONNECTED',
      `The connection to OVSDB at ${this.address} was lost (${error.message})`,
      { data: { address: this.address }, cause: error },
    );
    this.#rejectPending(
      (p) =>
        new OpdbusError(
          'OPDBUS_ERR_OVSDB_DISCONNECTED',
          `The connection to OVSDB at ${this.address} was lost while "${p.method}" was outstanding (${error.message})${p.method === 'transact' ? '; the transaction may or may not have committed' : ''}.`,
          { data: { address: this.address, method: p.method }, cause: error },
        ),
    );
    for (const lock of this.#locks.keys()) this.#locks.set(lock, 'waiting');
    this.logger.info({ err: error }, 'ovsdb connection lost');
    this.#events.emit('disconnect', lost);
    const reconnect = this.#options.reconnect ?? true;
    if (reconnect === false) {
      this.#finish(lost);
      return;
    }
    this.#state = 'reconnecting';
    this.#scheduleReconnect(1, typeof reconnect === 'object' ? reconnect : {});
  }

  #scheduleReconnect(attempt: number, options: ReconnectOptions): void {
    const min = options.minBackoffMs ?? 100;
    const max = options.maxBackoffMs ?? 8000;
    const base = Math.min(max, min * 2 ** (attempt - 1));
    const delay = attempt === 1 ? min : Math.round(base / 2 + (Math.random() * base) / 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state !== 'reconnecting') return;
      openSocket(this.#target, {
        ...(this.#options.tls === undefined ? {} : { tls: this.#options.tls }),
        timeoutMs: this.#options.connectTimeoutMs ?? 10_000,
      }).then(
        (socket) => {
          if (this.#state !== 'reconnecting') {
            socket.destroy();
            return;
          }
          this.#attach(socket);
          this.#resync(attempt).catch((err: unknown) => {
            this.logger.warn({ err }, 'resynchronising after reconnect failed; reconnecting again');
            this.#dropConnection(err instanceof Error ? err : new Error(String(err)));
          });
        },
        (err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err));
          if (this.#state !== 'reconnecting') return;
          if (options.maxAttempts !== undefined && attempt >= options.maxAttempts) {
            this.#finish(
              new OpdbusError(
                'OPDBUS_ERR_OVSDB_CONNECT',
                `Gave up reconnecting to OVSDB at ${this.address} after ${attempt} attempt(s): ${error.message}`,
                { data: { address: this.address, attempts: attempt }, cause: error },
              ),
            );
            return;
          }
          const next = Math.min(max, min * 2 ** attempt);
          this.#events.emit('reconnectFailed', error, attempt, next);
          this.#scheduleReconnect(attempt + 1, options);
        },
      );
    }, delay);
    // Reconnecting alone does not keep the process alive; a request waiting for it does.
    if (this.#busy === 0) this.#reconnectTimer.unref();
  }

  /** After reconnecting: re-request locks, re-establish monitors, then release waiting requests. */
  async #resync(attempt: number): Promise<void> {
    this.#resyncing = true;
    try {
      this.#schemas.clear();
      for (const lock of this.#locks.keys()) {
        this.#requestLock('lock', lock).catch((err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err));
          // Not queued on the server any more: forget it so `hasLock` and `locks` say so.
          if (this.#locks.get(lock) !== 'held') this.#locks.delete(lock);
          this.logger.warn({ err: error, lock }, 'could not ask for the lock again after reconnecting');
          this.#events.emit('lockError', lock, error);
        });
      }
      for (const monitor of this.#monitors.values()) await monitor._resubscribe();
    } finally {
      this.#resyncing = false;
    }
    if (this.#state !== 'connected') return;
    const waiters = this.#connectionWaiters;
    this.#connectionWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.logger.info({ attempt }, 'ovsdb reconnected');
    this.#events.emit('reconnect', attempt);
  }

  #finish(error: Error): void {
    this.#state = 'closed';
    clearInterval(this.#probeTimer);
    clearTimeout(this.#reconnectTimer);
    this.#rejectPending(() => error);
    const waiters = this.#connectionWaiters;
    this.#connectionWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
    for (const monitor of this.#monitors.values()) monitor._closed(error);
    this.#monitors.clear();
    this.#events.emit('close');
  }

  #closedError(): OpdbusError {
    return new OpdbusError('OPDBUS_ERR_OVSDB_CLOSED', `The OVSDB client for ${this.address} is closed.`, {
      data: { address: this.address },
    });
  }

  /** Close the connection for good: outstanding requests fail with `OPDBUS_ERR_OVSDB_CLOSED`. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const socket = this.#socket;
    this.#socket = undefined;
    this.#finish(this.#closedError());
    if (socket !== undefined) {
      // Keep the process alive until the socket is closed (it may be unref'd when idle).
      socket.ref();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => socket.destroy(), 1000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.end();
      });
    }
  }

  /** Same as {@link OvsdbClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- messages

  #send(message: Record<string, unknown>): void {
    const socket = this.#socket;
    if (socket === undefined) throw this.#closedError();
    socket.write(JSON.stringify(message));
  }

  #onData(socket: Socket, chunk: Buffer): void {
    if (this.#socket !== socket) return;
    this.#lastReceived = Date.now();
    let messages: unknown[];
    try {
      messages = this.#parser.push(chunk);
    } catch (err) {
      this.logger.error(
        { err },
        'the OVSDB server sent bytes that are not JSON-RPC; dropping the connection',
      );
      this.#dropConnection(err as Error);
      return;
    }
    for (const message of messages) {
      if (this.#socket !== socket) return;
      try {
        this.#onMessage(message as JsonRpcMessage);
      } catch (err) {
        this.logger.error({ err }, 'handling an OVSDB message failed; dropping the connection');
        this.#dropConnection(err as Error);
        return;
      }
    }
  }

  #onMessage(message: JsonRpcMessage): void {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_PROTOCOL',
        `The server sent ${JSON.stringify(message)}, not a JSON-RPC message.`,
      );
    }
    if (typeof message.method === 'string') {
      if (message.id !== null && message.id !== undefined) {
        // A request from the server: ovsdb-server sends "echo" as its inactivity probe.
        if (message.method === 'echo') {
          this.#send({ result: message.params ?? [], error: null, id: message.id });
          this.#events.emit('echo');
        } else this.#send({ result: null, error: 'unknown method', id: message.id });
        return;
      }
      this.#onNotification(message.method, message.params);
      return;
    }
    const id = message.id;
    if (typeof id === 'string' && id.startsWith('probe-')) {
      this.#probeOutstanding = false;
      this.#events.emit('probe', Date.now() - this.#probeSentAt);
      return;
    }
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending === undefined) {
      this.logger.debug({ id }, 'reply to a request that is no longer waited for');
      return;
    }
    this.#settle(id as number);
    if (message.error !== null && message.error !== undefined)
      pending.reject(this.#rpcError(pending.method, message.error));
    else pending.resolve(message.result);
  }

  #rpcError(method: string, error: unknown): OpdbusError {
    const object =
      typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : undefined;
    const name =
      typeof error === 'string'
        ? error
        : typeof object?.error === 'string'
          ? object.error
          : JSON.stringify(error);
    const details = typeof object?.details === 'string' ? object.details : undefined;
    if (name === 'canceled') {
      return new OpdbusError(
        'OPDBUS_ERR_OVSDB_CANCELED',
        `The "${method}" request was canceled; nothing was committed.`,
        {
          data: { method, error: name },
        },
      );
    }
    return new OpdbusError(
      'OPDBUS_ERR_OVSDB_RPC',
      `OVSDB at ${this.address} refused "${method}": ${name}${details === undefined ? '' : `: ${details}`}.`,
      {
        data: {
          address: this.address,
          method,
          error: name,
          ...(details === undefined ? {} : { details }),
          ...(object ?? {}),
        },
      },
    );
  }

  #onNotification(method: string, params: unknown): void {
    const args: unknown[] = Array.isArray(params) ? params : [];
    switch (method) {
      case 'update':
      case 'update2':
      case 'update3': {
        const monitor = this.#monitors.get(JSON.stringify(args[0]));
        if (monitor === undefined) {
          this.logger.debug({ method, id: args[0] }, 'update for an unknown monitor');
          return;
        }
        monitor._notify(method, args);
        return;
      }
      case 'locked':
      case 'stolen': {
        const lock = args[0];
        if (typeof lock !== 'string') return;
        if (method === 'locked') {
          if (this.#locks.has(lock)) this.#locks.set(lock, 'held');
        } else if (this.#locks.has(lock)) {
          this.#locks.set(lock, 'waiting');
        }
        this.#events.emit(method, lock);
        return;
      }
      default:
        this.#events.emit('notification', method, params);
    }
  }

  #settle(id: number): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.cleanup?.();
    this.#release();
  }

  #rejectPending(errorFor: (pending: Pending) => Error): void {
    for (const [id, pending] of [...this.#pending]) {
      this.#settle(id);
      pending.reject(errorFor(pending));
    }
  }

  #hold(): void {
    if (this.#busy++ === 0 && this.#options.unrefWhenIdle === true) {
      this.#socket?.ref();
      this.#reconnectTimer?.ref();
    }
  }

  #release(): void {
    if (--this.#busy === 0 && this.#options.unrefWhenIdle === true) {
      this.#socket?.unref();
      this.#reconnectTimer?.unref();
    }
  }

  /** Resolves when connected (waiting through a reconnection); rejects once closed. */
  #whenConnected(internal: boolean): Promise<void> {
    if (this.#state === 'connected' && (internal || !this.#resyncing)) return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => this.#connectionWaiters.push({ resolve, reject }));
  }

  /**
   * Send a JSON-RPC request and resolve with its result. Errors: `OPDBUS_ERR_OVSDB_RPC` (the
   * server's error string in `data.error`), `_TIMEOUT`, `_DISCONNECTED`, `_CLOSED`, `_CANCELED`.
   * While the client reconnects the request waits for the connection (within its timeout).
   */
  request(method: string, params: unknown[], options: RequestOptions = {}): Promise<unknown> {
    return this.#request(method, params, options, false);
  }

  /** @internal Used by monitors while resynchronising (they do not wait for the resync to end). */
  _requestInternal(method: string, params: unknown[]): Promise<unknown> {
    return this.#request(method, params, {}, true);
  }

  #request(method: string, params: unknown[], options: RequestOptions, internal: boolean): Promise<unknown> {
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs ?? 0;
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(this.#abortError(method, signal));
    this.#hold();
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      let id: number | undefined;
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const done = (): void => {
        settled = true;
        clearTimeout(timer);
        if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: Error): void => {
        if (settled) return;
        done();
        if (id !== undefined && this.#pending.has(id)) this.#settle(id);
        else if (id === undefined) this.#release();
        reject(error);
      };
      if (timeoutMs > 0) {
        timer = setTimeout(
          () =>
            fail(
              new OpdbusError(
                'OPDBUS_ERR_OVSDB_TIMEOUT',
                `OVSDB at ${this.address} did not answer "${method}" within ${timeoutMs} ms${method === 'transact' ? '; the transaction may still commit' : ''}.`,
                { data: { address: this.address, method, timeoutMs } },
              ),
            ),
          timeoutMs,
        );
      }
      if (signal !== undefined) {
        onAbort = (): void => {
          if (
            method === 'transact' &&
            id !== undefined &&
            this.#pending.has(id) &&
            this.#socket !== undefined
          ) {
            // RFC 7047 §4.1.4 says the server answers a canceled transaction with the error
            // "canceled"; ovsdb-server ≥ 2.9 answers nothing unless the session is
            // db-change-aware. It handles messages in order, so once an echo sent after the
            // cancel comes back, a transaction still unanswered was canceled, not committed.
            this.#send({ method: 'cancel', params: [id], id: null });
            const canceled = id;
            this.#request('echo', ['cancel'], {}, true).then(
              () => {
                if (this.#pending.has(canceled))
                  fail(
                    new OpdbusError(
                      'OPDBUS_ERR_OVSDB_CANCELED',
                      'The transaction was canceled on the server (OVSDB "cancel"); nothing was committed.',
                      { data: { method, error: 'canceled' }, cause: signal.reason },
                    ),
                  );
              },
              (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
            );
            return;
          }
          fail(this.#abortError(method, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#whenConnected(internal).then(
        () => {
          if (settled) return;
          id = this.#nextId++;
          this.#pending.set(id, {
            method,
            resolve: (result) => {
              done();
              resolve(result);
            },
            reject: (error) => {
              done();
              reject(error);
            },
            timer: undefined,
            cleanup: undefined,
          });
          try {
            this.#send({ method, params, id });
          } catch (err) {
            fail(err as Error);
          }
        },
        (err: unknown) => fail(err as Error),
      );
    });
  }

  #abortError(method: string, signal: AbortSignal): OpdbusError {
    return new OpdbusError(
      'OPDBUS_ERR_OVSDB_CANCELED',
      `The "${method}" request was aborted by the caller.`,
      {
        data: { method },
        cause: signal.reason,
      },
    );
  }

  /** Send a JSON-RPC notification (no reply). */
  notify(method: string, params: unknown[]): void {
    if (this.#state !== 'connected') throw this.#closedError();
    this.#send({ method, params, id: null });
  }

  // ---------------------------------------------------------------- RFC 7047 methods

  /** `list_dbs` (RFC 7047 §4.1.1): the databases the server serves. */
  async listDbs(options?: RequestOptions): Promise<string[]> {
    const result = await this.request('list_dbs', [], options);
    if (!Array.isArray(result) || !result.every((d) => typeof d === 'string'))
      throw new OpdbusError('OPDBUS_ERR_OVSDB_PROTOCOL', `list_dbs returned ${JSON.stringify(result)}.`);
    return result;
  }

  /** `get_schema` (RFC 7047 §4.1.2), parsed; cached per database until a reconnect. */
  getSchema(database: string, options?: RequestOptions): Promise<DatabaseSchema> {
    let schema = this.#schemas.get(database);
    if (schema === undefined) {
      schema = this.request('get_schema', [database], options).then((json) =>
        DatabaseSchema.parse(json, `schema of ${database} at ${this.address}`),
      );
      this.#schemas.set(database, schema);
      schema.catch(() => this.#schemas.delete(database));
    }
    return schema;
  }

  /**
   * `transact` (RFC 7047 §4.1.3): run operations atomically. Rows, conditions and mutations are
   * given in their JavaScript form and validated against the schema first (`OPDBUS_ERR_OVSDB_VALUE`
   * names table, column and value). Resolves with one result per operation; a failed operation
   * throws `OPDBUS_ERR_OVSDB_TRANSACTION` with the server's error string and `data.operationIndex`.
   * Aborting `options.signal` sends `cancel` (RFC 7047 §4.1.4).
   */
  async transact<const Ops extends readonly Operation[]>(
    database: string,
    operations: Ops,
    options?: RequestOptions,
  ): Promise<TransactResults<Ops>> {
    const schema = await this.getSchema(database, options);
    const ops = operations as readonly Operation[];
    const wire = ops.map((op, index) => encodeOperation(schema, op, index));
    const reply = await this.request('transact', [database, ...wire], options);
    return decodeResults(schema, ops, reply) as TransactResults<Ops>;
  }

  /**
   * A handle on one database, typed by its table map (from generated types), so that
   * operations, results, monitors and replicas are checked against the schema's tables and
   * columns at compile time.
   *
   * @example
   * ```ts
   * import type { OpenVSwitchTables } from '@opdbus/ovsdb/vswitch';
   * const db = client.database<OpenVSwitchTables>('Open_vSwitch');
   * const [{ rows }] = await db.transact([{ op: 'select', table: 'Bridge', where: [], columns: ['name'] }]);
   * ```
   */
  database<TM extends TableMap = UntypedTables>(name: string): Database<TM> {
    return new Database<TM>(this, name);
  }

  /** `transact` with operations already in wire form; resolves with the raw result array. */
  async transactRaw(
    database: string,
    operations: readonly unknown[],
    options?: RequestOptions,
  ): Promise<unknown[]> {
    const reply = await this.request('transact', [database, ...operations], options);
    if (!Array.isArray(reply))
      throw new OpdbusError('OPDBUS_ERR_OVSDB_PROTOCOL', `transact returned ${JSON.stringify(reply)}.`);
    return reply as unknown[];
  }

  /** `echo` (RFC 7047 §4.1.11): resolves with the arguments, returned by the server. */
  async echo(...args: unknown[]): Promise<unknown[]> {
    const result = await this.request('echo', args);
    return Array.isArray(result) ? (result as unknown[]) : [];
  }

  /**
   * A barrier for monitors: resolves once every monitor update for transactions committed
   * before the call (by any client) has been received. ovsdb-server flushes pending monitor
   * updates to a connection before it reads the connection's next request, so an `echo` round
   * trip is such a barrier.
   */
  async sync(): Promise<void> {
    await this.echo('sync');
  }

  /**
   * Monitor tables (RFC 7047 §4.1.5 and ovsdb-server's `monitor_cond` and
   * `monitor_cond_since`). `method: 'auto'` (the default) uses `monitor_cond_since`, falling back
   * to `monitor_cond` and then `monitor` when the server answers "unknown method"; conditions
   * are then applied on the client. The monitor's `update` events carry the initial rows and every
   * change; after a reconnect it is re-established (resuming from the last transaction id with
   * `monitor_cond_since`).
   */
  async monitor<TM extends TableMap = UntypedTables>(
    database: string,
    requests: MonitorRequests<TM>,
    options: MonitorOptions = {},
  ): Promise<Monitor<TM>> {
    const schema = await this.getSchema(database);
    const id = `opdbus-m${this.#nextMonitor++}`;
    const monitor = new Monitor<TM>(
      {
        client: this,
        request: (method, params) => this._requestInternal(method, params),
        register: (key, m) => this.#monitors.set(key, m),
        unregister: (key) => this.#monitors.delete(key),
        logger: this.logger,
      },
      database,
      schema,
      id,
      requests,
      options.method ?? 'auto',
    );
    if (options.onUpdate !== undefined) monitor.on('update', options.onUpdate);
    await monitor._start(options.lastTxnId ?? ZERO_UUID);
    return monitor;
  }

  /** The methods the monitors of this client use, in order of preference, for `auto`. */
  static readonly monitorMethods: readonly MonitorMethod[] = [
    'monitor_cond_since',
    'monitor_cond',
    'monitor',
  ];

  // ---------------------------------------------------------------- locks

  #checkLockName(lock: string): void {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(lock))
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_VALUE',
        `OVSDB lock names are identifiers (letters, digits and "_", not starting with a digit); ${JSON.stringify(lock)} is not one.`,
        { data: { lock } },
      );
  }

  async #requestLock(method: 'lock' | 'steal', lock: string): Promise<boolean> {
    this.#checkLockName(lock);
    if (!this.#locks.has(lock)) this.#locks.set(lock, 'waiting');
    const result = await this.#request(method, [lock], {}, true);
    const locked =
      typeof result === 'object' && result !== null && (result as { locked?: unknown }).locked === true;
    if (locked && this.#locks.has(lock) && this.#locks.get(lock) !== 'held') {
      this.#locks.set(lock, 'held');
      this.#events.emit('locked', lock);
    }
    return locked;
  }

  /**
   * `lock` (RFC 7047 §4.1.8): ask for a lock. Resolves true when granted now; false when another
   * client holds it — the server then sends `locked` when it is granted (event `locked`).
   */
  async lock(name: string): Promise<boolean> {
    await this.#whenConnected(false);
    return this.#requestLock('lock', name);
  }

  /** `steal` (RFC 7047 §4.1.9): take the lock from its holder (who gets `stolen`). */
  async steal(name: string): Promise<void> {
    await this.#whenConnected(false);
    await this.#requestLock('steal', name);
  }

  /** `unlock` (RFC 7047 §4.1.10): release or stop waiting for the lock. */
  async unlock(name: string): Promise<void> {
    this.#checkLockName(name);
    this.#locks.delete(name);
    await this.request('unlock', [name]);
  }

  /** Whether this client holds the lock now. */
  hasLock(name: string): boolean {
    return this.#locks.get(name) === 'held';
  }

  /** The locks this client holds or waits for. */
  get locks(): ReadonlyMap<string, LockState> {
    return this.#locks;
  }

  /**
   * Take a lock, waiting (up to `timeoutMs`, default forever) until its holder releases it.
   * Throws `OPDBUS_ERR_OVSDB_TIMEOUT` (and stops waiting for the lock) when it is not granted in time.
   */
  async acquireLock(name: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    this.#hold();
    try {
      const granted = new Promise<void>((resolve) => {
        const off = this.on('locked', (lock) => {
          if (lock === name) {
            off();
            resolve();
          }
        });
        if (this.hasLock(name)) {
          off();
          resolve();
        }
      });
      // After "stolen" the server keeps us waiting for the lock: do not ask again.
      if (this.#locks.get(name) !== 'waiting' && (await this.lock(name))) return;
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      let offError: (() => void) | undefined;
      const giveUp = new Promise<never>((_, reject) => {
        // A reconnect that could not queue us for the lock again ends the wait with that error.
        offError = this.on('lockError', (lock, error) => {
          if (lock === name) reject(error);
        });
        if (options.timeoutMs !== undefined)
          timer = setTimeout(
            () =>
              reject(
                new OpdbusError(
                  'OPDBUS_ERR_OVSDB_TIMEOUT',
                  `The OVSDB lock "${name}" was not granted within ${options.timeoutMs} ms; another client holds it.`,
                  { data: { address: this.address, lock: name, timeoutMs: options.timeoutMs } },
                ),
              ),
            options.timeoutMs,
          );
        if (options.signal !== undefined) {
          onAbort = () => reject(this.#abortError('lock', options.signal!));
          options.signal.addEventListener('abort', onAbort, { once: true });
        }
      });
      try {
        await Promise.race([granted, giveUp]);
      } catch (err) {
        await this.unlock(name).catch(() => undefined);
        throw err;
      } finally {
        offError?.();
        clearTimeout(timer);
        if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
      }
    } finally {
      this.#release();
    }
  }
}
