import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { parseIntrospection, type NodeInfo } from './introspection.js';
import { Variant } from './variant.js';

import type * as DbusNextModule from 'dbus-next';

type DbusNext = typeof DbusNextModule;
type NextMessageBus = DbusNextModule.MessageBus;
type NextMessage = DbusNextModule.Message;

// dbus-next is CommonJS; it is an implementation detail of this module and never leaks out.
const next = createRequire(import.meta.url)('dbus-next') as DbusNext;
const METHOD_CALL = 1;
const SIGNAL = 4;
const NO_REPLY_EXPECTED = 1;
const NO_AUTO_START = 2;

/** The default system bus address when `$DBUS_SYSTEM_BUS_ADDRESS` is unset. */
export const DEFAULT_SYSTEM_BUS_ADDRESS = 'unix:path=/run/dbus/system_bus_socket';

/** Options of {@link connectBus}. */
export interface BusConnectOptions {
  /**
   * A D-Bus address (`unix:path=…`, `unix:abstract=…`, `tcp:host=…,port=…`). When unset, the bus
   * named by `bus`.
   */
  address?: string;
  /** Which standard bus when no address is given (default `system`: `$DBUS_SYSTEM_BUS_ADDRESS`, else /run/dbus/system_bus_socket). */
  bus?: 'system' | 'session';
  /** Default timeout of method calls (default 25 s, as libdbus). */
  callTimeoutMs?: number;
  /** How long to wait for the connection and the bus's Hello (default 10 s). */
  connectTimeoutMs?: number;
  /** Debug logging (default silent). */
  logger?: Logger;
}

/** The address a connection with these options goes to. */
export function resolveBusAddress(options: Pick<BusConnectOptions, 'address' | 'bus'> = {}): string {
  if (options.address !== undefined && options.address !== '') return options.address;
  if (options.bus === 'session') {
    const session = process.env.DBUS_SESSION_BUS_ADDRESS;
    if (session === undefined || session === '') {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_CONNECT',
        'No session bus: $DBUS_SESSION_BUS_ADDRESS is not set; pass an address instead.',
      );
    }
    return session;
  }
  const system = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  return system === undefined || system === '' ? DEFAULT_SYSTEM_BUS_ADDRESS : system;
}

/** One method call. */
export interface CallRequest {
  /** The bus name of the service (well-known or unique). */
  destination: string;
  /** The object path. */
  path: string;
  /** The interface of the method. */
  interface: string;
  /** The method name. */
  member: string;
  /** The input signature (default: no arguments). */
  signature?: string;
  /** The arguments (see {@link Variant} for `v`). */
  body?: readonly unknown[];
  /** Override the connection's call timeout. */
  timeoutMs?: number;
  /** Do not start the service by bus activation if it is not running. */
  noAutoStart?: boolean;
  /** Ask for no reply (methods annotated NoReply): resolves with `[]` once sent. */
  noReply?: boolean;
}

/**
 * A D-Bus match rule: which signals to receive. Unset fields match anything. `sender` may be a
 * well-known name (matched against its current owner) or a unique name.
 */
export interface MatchRule {
  sender?: string;
  interface?: string;
  member?: string;
  /** Exactly this object path. */
  path?: string;
  /** This object path and every path below it. */
  pathNamespace?: string;
  /** String arguments that must be equal, by index (0–63): e.g. `{ 0: 'org.freedesktop.systemd1.Unit' }`. */
  args?: Readonly<Record<number, string>>;
}

/** A signal as received. */
export interface SignalMessage {
  /** The sender's unique name. */
  sender: string;
  path: string;
  interface: string;
  member: string;
  signature: string;
  /** The arguments, converted like method replies. */
  body: unknown[];
}

/** A live signal subscription. */
export interface Subscription {
  /** The match rule as sent to the bus. */
  readonly rule: string;
  /** Stop receiving (removes the bus match rule). Idempotent. */
  unsubscribe(): Promise<void>;
}

function quote(value: string): string {
  // In match rules a quote cannot be escaped inside quotes: close, escape, reopen.
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The text of a match rule, as AddMatch takes it. */
export function formatMatchRule(rule: MatchRule): string {
  const parts = [`type='signal'`];
  if (rule.sender !== undefined) parts.push(`sender=${quote(rule.sender)}`);
  if (rule.interface !== undefined) parts.push(`interface=${quote(rule.interface)}`);
  if (rule.member !== undefined) parts.push(`member=${quote(rule.member)}`);
  if (rule.path !== undefined) parts.push(`path=${quote(rule.path)}`);
  if (rule.pathNamespace !== undefined) parts.push(`path_namespace=${quote(rule.pathNamespace)}`);
  for (const [index, value] of Object.entries(rule.args ?? {})) parts.push(`arg${index}=${quote(value)}`);
  return parts.join(',');
}

/** Whether a received signal matches `rule`; `owner` resolves a well-known sender name to its unique name. */
export function matchesRule(
  rule: MatchRule,
  message: SignalMessage,
  owner: (name: string) => string | undefined = () => undefined,
): boolean {
  if (rule.sender !== undefined && rule.sender !== message.sender) {
    if (rule.sender.startsWith(':') || owner(rule.sender) !== message.sender) return false;
  }
  if (rule.interface !== undefined && rule.interface !== message.interface) return false;
  if (rule.member !== undefined && rule.member !== message.member) return false;
  if (rule.path !== undefined && rule.path !== message.path) return false;
  if (rule.pathNamespace !== undefined && rule.pathNamespace !== '/') {
    if (message.path !== rule.pathNamespace && !message.path.startsWith(`${rule.pathNamespace}/`))
      return false;
  }
  for (const [index, value] of Object.entries(rule.args ?? {})) {
    if (message.body[Number(index)] !== value) return false;
  }
  return true;
}

/** Convert our values to dbus-next's (its marshaller wants its own Variant class). */
function toNext(value: unknown): unknown {
  if (value instanceof Variant) return new next.Variant(value.signature, toNext(value.value));
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(toNext);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toNext(v);
  return out;
}

/** Convert dbus-next's values to ours. */
function fromNext(value: unknown): unknown {
  if (value instanceof next.Variant) return new Variant(value.signature, fromNext(value.value));
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromNext);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = fromNext(v);
  return out;
}

function convertBody(signature: string | undefined, body: unknown[] | undefined): unknown[] {
  if (body === undefined) return [];
  return signature?.includes('v') === true ? body.map(fromNext) : body;
}

interface LocalSubscription {
  rule: MatchRule;
  handler: (message: SignalMessage) => void;
}

/**
 * A connection to a D-Bus bus: method calls with timeouts and typed errors, properties, signal
 * subscriptions with match rules, introspection. Create it with {@link connectBus}; close it with
 * {@link DbusConnection.close} (or `await using`).
 *
 * Errors are `OpdbusError`s: `OPDBUS_ERR_DBUS_CALL` keeps the D-Bus error name in
 * `data.dbusError`; timeouts are `OPDBUS_ERR_DBUS_TIMEOUT`; calls on a closed connection
 * `OPDBUS_ERR_DBUS_CLOSED`. 64-bit integers arrive as `bigint`, `ay` as a Buffer, variants as
 * {@link Variant}.
 */
export class DbusConnection implements AsyncDisposable {
  /** The bus address. */
  readonly address: string;
  /** This connection's unique name on the bus, e.g. `:1.42`. */
  readonly uniqueName: string;
  readonly #bus: NextMessageBus;
  readonly #logger: Logger;
  readonly #callTimeoutMs: number;
  readonly #subscriptions = new Set<LocalSubscription>();
  readonly #owners = new Map<string, { owner: string | undefined; refs: number; ready: Promise<void> }>();
  readonly #pending = new Set<(err: OpdbusError) => void>();
  readonly #closeListeners = new Set<(reason: string) => void>();
  #closed: string | undefined;

  /** @internal Use {@link connectBus}. */
  constructor(
    bus: NextMessageBus,
    address: string,
    uniqueName: string,
    callTimeoutMs: number,
    logger: Logger,
  ) {
    this.#bus = bus;
    this.address = address;
    this.uniqueName = uniqueName;
    this.#callTimeoutMs = callTimeoutMs;
    this.#logger = logger;
    bus.on('message', (message) => this.#onMessage(message));
    bus.on('error', (err: unknown) => {
      this.#logger.debug({ err, address }, 'D-Bus connection error');
      this.#markClosed(`connection error: ${err instanceof Error ? err.message : String(err)}`);
    });
    // dbus-next does not forward the stream's end: listen on its connection (stable since 2022).
    (bus as unknown as { _connection: EventEmitter })._connection.on('end', () =>
      this.#markClosed('the bus closed the connection'),
    );
  }

  /** True once the connection is closed (by {@link DbusConnection.close} or the bus). */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Call `listener` once when the connection closes (with the reason). Returns a function that removes it. */
  onClose(listener: (reason: string) => void): () => void {
    if (this.#closed !== undefined) {
      const reason = this.#closed;
      queueMicrotask(() => listener(reason));
      return () => undefined;
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  #markClosed(reason: string): void {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    const err = new OpdbusError(
      'OPDBUS_ERR_DBUS_CLOSED',
      `The D-Bus connection to ${this.address} closed: ${reason}.`,
      {
        data: { address: this.address },
      },
    );
    for (const reject of this.#pending) reject(err);
    this.#pending.clear();
    for (const listener of this.#closeListeners) listener(reason);
    this.#closeListeners.clear();
  }

  #assertOpen(): void {
    if (this.#closed !== undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_CLOSED',
        `The D-Bus connection to ${this.address} is closed (${this.#closed}); open a new one.`,
        { data: { address: this.address } },
      );
    }
  }

  /**
   * Call a method and return the reply's arguments. Throws `OPDBUS_ERR_DBUS_CALL` with the D-Bus
   * error name in `data.dbusError`, `OPDBUS_ERR_DBUS_TIMEOUT`, `OPDBUS_ERR_DBUS_ARGS` when the
   * arguments do not fit the signature.
   */
  async call(request: CallRequest): Promise<unknown[]> {
    this.#assertOpen();
    const where = {
      destination: request.destination,
      path: request.path,
      interface: request.interface,
      member: request.member,
    };
    let message: NextMessage;
    try {
      message = new next.Message({
        type: METHOD_CALL,
        destination: request.destination,
        path: request.path,
        interface: request.interface,
        member: request.member,
        signature: request.signature ?? '',
        body: (request.body ?? []).map(toNext),
        flags:
          (request.noAutoStart === true ? NO_AUTO_START : 0) |
          (request.noReply === true ? NO_REPLY_EXPECTED : 0),
      });
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_ARGS',
        `Cannot build the call ${request.interface}.${request.member} on ${request.path}: ${(err as Error).message}.`,
        { data: where, cause: err },
      );
    }
    const timeoutMs = request.timeoutMs ?? this.#callTimeoutMs;
    let reject: ((err: OpdbusError) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, rej) => {
      reject = rej;
      timer = setTimeout(
        () =>
          rej(
            new OpdbusError(
              'OPDBUS_ERR_DBUS_TIMEOUT',
              `No reply within ${timeoutMs} ms to ${request.interface}.${request.member} on ${request.destination} ${request.path}.`,
              { data: { ...where, timeoutMs } },
            ),
          ),
        timeoutMs,
      );
    });
    this.#pending.add(reject!);
    try {
      const reply = await Promise.race([this.#bus.call(message), guard]);
      return reply === null ? [] : convertBody(reply.signature, reply.body as unknown[]);
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      if (err instanceof next.DBusError) {
        throw new OpdbusError(
          'OPDBUS_ERR_DBUS_CALL',
          `${request.interface}.${request.member} on ${request.destination} ${request.path} failed: ${err.type}: ${err.text}`,
          { data: { ...where, dbusError: err.type, dbusMessage: err.text }, cause: err },
        );
      }
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_ARGS',
        `Cannot send ${request.interface}.${request.member} to ${request.destination} ${request.path}: ${(err as Error).message}.`,
        { data: { ...where, signature: request.signature ?? '' }, cause: err },
      );
    } finally {
      clearTimeout(timer);
      this.#pending.delete(reject!);
    }
  }

  /** Read one property (org.freedesktop.DBus.Properties.Get); returns the value inside the variant. */
  async getProperty(destination: string, path: string, iface: string, name: string): Promise<unknown> {
    const [value] = await this.call({
      destination,
      path,
      interface: 'org.freedesktop.DBus.Properties',
      member: 'Get',
      signature: 'ss',
      body: [iface, name],
    });
    return value instanceof Variant ? value.value : value;
  }

  /** Read all properties of an interface (GetAll), unwrapped from their variants. */
  async getAllProperties(destination: string, path: string, iface: string): Promise<Record<string, unknown>> {
    const [map] = await this.call({
      destination,
      path,
      interface: 'org.freedesktop.DBus.Properties',
      member: 'GetAll',
      signature: 's',
      body: [iface],
    });
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries((map ?? {}) as Record<string, unknown>))
      out[key] = value instanceof Variant ? value.value : value;
    return out;
  }

  /** Write a property (org.freedesktop.DBus.Properties.Set) with a value of the property's signature. */
  async setProperty(
    destination: string,
    path: string,
    iface: string,
    name: string,
    value: Variant,
  ): Promise<void> {
    await this.call({
      destination,
      path,
      interface: 'org.freedesktop.DBus.Properties',
      member: 'Set',
      signature: 'ssv',
      body: [iface, name, value],
    });
  }

  /** The introspection XML of an object. */
  async introspectXml(destination: string, path: string): Promise<string> {
    const [xml] = await this.call({
      destination,
      path,
      interface: 'org.freedesktop.DBus.Introspectable',
      member: 'Introspect',
    });
    return String(xml);
  }

  /** The parsed introspection data of an object. */
  async introspect(destination: string, path: string): Promise<NodeInfo> {
    return parseIntrospection(await this.introspectXml(destination, path), `${destination} ${path}`);
  }

  #busCall(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.call({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member,
      signature,
      body,
    });
  }

  /** The unique name owning `name`, or undefined when nobody owns it. */
  async getNameOwner(name: string): Promise<string | undefined> {
    try {
      const [owner] = await this.#busCall('GetNameOwner', 's', [name]);
      return String(owner);
    } catch (err) {
      if (err instanceof OpdbusError && err.data?.dbusError === 'org.freedesktop.DBus.Error.NameHasNoOwner')
        return undefined;
      throw err;
    }
  }

  /** The names on the bus (ListNames). */
  async listNames(): Promise<string[]> {
    const [names] = await this.#busCall('ListNames');
    return names as string[];
  }

  /** The names the bus can start by activation (ListActivatableNames). */
  async listActivatableNames(): Promise<string[]> {
    const [names] = await this.#busCall('ListActivatableNames');
    return names as string[];
  }

  /** The machine id of the host a service runs on (org.freedesktop.DBus.Peer.GetMachineId). */
  async peerMachineId(destination: string, path = '/'): Promise<string> {
    const [id] = await this.call({
      destination,
      path,
      interface: 'org.freedesktop.DBus.Peer',
      member: 'GetMachineId',
    });
    return String(id);
  }

  #onMessage(message: NextMessage): void {
    if (message.type !== SIGNAL) return;
    const body = convertBody(message.signature, message.body as unknown[] | undefined);
    const signal: SignalMessage = {
      sender: message.sender,
      path: message.path,
      interface: message.interface,
      member: message.member,
      signature: message.signature ?? '',
      body,
    };
    if (
      signal.sender === 'org.freedesktop.DBus' &&
      signal.member === 'NameOwnerChanged' &&
      signal.interface === 'org.freedesktop.DBus'
    ) {
      const [name, , newOwner] = body as [string, string, string];
      const tracked = this.#owners.get(name);
      if (tracked !== undefined) tracked.owner = newOwner === '' ? undefined : newOwner;
    }
    const owner = (name: string): string | undefined => this.#owners.get(name)?.owner;
    for (const subscription of [...this.#subscriptions]) {
      if (!this.#subscriptions.has(subscription) || !matchesRule(subscription.rule, signal, owner)) continue;
      try {
        subscription.handler(signal);
      } catch (err) {
        this.#logger.warn({ err, member: signal.member }, 'a D-Bus signal handler threw; ignored');
      }
    }
  }

  async #trackOwner(name: string): Promise<void> {
    const tracked = this.#owners.get(name);
    if (tracked !== undefined) {
      tracked.refs++;
      return tracked.ready;
    }
    const entry = { owner: undefined as string | undefined, refs: 1, ready: Promise.resolve() };
    this.#owners.set(name, entry);
    entry.ready = (async () => {
      // Match first, then ask: a change between the two arrives after the reply, in order.
      await this.#busCall('AddMatch', 's', [
        formatMatchRule({
          sender: 'org.freedesktop.DBus',
          interface: 'org.freedesktop.DBus',
          member: 'NameOwnerChanged',
          args: { 0: name },
        }),
      ]);
      const owner = await this.getNameOwner(name);
      // A NameOwnerChanged that arrived meanwhile is newer than the reply only if it set an owner.
      entry.owner ??= owner;
    })();
    return entry.ready;
  }

  async #untrackOwner(name: string): Promise<void> {
    const tracked = this.#owners.get(name);
    if (tracked === undefined || --tracked.refs > 0) return;
    this.#owners.delete(name);
    if (this.closed) return;
    await this.#busCall('RemoveMatch', 's', [
      formatMatchRule({
        sender: 'org.freedesktop.DBus',
        interface: 'org.freedesktop.DBus',
        member: 'NameOwnerChanged',
        args: { 0: name },
      }),
    ]).catch((err: unknown) => this.#logger.debug({ err }, 'RemoveMatch failed'));
  }

  /**
   * Receive the signals matching `rule`: adds the match rule on the bus (so the bus routes them
   * here) and calls `handler` for each matching signal, in order. Resolves once the bus has
   * the rule, so nothing sent after that is missed.
   */
  async subscribe(rule: MatchRule, handler: (message: SignalMessage) => void): Promise<Subscription> {
    this.#assertOpen();
    const text = formatMatchRule(rule);
    const local: LocalSubscription = { rule, handler };
    const sender = rule.sender;
    const wellKnown = sender !== undefined && !sender.startsWith(':') && sender !== 'org.freedesktop.DBus';
    if (wellKnown) await this.#trackOwner(sender);
    await this.#busCall('AddMatch', 's', [text]);
    this.#subscriptions.add(local);
    let done = false;
    return {
      rule: text,
      unsubscribe: async () => {
        if (done) return;
        done = true;
        this.#subscriptions.delete(local);
        if (this.closed) return;
        await this.#busCall('RemoveMatch', 's', [text]).catch((err: unknown) =>
          this.#logger.debug({ err, rule: text }, 'RemoveMatch failed'),
        );
        if (wellKnown) await this.#untrackOwner(sender);
      },
    };
  }

  /** Close the connection; pending calls fail with `OPDBUS_ERR_DBUS_CLOSED`. Idempotent. */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#markClosed('closed by this process');
      this.#bus.disconnect();
    }
    return Promise.resolve();
  }

  /** Same as {@link DbusConnection.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connect to a bus: the system bus by default, the session bus, or any address. Resolves once
 * the bus has assigned a unique name. Throws `OPDBUS_ERR_DBUS_CONNECT` with the address and why.
 *
 * @example
 * ```ts
 * await using bus = await connectBus({ address: 'unix:path=/run/dbus/system_bus_socket' });
 * const names = await bus.listNames();
 * ```
 */
export async function connectBus(options: BusConnectOptions = {}): Promise<DbusConnection> {
  const logger = options.logger ?? silentLogger;
  const address = resolveBusAddress(options);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  let bus: NextMessageBus;
  try {
    bus = next.sessionBus({ busAddress: address });
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_DBUS_CONNECT',
      `Cannot connect to the D-Bus address ${address}: ${(err as Error).message}.`,
      {
        data: { address },
        cause: err,
      },
    );
  }
  const uniqueName = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      bus.disconnect();
      reject(
        new OpdbusError(
          'OPDBUS_ERR_DBUS_CONNECT',
          `The bus at ${address} did not answer within ${timeoutMs} ms.`,
          {
            data: { address },
          },
        ),
      );
    }, timeoutMs);
    const onConnect = (): void => {
      cleanup();
      resolve((bus as unknown as { name: string }).name);
    };
    const onError = (err: unknown): void => {
      cleanup();
      bus.disconnect();
      const errno = (err as NodeJS.ErrnoException).code;
      const hint =
        errno === 'ENOENT'
          ? 'no socket there: is the bus daemon running, is the address right?'
          : errno === 'EACCES'
            ? 'permission denied on the socket'
            : errno === 'ECONNREFUSED'
              ? 'nothing listens on the socket'
              : 'the connection or authentication failed';
      reject(
        new OpdbusError(
          'OPDBUS_ERR_DBUS_CONNECT',
          `Cannot connect to the D-Bus bus at ${address}: ${err instanceof Error ? err.message : String(err)} (${hint}).`,
          { data: { address, ...(errno === undefined ? {} : { errno }) }, cause: err },
        ),
      );
    };
    function cleanup(): void {
      clearTimeout(timer);
      bus.removeListener('connect', onConnect);
      bus.removeListener('error', onError);
    }
    bus.on('connect', onConnect);
    bus.on('error', onError);
  });
  logger.debug({ address, uniqueName }, 'D-Bus connected');
  return new DbusConnection(bus, address, uniqueName, options.callTimeoutMs ?? 25_000, logger);
}
