import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { OpdbusError, silentLogger, type Logger, type NetnsRunner } from '@opdbus/core';
import { createNamedNetns, type Netns } from '@opdbus/netlink';
import { netnsExists, processesOf, release } from './cleanup.js';
import { register, type Registration } from './registry.js';
import { checkResult, runCommand, spawnIn, type CommandResult, type ExecOptions } from './tools.js';

/** Options of {@link createNetns}. */
export interface NetnsOptions {
  /** Bring loopback up (default true). */
  loopbackUp?: boolean;
  /** Debug logging of what is created and removed (default silent). */
  logger?: Logger;
}

/**
 * A disposable named network namespace (`/run/netns/opdbus-sbx-<pid>-<hex>`), loopback up.
 *
 * Use {@link SandboxNetns.run} for synchronous work inside it (open sockets, write
 * /proc/sys/net files), {@link SandboxNetns.spawn} to start a process inside it. `destroy()` stops
 * every process still inside, then deletes the namespace.
 */
export class SandboxNetns implements NetnsRunner, AsyncDisposable {
  /** The namespace's name under /run/netns; also the resource's id. */
  readonly name: string;
  /** The namespace file, `/run/netns/NAME`. */
  readonly path: string;
  readonly #netns: Netns;
  readonly #registration: Registration;
  readonly #logger: Logger;
  #destroying: Promise<void> | undefined;

  /** @internal Use {@link createNetns}. */
  constructor(netns: Netns, registration: Registration, logger: Logger) {
    this.name = netns.name;
    this.path = netns.path;
    this.#netns = netns;
    this.#registration = registration;
    this.#logger = logger;
  }

  /** The resource id (same as {@link SandboxNetns.name}). */
  get id(): string {
    return this.name;
  }

  /** True once {@link SandboxNetns.destroy} was called. */
  get destroyed(): boolean {
    return this.#destroying !== undefined;
  }

  /**
   * Run `fn` synchronously with the calling thread inside the namespace (see `Netns.run` of
   * @opdbus/netlink): sockets and files opened inside stay bound to the namespace.
   */
  run<T>(fn: () => T): T {
    this.#assertUsable();
    return this.#netns.run(fn);
  }

  /** Start a process inside the namespace (node:child_process `spawn`, forked from inside). */
  spawn(command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    this.#assertUsable();
    return spawnIn(this.#netns, command, args, options);
  }

  /**
   * Run a command inside the namespace to completion and return its exit code and output
   * (whatever the exit code, unless `check: true`: then a non-zero exit throws
   * `OPDBUS_ERR_SANDBOX_COMMAND` with its stderr). Convenient in tests:
   * `await ns.exec('ip', ['-j', 'link'])`.
   */
  async exec(
    command: string,
    args: readonly string[] = [],
    options: ExecOptions & { env?: NodeJS.ProcessEnv } = {},
  ): Promise<CommandResult> {
    this.#assertUsable();
    const { check, ...rest } = options;
    const result = await runCommand(command, args, { ...rest, netns: this.#netns });
    return check === true ? checkResult(result, command, args, `In network namespace ${this.name}`) : result;
  }

  /** Pids of the processes currently inside the namespace. */
  pids(): number[] {
    return processesOf({ pids: [], netns: this.name }).map((p) => p.pid);
  }

  /**
   * Stop every process inside (SIGTERM, then SIGKILL), delete the namespace and its record.
   * Idempotent; concurrent calls share one teardown. Throws `OPDBUS_ERR_SANDBOX_CLEANUP` when
   * something could not be removed.
   */
  destroy(): Promise<void> {
    this.#destroying ??= this.#teardown();
    return this.#destroying;
  }

  /** Same as {@link SandboxNetns.destroy}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  async #teardown(): Promise<void> {
    this.#netns.close();
    const leftovers = await release(this.#registration.record);
    if (netnsExists(this.name)) leftovers.push(`${this.path} still exists`);
    if (leftovers.length > 0) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_CLEANUP',
        `Destroying network namespace ${this.name} left: ${leftovers.join('; ')}.`,
        {
          data: { netns: this.name, leftovers },
        },
      );
    }
    this.#registration.done();
    this.#logger.debug({ netns: this.name }, 'sandbox netns deleted');
  }

  #assertUsable(): void {
    if (this.#destroying !== undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_DESTROYED',
        `Network namespace ${this.name} was destroyed; create a new one.`,
        { data: { netns: this.name } },
      );
    }
  }
}

/**
 * Create a disposable network namespace with loopback up. Needs root (CAP_SYS_ADMIN); throws
 * `OPDBUS_ERR_NETNS` (from @opdbus/netlink) when it cannot be created.
 *
 * @example
 * ```ts
 * await using ns = await createNetns();
 * const { stdout } = await ns.exec('ip', ['-brief', 'link']);
 * ```
 */
export async function createNetns(options: NetnsOptions = {}): Promise<SandboxNetns> {
  const logger = options.logger ?? silentLogger;
  const registration = register('netns', (id) => ({ netns: id }));
  const name = registration.record.id;
  let netns: Netns;
  try {
    netns = createNamedNetns(name, { loopbackUp: options.loopbackUp !== false });
  } catch (err) {
    await release(registration.record);
    registration.done();
    throw err;
  }
  logger.debug({ netns: name }, 'sandbox netns created');
  return new SandboxNetns(netns, registration, logger);
}
