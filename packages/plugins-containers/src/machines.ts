/**
 * One D-Bus session with a target's systemd-machined (org.freedesktop.machine1: images and
 * running machines) and systemd (the `systemd-nspawn@NAME.service` units: start, stop, enable,
 * resource properties), with start and stop jobs followed to their JobRemoved signal.
 */
import { OpdbusError, isOpdbusError, type PluginContext } from '@opdbus/core';
import {
  Systemd1Manager,
  Systemd1Service,
  Systemd1Unit,
  Variant,
  connectBus,
  type DbusConnection,
  type Subscription,
} from '@opdbus/dbus';
import { OvsPorts } from './ovs.js';

const MACHINED = 'org.freedesktop.machine1';
const MACHINED_PATH = '/org/freedesktop/machine1';
const MACHINED_MANAGER = 'org.freedesktop.machine1.Manager';
/** systemd's "no limit". */
export const UINT64_MAX = 18446744073709551615n;

/** The unit a machine runs as. */
export const machineUnit = (name: string): string => `systemd-nspawn@${name}.service`;

/** An image as machined lists it. */
export interface ImageInfo {
  name: string;
  type: string;
  readOnly: boolean;
  created: number;
  path: string;
}

/** What systemd says about a machine's unit. */
export interface UnitFacts {
  activeState: string;
  fileState: string;
  cpuQuotaPerSecUSec: bigint;
  memoryMax: bigint;
  tasksMax: bigint;
}

function machineError(message: string, cause?: unknown, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_CONTAINERS_MACHINE', message, {
    data: {
      ...data,
      ...(isOpdbusError(cause) && cause.data?.dbusError !== undefined
        ? { dbusError: cause.data.dbusError }
        : {}),
    },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A session on the target's bus. */
export class MachineSession implements AsyncDisposable {
  readonly bus: DbusConnection;
  readonly manager: Systemd1Manager;
  readonly #jobTimeoutMs: number;
  readonly #done = new Map<string, string>();
  readonly #waiters = new Map<string, (result: string) => void>();
  #jobs: Subscription | undefined;
  readonly #ctx: PluginContext;
  #ovs: Promise<OvsPorts> | undefined;

  private constructor(ctx: PluginContext, bus: DbusConnection, jobTimeoutMs: number) {
    this.#ctx = ctx;
    this.bus = bus;
    this.manager = new Systemd1Manager(bus);
    this.#jobTimeoutMs = jobTimeoutMs;
  }

  /** Connect to the target's bus (`ctx.target.busAddress`, else the system bus). */
  static async open(ctx: PluginContext, jobTimeoutMs: number): Promise<MachineSession> {
    const bus = await connectBus({
      ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
      logger: ctx.logger,
    });
    return new MachineSession(ctx, bus, jobTimeoutMs);
  }

  async #machined(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    try {
      return await this.bus.call({
        destination: MACHINED,
        path: MACHINED_PATH,
        interface: MACHINED_MANAGER,
        member,
        signature,
        body,
        timeoutMs: 300_000,
      });
    } catch (err) {
      throw machineError(
        `systemd-machined refused ${member}${body.length ? `(${body.map((b) => JSON.stringify(b)).join(', ')})` : ''}: ${(err as Error).message}`,
        err,
        { method: member },
      );
    }
  }

  /** The images machined has (hidden ones included). */
  async images(): Promise<ImageInfo[]> {
    const [list] = (await this.#machined('ListImages')) as [
      [string, string, boolean, bigint, bigint, bigint, string][],
    ];
    // Hidden images (".host", names starting with a dot) are not machines' images.
    return list
      .filter(([name]) => !name.startsWith('.'))
      .map(([name, type, readOnly, created, , , path]) => ({
        name,
        type,
        readOnly,
        created: Number(created / 1000n),
        path,
      }));
  }

  /** The running containers' names (machined also lists the host itself, ".host", and VMs). */
  async machines(): Promise<string[]> {
    const [list] = (await this.#machined('ListMachines')) as [[string, string, string, string][]];
    return list.filter(([, klass]) => klass === 'container').map(([name]) => name);
  }

  cloneImage(source: string, name: string): Promise<unknown> {
    return this.#machined('CloneImage', 'ssb', [source, name, false]);
  }

  removeImage(name: string): Promise<unknown> {
    return this.#machined('RemoveImage', 's', [name]);
  }

  /** Follow MachineNew / MachineRemoved. */
  onMachines(handler: (event: 'new' | 'removed', name: string) => void): Promise<Subscription[]> {
    return Promise.all(
      (['MachineNew', 'MachineRemoved'] as const).map((member) =>
        this.bus.subscribe({ interface: MACHINED_MANAGER, member, path: MACHINED_PATH }, (m) => {
          const name = String(m.body[0]);
          if (!name.startsWith('.')) handler(member === 'MachineNew' ? 'new' : 'removed', name);
        }),
      ),
    );
  }

  /** The unit's state, enablement and resource limits. */
  async unit(name: string): Promise<UnitFacts> {
    const unit = machineUnit(name);
    const path = await this.manager.loadUnit(unit);
    const u = new Systemd1Unit(this.bus, { path });
    const s = new Systemd1Service(this.bus, { path });
    const [activeState, fileState, cpu, memory, tasks] = await Promise.all([
      u.get('ActiveState'),
      this.manager.getUnitFileState(unit).catch(() => 'disabled'),
      s.get('CPUQuotaPerSecUSec'),
      s.get('MemoryMax'),
      s.get('TasksMax'),
    ]);
    return {
      activeState,
      fileState,
      cpuQuotaPerSecUSec: BigInt(cpu),
      memoryMax: BigInt(memory),
      tasksMax: BigInt(tasks),
    };
  }

  async #followJobs(): Promise<void> {
    if (this.#jobs !== undefined) return;
    await this.manager.subscribe();
    this.#jobs = await this.manager.onJobRemoved((_id, job, _unit, result) => {
      const waiter = this.#waiters.get(job);
      if (waiter === undefined) this.#done.set(job, result);
      else {
        this.#waiters.delete(job);
        waiter(result);
      }
    });
  }

  /** Run a start or stop job and wait for its result; anything but `done` throws. */
  async job(name: string, kind: 'start' | 'stop'): Promise<void> {
    const unit = machineUnit(name);
    await this.#followJobs();
    let job: string;
    try {
      job =
        kind === 'start'
          ? await this.manager.startUnit(unit, 'replace')
          : await this.manager.stopUnit(unit, 'replace');
    } catch (err) {
      throw machineError(`systemd refused to ${kind} ${unit}: ${(err as Error).message}`, err, { unit });
    }
    const result =
      this.#done.get(job) ??
      (await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiters.delete(job);
          reject(
            machineError(
              `The ${kind} job of ${unit} did not finish within ${this.#jobTimeoutMs} ms.`,
              undefined,
              { unit, job },
            ),
          );
        }, this.#jobTimeoutMs);
        this.#waiters.set(job, (r) => {
          clearTimeout(timer);
          resolve(r);
        });
      }));
    this.#done.delete(job);
    if (result !== 'done') {
      throw machineError(
        `The ${kind} job of machine ${name} (${unit}) ended "${result}"; \`journalctl -u ${unit}\` on the target says why.`,
        undefined,
        { unit, job, result },
      );
    }
  }

  /** Clear a failed unit's state (so a later start is not refused by the start limit). */
  async resetFailed(name: string): Promise<void> {
    await this.manager.resetFailedUnit(machineUnit(name)).catch(() => undefined);
  }

  async setEnabled(name: string, enabled: boolean): Promise<void> {
    const unit = machineUnit(name);
    try {
      if (enabled) await this.manager.enableUnitFiles([unit], false, true);
      else await this.manager.disableUnitFiles([unit], false);
      await this.manager.reload();
    } catch (err) {
      throw machineError(
        `systemd refused to ${enabled ? 'enable' : 'disable'} ${unit}: ${(err as Error).message}`,
        err,
        { unit },
      );
    }
  }

  /** Set resource properties persistently (systemd writes the drop-ins). */
  async setProperties(name: string, properties: [string, bigint][]): Promise<void> {
    if (properties.length === 0) return;
    const unit = machineUnit(name);
    try {
      await this.manager.setUnitProperties(
        unit,
        false,
        properties.map(([k, v]) => [k, new Variant('t', v)]),
      );
    } catch (err) {
      throw machineError(`systemd refused the properties of ${unit}: ${(err as Error).message}`, err, {
        unit,
      });
    }
  }

  /** Remove the drop-ins SetUnitProperties wrote for the unit. */
  async revertProperties(name: string): Promise<void> {
    await this.manager.revertUnitFiles([machineUnit(name)]).catch(() => undefined);
  }

  /** The target's OVSDB (connected on first use, for machines on Open vSwitch bridges). */
  ovs(): Promise<OvsPorts> {
    this.#ovs ??= OvsPorts.open(this.#ctx);
    this.#ovs.catch(() => (this.#ovs = undefined));
    return this.#ovs;
  }

  /** Reload the manager's unit files (after writing a drop-in). */
  async reload(): Promise<void> {
    await this.manager.reload();
  }

  async close(): Promise<void> {
    const ovs = this.#ovs;
    this.#ovs = undefined;
    await ovs?.then((o) => o.close()).catch(() => undefined);
    await this.#jobs?.unsubscribe().catch(() => undefined);
    await this.bus.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
