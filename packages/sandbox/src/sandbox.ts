import { OpdbusError, silentLogger, type Logger } from '@opdbus/core';
import { createBtrfsLoop, type BtrfsLoop, type BtrfsOptions } from './btrfs.js';
import { startSystemdContainer, type SystemdContainer, type SystemdContainerOptions } from './container.js';
import { startDbusDaemon, type DbusDaemon, type DbusDaemonOptions } from './dbus.js';
import { createNetns, type NetnsOptions, type SandboxNetns } from './netns.js';
import { startOvs, type OvsOptions, type OvsSandbox } from './ovs.js';

/** Any resource a {@link Sandbox} creates. */
export type SandboxResource = SandboxNetns | DbusDaemon | OvsSandbox | BtrfsLoop | SystemdContainer;

/** Options of {@link Sandbox}: defaults for every resource it creates. */
export interface SandboxOptions {
  /** Parent directory of the resources' directories (default: the OS temp dir). */
  baseDir?: string;
  /** Debug logging (default silent). */
  logger?: Logger;
}

/**
 * A group of sandbox resources destroyed together, newest first.
 *
 * @example
 * ```ts
 * await using sb = new Sandbox();
 * const ns = await sb.netns();
 * const bus = await sb.dbus({ netns: ns });
 * const ovs = await sb.ovs({ vswitchd: true, netns: ns });
 * // ... the test ...
 * // leaving the block destroys ovs, bus, then ns (or call `await sb.destroy()`)
 * ```
 */
export class Sandbox implements AsyncDisposable {
  readonly #options: SandboxOptions;
  readonly #resources: SandboxResource[] = [];
  #destroying: Promise<void> | undefined;

  /** An empty sandbox; `options` are the defaults of every resource it creates. */
  constructor(options: SandboxOptions = {}) {
    this.#options = options;
  }

  /** The resources created so far, oldest first. */
  get resources(): readonly SandboxResource[] {
    return [...this.#resources];
  }

  /** True once {@link Sandbox.destroy} was called. */
  get destroyed(): boolean {
    return this.#destroying !== undefined;
  }

  /** Create a network namespace ({@link createNetns}) owned by this sandbox. */
  netns(options: NetnsOptions = {}): Promise<SandboxNetns> {
    return this.#add(() => createNetns({ ...this.#defaults(), ...options }));
  }

  /** Start a private dbus-daemon ({@link startDbusDaemon}) owned by this sandbox. */
  dbus(options: DbusDaemonOptions = {}): Promise<DbusDaemon> {
    return this.#add(() => startDbusDaemon({ ...this.#defaults(), ...options }));
  }

  /** Start ovsdb-server (and with `vswitchd: true` ovs-vswitchd) ({@link startOvs}) owned by this sandbox. */
  ovs(options: OvsOptions = {}): Promise<OvsSandbox> {
    return this.#add(() => startOvs({ ...this.#defaults(), ...options }));
  }

  /** Create a btrfs filesystem on a loop device ({@link createBtrfsLoop}) owned by this sandbox. */
  btrfs(options: BtrfsOptions = {}): Promise<BtrfsLoop> {
    return this.#add(() => createBtrfsLoop({ ...this.#defaults(), ...options }));
  }

  /** Boot a systemd-nspawn Debian container ({@link startSystemdContainer}) owned by this sandbox. */
  container(options: SystemdContainerOptions = {}): Promise<SystemdContainer> {
    return this.#add(() => startSystemdContainer({ ...this.#defaults(), ...options }));
  }

  /**
   * Destroy every resource, newest first, continuing past failures. Idempotent. Throws
   * `OPDBUS_ERR_SANDBOX_CLEANUP` listing what could not be removed.
   */
  destroy(): Promise<void> {
    this.#destroying ??= this.#teardown();
    return this.#destroying;
  }

  /** Same as {@link Sandbox.destroy}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  #defaults(): { baseDir?: string; logger: Logger } {
    const out: { baseDir?: string; logger: Logger } = { logger: this.#options.logger ?? silentLogger };
    if (this.#options.baseDir !== undefined) out.baseDir = this.#options.baseDir;
    return out;
  }

  async #add<T extends SandboxResource>(create: () => Promise<T>): Promise<T> {
    if (this.#destroying !== undefined) {
      throw new OpdbusError('OPDBUS_ERR_SANDBOX_DESTROYED', 'This Sandbox was destroyed; create a new one.');
    }
    const resource = await create();
    this.#resources.push(resource);
    // Destroyed while we were creating: do not let the new resource outlive the sandbox.
    if (this.#destroying !== undefined) {
      await resource.destroy();
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_DESTROYED',
        'This Sandbox was destroyed while a resource was being created; it was removed again.',
      );
    }
    return resource;
  }

  async #teardown(): Promise<void> {
    const errors: Error[] = [];
    for (const resource of [...this.#resources].reverse()) {
      try {
        await resource.destroy();
      } catch (err) {
        errors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    if (errors.length > 0) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_CLEANUP',
        `Destroying the sandbox left things behind:\n${errors.map((e) => `- ${e.message}`).join('\n')}`,
        {
          cause: new AggregateError(errors),
        },
      );
    }
  }
}
