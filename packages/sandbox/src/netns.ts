import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { silentLogger, type Logger, type NetnsRunner } from '@opdbus/core';
import { createNamedNetns, type Netns } from '@opdbus/netlink';
import { netnsExists, processesOf } from './cleanup.js';
import type { Registration } from './registry.js';
import { DisposableResource, createRegistered } from './resource.js';
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
export class SandboxNetns extends DisposableResource implements NetnsRunner {
  /** The namespace's name under /run/netns; also the resource's id. */
  readonly name: string;
  /** The namespace file, `/run/netns/NAME`. */
  readonly path: string;
  readonly #netns: Netns;

  /** @internal Use {@link createNetns}. */
  constructor(netns: Netns, registration: Registration, logger: Logger) {
    super(registration, logger);
    this.name = netns.name;
    this.path = netns.path;
    this.#netns = netns;
  }

  protected override get label(): string {
    return `network namespace ${this.name}`;
  }

  /**
   * Run `fn` synchronously with the calling thread inside the namespace (see `Netns.run` of
   * @opdbus/netlink): sockets and files opened inside stay bound to the namespace.
   */
  run<T>(fn: () => T): T {
    this.assertUsable();
    return this.#netns.run(fn);
  }

  /** Start a process inside the namespace (node:child_process `spawn`, forked from inside). */
  spawn(command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    this.assertUsable();
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
    this.assertUsable();
    const { check, ...rest } = options;
    const result = await runCommand(command, args, { ...rest, netns: this.#netns });
    return check === true ? checkResult(result, command, args, `In network namespace ${this.name}`) : result;
  }

  /** Pids of the processes currently inside the namespace. */
  pids(): number[] {
    return processesOf({ pids: [], netns: this.name }).map((p) => p.pid);
  }

  /** Closes the namespace handle; the release stops every process inside and deletes it. */
  protected override shutdown(): Promise<void> {
    this.#netns.close();
    return Promise.resolve();
  }

  protected override leftovers(): string[] {
    return netnsExists(this.name) ? [`${this.path} still exists`] : [];
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
  return createRegistered(
    'netns',
    (id) => ({ netns: id }),
    (registration) => {
      const name = registration.record.id;
      const netns = createNamedNetns(name, { loopbackUp: options.loopbackUp !== false });
      logger.debug({ netns: name }, 'sandbox netns created');
      return Promise.resolve(new SandboxNetns(netns, registration, logger));
    },
  );
}
