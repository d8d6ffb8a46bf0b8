import { posix } from 'node:path';
import { OpdbusError, type PluginContext } from '@opdbus/core';
import { ConfinedRoot } from '@opdbus/netlink';
import {
  Systemd1Manager,
  connectBus,
  escapePathElement,
  type DbusConnection,
  type Subscription,
} from '@opdbus/dbus';

/** The manager's D-Bus name and object. */
export const SYSTEMD_DEST = 'org.freedesktop.systemd1';
export const MANAGER_PATH = '/org/freedesktop/systemd1';

/** The object path of a unit (`dbus.service` → `/org/freedesktop/systemd1/unit/dbus_2eservice`). */
export function unitPath(name: string): string {
  return `${MANAGER_PATH}/unit/${escapePathElement(name)}`;
}

/** Options shared by the plugin's operations. */
export interface ManagerOptions {
  /** The unit directory below the root (default /etc/systemd/system). */
  unitDir: string;
  /** How long to wait for a job (default 90 s, systemd's default start timeout). */
  jobTimeoutMs: number;
}

/**
 * One connection to a systemd manager for one plugin operation, with the unit files' directory
 * under the target's root (checked to belong to this manager) and job waiting on JobRemoved.
 */
export class ManagerSession implements AsyncDisposable {
  readonly bus: DbusConnection;
  readonly manager: Systemd1Manager;
  readonly root: string;
  readonly options: ManagerOptions;
  readonly #jobs = new Map<string, string>();
  readonly #waiters = new Map<string, (result: string) => void>();
  #jobSubscription: Subscription | undefined;
  #rootChecked = false;
  #confined: ConfinedRoot | undefined;

  private constructor(bus: DbusConnection, root: string, options: ManagerOptions) {
    this.bus = bus;
    this.manager = new Systemd1Manager(bus);
    this.root = root;
    this.options = options;
  }

  /** Connect to the target's bus (`ctx.target.busAddress`, else the system bus). */
  static async open(ctx: PluginContext, options: ManagerOptions): Promise<ManagerSession> {
    const bus = await connectBus({
      ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
      logger: ctx.logger,
    });
    return new ManagerSession(bus, posix.normalize(ctx.target.root ?? '/'), options);
  }

  /**
   * The admin unit directory, as a path inside the target's root (`/etc/systemd/system`). Every
   * file path of a session is inside the root: it is resolved as under chroot(2) (absolute links
   * and `..` in the target's tree stay in the tree; see `ConfinedRoot` of @opdbus/netlink), so a
   * container's tree cannot redirect a write to the host.
   */
  get unitDir(): string {
    return posix.join('/', this.options.unitDir);
  }

  /** The directory systemd persists SetUnitProperties in for a unit (/etc/systemd/system.control/NAME.d). */
  controlDir(unit: string): string {
    return posix.join('/etc/systemd/system.control', `${unit}.d`);
  }

  /** A path inside the root as seen from here, for messages. */
  display(path: string): string {
    return this.root === '/' ? path : `${this.root}${path}`;
  }

  #fs(): ConfinedRoot {
    if (this.#confined === undefined) {
      try {
        this.#confined = ConfinedRoot.open(this.root, {
          mode: 'in-root',
          label: `the target root ${this.root}`,
        });
      } catch (err) {
        throw new OpdbusError(
          'OPDBUS_ERR_SYSTEMD_ROOT',
          `Cannot open the target root ${this.root}: ${(err as Error).message}. Pass the target's root with --root.`,
          { data: { root: this.root }, cause: err },
        );
      }
    }
    return this.#confined;
  }

  /**
   * Refuse to touch files unless ROOT/etc/machine-id is the manager's machine id: a wrong --root
   * (or none, with --bus pointing at a container) would write into the wrong system.
   */
  async checkRoot(): Promise<void> {
    if (this.#rootChecked) return;
    let local: string;
    try {
      local = ((await this.#fs().readFile('/etc/machine-id', 4096)) ?? '').trim();
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_ROOT',
        `Cannot read ${this.display('/etc/machine-id')} to check that ${this.root} is the root of the targeted systemd: ${(err as Error).message}. Pass the target's root with --root.`,
        { data: { root: this.root }, cause: err },
      );
    }
    const remote = await this.bus.peerMachineId(SYSTEMD_DEST, MANAGER_PATH);
    if (local !== remote) {
      // A machine id is 32 hex digits; anything else in that file is not quoted back.
      const shown = /^[0-9a-f]{32}$/.test(local) ? local : local === '' ? '(empty)' : '(not a machine id)';
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_ROOT',
        `${this.root} is not the root of the systemd at ${this.bus.address} (machine id ${shown} here, ${remote} there); unit files would land on the wrong system. Pass the target's root with --root.`,
        { data: { root: this.root, address: this.bus.address, local: shown, remote } },
      );
    }
    this.#rootChecked = true;
  }

  /** Read a file (a path inside the root; null when absent). */
  async readFile(path: string): Promise<string | null> {
    try {
      return await this.#fs().readFile(path);
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_FILE',
        `Cannot read ${this.display(path)}: ${(err as Error).message}.`,
        { data: { file: this.display(path) }, cause: err },
      );
    }
  }

  /** Write (content) or remove (null) a file atomically; returns whether anything changed. */
  async writeFile(path: string, content: string | null): Promise<boolean> {
    await this.checkRoot();
    const now = await this.readFile(path);
    if (now === content) return false;
    try {
      if (content === null) {
        await this.#fs().removeFile(path);
        // Remove a drop-in directory left empty.
        if (posix.dirname(path).endsWith('.d')) await this.#fs().removeEmptyDir(posix.dirname(path));
      } else {
        await this.#fs().writeFileAtomic(path, content, 0o644);
      }
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_FILE',
        `Cannot ${content === null ? 'remove' : 'write'} ${this.display(path)}: ${(err as Error).message}.`,
        {
          data: { file: this.display(path) },
          cause: err,
        },
      );
    }
    return true;
  }

  /** The regular files in a directory (a path inside the root) with their content ({} when it does not exist). */
  async readDir(dir: string): Promise<Record<string, string>> {
    const entries = (await this.#fs().readDir(dir)) ?? {};
    const out: Record<string, string> = {};
    for (const name of Object.keys(entries).sort()) {
      if (entries[name] !== 'file') continue;
      const text = await this.readFile(posix.join(dir, name));
      if (text !== null) out[name] = text;
    }
    return out;
  }

  /** daemon-reload: systemd replies once the reload is done. */
  async reload(): Promise<void> {
    await this.bus.call({
      destination: SYSTEMD_DEST,
      path: MANAGER_PATH,
      interface: 'org.freedesktop.systemd1.Manager',
      member: 'Reload',
      timeoutMs: 120_000,
    });
  }

  async #followJobs(): Promise<void> {
    if (this.#jobSubscription !== undefined) return;
    await this.manager.subscribe();
    this.#jobSubscription = await this.manager.onJobRemoved((_id, job, _unit, result) => {
      const waiter = this.#waiters.get(job);
      if (waiter !== undefined) {
        this.#waiters.delete(job);
        waiter(result);
      } else this.#jobs.set(job, result);
    });
  }

  /**
   * Run a job (StartUnit, StopUnit, …) and wait for its JobRemoved signal: resolves with the
   * result (`done`, `failed`, `canceled`, `timeout`, `dependency`, `skipped`). Never sleeps.
   */
  async runJob(unit: string, what: string, start: () => Promise<string>): Promise<string> {
    await this.#followJobs();
    const job = await start();
    const early = this.#jobs.get(job);
    if (early !== undefined) {
      this.#jobs.delete(job);
      return early;
    }
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(job);
        reject(
          new OpdbusError(
            'OPDBUS_ERR_SYSTEMD_JOB_FAILED',
            `The ${what} job of ${unit} (${job}) did not finish within ${this.options.jobTimeoutMs} ms.`,
            {
              data: { unit, job, result: 'timeout' },
            },
          ),
        );
      }, this.options.jobTimeoutMs);
      this.#waiters.set(job, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
  }

  async close(): Promise<void> {
    this.#confined?.close();
    this.#confined = undefined;
    await this.#jobSubscription?.unsubscribe().catch(() => undefined);
    await this.bus.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
