/**
 * A small PackageKit client over @opdbus/dbus: one transaction per call (CreateTransaction, then
 * the method), its Package / ErrorCode / Finished signals collected, progress from its
 * PropertiesChanged (Percentage, Status) and ItemProgress signals.
 */
import { OpdbusError, type Logger } from '@opdbus/core';
import type { DbusConnection } from '@opdbus/dbus';

const PK = 'org.freedesktop.PackageKit';
const PK_PATH = '/org/freedesktop/PackageKit';
const TX_IFACE = 'org.freedesktop.PackageKit.Transaction';

/** PackageKit filter bits (1 << PkFilterEnum). */
export const pkFilter = {
  none: 0n,
  installed: 1n << 2n,
  notInstalled: 1n << 3n,
  newest: 1n << 16n,
  arch: 1n << 18n,
} as const;
/** PackageKit transaction flag bits (1 << PkTransactionFlagEnum). */
export const pkFlag = { onlyTrusted: 1n << 1n, allowReinstall: 1n << 4n, allowDowngrade: 1n << 6n } as const;
/** PkInfoEnum values that matter here. */
export const pkInfo = { installed: 1, available: 2 } as const;
/** PkExitEnum success. */
const EXIT_SUCCESS = 1;

/** A package as PackageKit names it: `name;version;arch;data`. */
export interface PkPackage {
  info: number;
  id: string;
  name: string;
  version: string;
  arch: string;
  /** `installed`, `manual:local`, a repository id … */
  data: string;
  summary: string;
}

/** Progress of a transaction, for a progress bar. */
export interface PkProgress {
  /** 0–100, or undefined when PackageKit does not know (it sends 101). */
  percentage: number | undefined;
  /** PackageKit's status enum (PkStatusEnum), e.g. 9 = installing. */
  status: number | undefined;
  /** The package being worked on, when PackageKit says. */
  packageId?: string;
}

export function parsePackageId(info: number, id: string, summary: string): PkPackage {
  const [name = '', version = '', arch = '', data = ''] = id.split(';');
  return { info, id, name, version, arch, data, summary };
}

/** Options of {@link PackageKit.run}. */
export interface RunOptions {
  onProgress?: (progress: PkProgress) => void;
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

/** The PackageKit daemon on one bus. */
export class PackageKit {
  readonly #bus: DbusConnection;
  readonly #logger: Logger;

  constructor(bus: DbusConnection, logger: Logger) {
    this.#bus = bus;
    this.#logger = logger;
  }

  /** PackageKit's version, or throws when it is not on the bus. */
  async version(): Promise<string> {
    const p = await this.#bus.getAllProperties(PK, PK_PATH, PK);
    return `${String(p.VersionMajor)}.${String(p.VersionMinor)}.${String(p.VersionMicro)} (${String(p.BackendName)} backend)`;
  }

  /**
   * The package ids GetDetails answers for `ids`. The apt backend answers an id whose version the
   * archive does not have with the candidate's details, so compare the ids, not the count.
   */
  async detailIds(ids: readonly string[]): Promise<string[]> {
    const found: string[] = [];
    await this.run('GetDetails', 'as', [[...ids]], {}, (member, args) => {
      if (member !== 'Details') return;
      const id = (args[0] as Record<string, unknown>)['package-id'];
      const value = typeof id === 'object' && id !== null && 'value' in id ? id.value : id;
      if (typeof value === 'string') found.push(value);
    });
    return found;
  }

  /**
   * Run one transaction method and wait for Finished. Resolves with the Package signals; rejects
   * with OPDBUS_ERR_PACKAGES_TRANSACTION carrying PackageKit's error code and details.
   */
  async run(
    member: string,
    signature: string,
    body: unknown[],
    options: RunOptions = {},
    onSignal?: (member: string, args: unknown[]) => void,
  ): Promise<PkPackage[]> {
    const [path] = (await this.#bus.call({
      destination: PK,
      path: PK_PATH,
      interface: PK,
      member: 'CreateTransaction',
    })) as [string];
    const packages: PkPackage[] = [];
    let error: { code: number; details: string } | undefined;
    const progress: PkProgress = { percentage: undefined, status: undefined };
    let finish: (exit: number) => void = () => undefined;
    const finished = new Promise<number>((resolve) => {
      finish = resolve;
    });
    const subscription = await this.#bus.subscribe({ sender: PK, path }, (message) => {
      const args = message.body;
      onSignal?.(message.member, args);
      switch (message.member) {
        case 'Package':
          packages.push(parsePackageId(args[0] as number, args[1] as string, args[2] as string));
          break;
        case 'ErrorCode':
          error = { code: args[0] as number, details: args[1] as string };
          break;
        case 'ItemProgress':
          options.onProgress?.({ ...progress, packageId: args[0] as string });
          break;
        case 'PropertiesChanged': {
          const changed = (args[1] ?? {}) as Record<string, unknown>;
          const value = (v: unknown): unknown =>
            typeof v === 'object' && v !== null && 'value' in v ? v.value : v;
          if ('Percentage' in changed) {
            const p = Number(value(changed.Percentage));
            progress.percentage = p > 100 ? undefined : p;
          }
          if ('Status' in changed) progress.status = Number(value(changed.Status));
          if ('Percentage' in changed || 'Status' in changed) options.onProgress?.({ ...progress });
          break;
        }
        case 'Finished':
          finish(args[0] as number);
          break;
        case 'Destroy':
          finish(-1);
          break;
      }
    });
    const timeoutMs = options.timeoutMs ?? 15 * 60_000;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      this.#bus
        .call({ destination: PK, path, interface: TX_IFACE, member: 'Cancel' })
        .catch((err: unknown) =>
          this.#logger.warn({ err, path }, 'cancelling the PackageKit transaction failed'),
        );
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.#bus.call({ destination: PK, path, interface: TX_IFACE, member, signature, body });
      const exit = await Promise.race([
        finished,
        new Promise<number>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no Finished within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      if (exit !== EXIT_SUCCESS || error !== undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_PACKAGES_TRANSACTION',
          `PackageKit ${member} failed${error === undefined ? ` (exit ${exit})` : `: error ${error.code}: ${error.details.trim()}`}.`,
          {
            data: {
              member,
              exit,
              ...(error === undefined ? {} : { pkError: error.code, details: error.details.slice(0, 2000) }),
            },
          },
        );
      }
      return packages;
    } catch (err) {
      if (err instanceof OpdbusError) throw err;
      throw new OpdbusError(
        'OPDBUS_ERR_PACKAGES_TRANSACTION',
        `PackageKit ${member} failed: ${(err as Error).message}.`,
        {
          data: { member, dbusError: (err as OpdbusError).data?.dbusError ?? null },
          cause: err,
        },
      );
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      await subscription.unsubscribe();
    }
  }
}
