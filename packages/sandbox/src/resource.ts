import type { ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { OpdbusError, type Logger } from '@opdbus/core';
import { release } from './cleanup.js';
import type { SandboxKind, SandboxRecord } from './records.js';
import { register, type Registration } from './registry.js';

/**
 * The lifecycle every sandbox resource shares: registered (a record file and the exit hook)
 * before anything is created, stopped once (idempotent, concurrent calls share one teardown),
 * everything its record names released, what is left reported as `OPDBUS_ERR_SANDBOX_CLEANUP`,
 * and the record removed only when nothing is left. A resource adds what differs: how it stops
 * ({@link DisposableResource.shutdown}) and what else it checks after the release
 * ({@link DisposableResource.leftovers}).
 */
export abstract class DisposableResource implements AsyncDisposable {
  /** The resource id, `opdbus-sbx-<pid>-<hex>`. */
  readonly id: string;
  /** @internal */
  protected readonly registration: Registration;
  /** @internal */
  protected readonly logger: Logger;
  #stopping: Promise<void> | undefined;

  /** @internal */
  constructor(registration: Registration, logger: Logger) {
    this.id = registration.record.id;
    this.registration = registration;
    this.logger = logger;
  }

  /** What it is, for messages, e.g. `container opdbus-sbx-…`. */
  protected abstract get label(): string;

  /** True once the resource was stopped (or destroyed). */
  get destroyed(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * Stop the resource and remove everything it created. Idempotent; throws
   * `OPDBUS_ERR_SANDBOX_CLEANUP` listing what could not be removed.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#teardown();
    return this.#stopping;
  }

  /** Same as `stop()`. */
  destroy(): Promise<void> {
    return this.stop();
  }

  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** Ask what runs to stop, before the record's processes are killed (default: nothing). */
  protected async shutdown(): Promise<void> {}

  /** What is left after the release that the record does not cover (default: nothing). */
  protected leftovers(): Promise<string[]> | string[] {
    return [];
  }

  /** Throw `OPDBUS_ERR_SANDBOX_DESTROYED` once the resource was stopped. */
  protected assertUsable(): void {
    if (this.#stopping !== undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_DESTROYED',
        `The ${this.label} was stopped; start a new one.`,
        { data: { id: this.id } },
      );
    }
  }

  async #teardown(): Promise<void> {
    await this.shutdown();
    const leftovers = await release(this.registration.record);
    leftovers.push(...(await this.leftovers()));
    if (leftovers.length > 0) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_CLEANUP',
        `Stopping the ${this.label} left: ${leftovers.join('; ')}.`,
        { data: { id: this.id, leftovers } },
      );
    }
    this.registration.done();
    this.logger.debug({ id: this.id }, `sandbox ${this.registration.record.kind} stopped`);
  }
}

/**
 * Register a resource and create it: when `create` throws, whatever the record names by then
 * (processes, directory, cgroups, namespace) is released and the record removed before the error
 * is rethrown, so a failed start leaves nothing behind.
 */
export async function createRegistered<T>(
  kind: SandboxKind,
  fill: (id: string) => Partial<Pick<SandboxRecord, 'netns' | 'dir' | 'cgroups'>>,
  create: (registration: Registration) => Promise<T>,
): Promise<T> {
  const registration = register(kind, fill);
  try {
    return await create(registration);
  } catch (err) {
    await release(registration.record);
    registration.done();
    throw err;
  }
}

/**
 * Stop a child process: SIGTERM, SIGKILL after `killAfterMs`, and wait for it at most
 * `giveUpAfterMs` (a process stuck in the kernel is reported by the release that follows, not
 * waited for forever).
 */
export async function terminateChild(
  child: ChildProcess,
  exited: Promise<void>,
  killAfterMs: number,
  giveUpAfterMs: number,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await Promise.race([exited, delay(giveUpAfterMs, undefined, { ref: false })]);
  clearTimeout(timer);
}

/** A promise that settles when the child exits (or fails to start). */
export function exitOf(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}
