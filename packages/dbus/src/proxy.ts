import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import type { z } from 'zod';
import type { DbusConnection, Subscription } from './connection.js';
import { Variant } from './variant.js';

/** Where a proxy points: defaults come from the generated class. */
export interface ProxyTarget {
  /** The service's bus name (default: the class's `defaultDestination`). */
  destination?: string;
  /** The object path (default: the class's `defaultPath`). */
  path?: string;
}

/** The static side every generated proxy class has. */
export interface ProxyClass {
  readonly interfaceName: string;
  readonly defaultDestination: string | undefined;
  readonly defaultPath: string | undefined;
  /** Property name → signature, for `set`. */
  readonly propertySignatures: Readonly<Record<string, string>>;
}

/**
 * The base of generated typed proxies (see `generateBindings`): one D-Bus interface of one object
 * of one service. Subclasses add a typed method per D-Bus method and an `on<Signal>` per signal;
 * properties are read with {@link InterfaceProxy.get} / {@link InterfaceProxy.getAll}, written
 * with {@link InterfaceProxy.set}, and kept current with {@link InterfaceProxy.cacheProperties}.
 */
export class InterfaceProxy<P extends object = Record<string, unknown>, W extends keyof P & string = never> {
  /** The connection calls go through. */
  readonly connection: DbusConnection;
  /** The service's bus name. */
  readonly destination: string;
  /** The object path. */
  readonly path: string;
  /** The D-Bus interface. */
  readonly interfaceName: string;
  readonly #signatures: Readonly<Record<string, string>>;

  constructor(connection: DbusConnection, cls: ProxyClass, target: ProxyTarget = {}) {
    const destination = target.destination ?? cls.defaultDestination;
    const path = target.path ?? cls.defaultPath;
    if (destination === undefined || path === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_DBUS_ARGS',
        `A proxy of ${cls.interfaceName} needs ${destination === undefined ? 'a destination' : 'an object path'}: pass { ${destination === undefined ? 'destination' : 'path'} } (the interface has no default).`,
        { data: { interface: cls.interfaceName } },
      );
    }
    this.connection = connection;
    this.destination = destination;
    this.path = path;
    this.interfaceName = cls.interfaceName;
    this.#signatures = cls.propertySignatures;
  }

  /**
   * Call a method of this interface after checking the arguments against `schema`; returns the
   * reply's arguments. Throws `OPDBUS_ERR_DBUS_ARGS` naming the argument that does not fit.
   */
  protected async callMethod(
    member: string,
    signature: string,
    schema: z.ZodType | undefined,
    args: readonly unknown[],
    options: { noReply?: boolean; timeoutMs?: number } = {},
  ): Promise<unknown[]> {
    if (schema !== undefined) {
      const checked = schema.safeParse(args);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        throw new OpdbusError(
          'OPDBUS_ERR_DBUS_ARGS',
          `${this.interfaceName}.${member}: argument ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'} (signature "${signature}").`,
          { data: { interface: this.interfaceName, member, signature, issues: checked.error.issues } },
        );
      }
    }
    return this.connection.call({
      destination: this.destination,
      path: this.path,
      interface: this.interfaceName,
      member,
      signature,
      body: args,
      ...(options.noReply === true ? { noReply: true } : {}),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  }

  /** Subscribe to a signal of this interface on this object. */
  protected subscribeSignal(member: string, handler: (args: unknown[]) => void): Promise<Subscription> {
    return this.connection.subscribe(
      { sender: this.destination, path: this.path, interface: this.interfaceName, member },
      (message) => handler(message.body),
    );
  }

  /** Read one property. */
  async get<K extends keyof P & string>(name: K): Promise<P[K]> {
    return (await this.connection.getProperty(this.destination, this.path, this.interfaceName, name)) as P[K];
  }

  /** Read every property of the interface (one GetAll). */
  async getAll(): Promise<P> {
    return (await this.connection.getAllProperties(this.destination, this.path, this.interfaceName)) as P;
  }

  /** Write a writable property (its signature comes from the introspection data). */
  async set<K extends W>(name: K, value: P[K]): Promise<void> {
    const signature = this.#signatures[name];
    if (signature === undefined) {
      throw new OpdbusError('OPDBUS_ERR_DBUS_ARGS', `${this.interfaceName} has no property ${name}.`, {
        data: { interface: this.interfaceName, property: name },
      });
    }
    await this.connection.setProperty(
      this.destination,
      this.path,
      this.interfaceName,
      name,
      new Variant(signature, value),
    );
  }

  /** Receive PropertiesChanged for this interface on this object (changed values unwrapped, invalidated names). */
  onPropertiesChanged(handler: (changed: Partial<P>, invalidated: string[]) => void): Promise<Subscription> {
    return this.connection.subscribe(
      {
        sender: this.destination,
        path: this.path,
        interface: 'org.freedesktop.DBus.Properties',
        member: 'PropertiesChanged',
        args: { 0: this.interfaceName },
      },
      (message) => {
        const [, changed, invalidated] = message.body as [string, Record<string, unknown>, string[]];
        const values: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(changed ?? {})) values[k] = v instanceof Variant ? v.value : v;
        handler(values as Partial<P>, invalidated ?? []);
      },
    );
  }

  /** A cache of all properties kept current by PropertiesChanged (see {@link PropertyCache}). */
  cacheProperties(options: { logger?: Logger } = {}): Promise<PropertyCache<P>> {
    return PropertyCache.open<P>(this, options.logger ?? silentLogger);
  }
}

/**
 * The properties of one interface of one object, read once with GetAll and kept current by
 * PropertiesChanged (changed values are applied; invalidated ones are read again). Properties
 * whose EmitsChangedSignal is `false` are only as fresh as the last {@link PropertyCache.refresh}.
 */
export class PropertyCache<P extends object> implements AsyncDisposable {
  readonly #proxy: Pick<InterfaceProxy<P>, 'get' | 'getAll' | 'interfaceName' | 'path'>;
  readonly #values = new Map<string, unknown>();
  readonly #listeners = new Set<(changed: Partial<P>, invalidated: string[]) => void>();
  readonly #logger: Logger;
  #subscription: Subscription | undefined;

  private constructor(
    proxy: Pick<InterfaceProxy<P>, 'get' | 'getAll' | 'interfaceName' | 'path'>,
    logger: Logger,
  ) {
    this.#proxy = proxy;
    this.#logger = logger;
  }

  /** Subscribe first, then read everything: no change is lost in between. */
  static async open<P extends object>(
    proxy: InterfaceProxy<P, keyof P & string>,
    logger: Logger,
  ): Promise<PropertyCache<P>> {
    const cache = new PropertyCache<P>(proxy, logger);
    cache.#subscription = await proxy.onPropertiesChanged((changed, invalidated) =>
      cache.#apply(changed, invalidated),
    );
    await cache.refresh();
    return cache;
  }

  #apply(changed: Partial<P>, invalidated: string[]): void {
    for (const [k, v] of Object.entries(changed)) this.#values.set(k, v);
    for (const name of invalidated) this.#values.delete(name);
    this.#emit(changed, invalidated);
    if (invalidated.length === 0) return;
    Promise.all(
      invalidated.map(async (name) => {
        const value = await this.#proxy.get(name as keyof P & string);
        this.#values.set(name, value);
        return [name, value] as const;
      }),
    ).then(
      (entries) => this.#emit(Object.fromEntries(entries) as Partial<P>, []),
      (err: unknown) =>
        this.#logger.warn(
          { err, interface: this.#proxy.interfaceName },
          'could not re-read invalidated properties',
        ),
    );
  }

  #emit(changed: Partial<P>, invalidated: string[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(changed, invalidated);
      } catch (err) {
        this.#logger.warn({ err }, 'a property cache listener threw; ignored');
      }
    }
  }

  /** The cached value (undefined while an invalidated property is being read again). */
  get<K extends keyof P & string>(name: K): P[K] | undefined {
    return this.#values.get(name) as P[K] | undefined;
  }

  /** All cached values. */
  snapshot(): Partial<P> {
    return Object.fromEntries(this.#values) as Partial<P>;
  }

  /** Read every property again (GetAll). */
  async refresh(): Promise<void> {
    const all = await this.#proxy.getAll();
    for (const [k, v] of Object.entries(all)) this.#values.set(k, v);
  }

  /** Call `listener` on every change (changed values, and names invalidated). Returns a function that removes it. */
  onChange(listener: (changed: Partial<P>, invalidated: string[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stop following changes. */
  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  /** Same as {@link PropertyCache.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
