/**
 * The two ways to configure WireGuard, behind one interface chosen by probing: the kernel's
 * `wireguard` generic netlink family, and the userspace UAPI socket of wireguard-go (or another
 * implementation of https://www.wireguard.com/xplatform/).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsc, existsSync, readFileSync, watch } from 'node:fs';
import { delimiter, join } from 'node:path';
import { OpdbusError, isOpdbusError, silentLogger, type Logger, type NetnsRunner } from '@opdbus/core';
import { GenericNetlink, Rtnetlink, type GenlFamily } from '@opdbus/netlink';
import type { DeviceState, DeviceUpdate } from './device.js';
import { UAPI_SOCKET_DIR, UapiClient } from './uapi.js';
import { WG_CMD, WG_GENL_NAME, deviceAttrs, mergeGetDevice, setDeviceMessages } from './wgNetlink.js';

/** Which backend. */
export type BackendKind = 'kernel' | 'userspace';

/** What both backends do. */
export interface WireguardBackend extends Disposable {
  readonly kind: BackendKind;
  /** For people: how it talks to the devices. */
  readonly detail: string;
  /** The WireGuard interfaces in the target namespace. */
  list(): Promise<string[]>;
  /** A device's configuration and peers; undefined when there is no such WireGuard interface. */
  get(name: string): Promise<DeviceState | undefined>;
  /** Apply a configuration update. */
  set(name: string, update: DeviceUpdate): Promise<void>;
  /** Create the interface (down, no key, no peers). */
  create(name: string): Promise<void>;
  /** Delete the interface (and, for userspace, wait until its implementation has exited). */
  delete(name: string): Promise<void>;
  close(): void;
}

/** Options that choose and configure the backend. */
export interface BackendOptions {
  /** `auto` (default): the kernel family when the kernel has it, else userspace. */
  backend?: 'auto' | BackendKind;
  /**
   * The userspace implementation to start for new interfaces (run as `PROGRAM IFNAME`, as
   * wg-quick's WG_QUICK_USERSPACE_IMPLEMENTATION): default `$OPDBUS_WIREGUARD_GO`, else
   * `wireguard-go` on PATH or in /usr/bin, /usr/local/bin.
   */
  userspaceImplementation?: string;
  /** Where UAPI sockets live (default /var/run/wireguard). */
  socketDir?: string;
  /** How long to wait for a userspace implementation to start or exit (default 10 s). */
  timeoutMs?: number;
}

/** Where op-dbus acts. */
export interface BackendTarget {
  netns: NetnsRunner | undefined;
  logger?: Logger;
}

/** The userspace implementation on this machine, if any (see {@link BackendOptions.userspaceImplementation}). */
export function findUserspaceImplementation(configured?: string): string | undefined {
  const candidate = configured ?? process.env.OPDBUS_WIREGUARD_GO;
  if (candidate !== undefined && candidate !== '') {
    if (candidate.includes('/')) return isExecutable(candidate) ? candidate : undefined;
    return searchPath(candidate);
  }
  return searchPath('wireguard-go');
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
}

function searchPath(name: string): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')),
    '/usr/local/bin',
    '/usr/bin',
    '/usr/local/sbin',
    '/usr/sbin',
  ];
  for (const dir of dirs) {
    const path = join(dir, name);
    if (isExecutable(path)) return path;
  }
  return undefined;
}

/** Run `fn` in the target namespace (or here). */
function inTarget<T>(netns: NetnsRunner | undefined, fn: () => T): T {
  return netns === undefined ? fn() : netns.run(fn);
}

const SO_ACCEPTCON = 0x10000;

/**
 * The UAPI sockets listening in the target namespace: /proc/net/unix lists the sockets of the
 * namespace it is read in, so a socket of the same directory that belongs to a device in another
 * namespace is not mistaken for one here.
 */
export function listUapiSockets(netns: NetnsRunner | undefined, socketDir = UAPI_SOCKET_DIR): string[] {
  const text = inTarget(netns, () => readFileSync('/proc/thread-self/net/unix', 'utf8'));
  const names = new Set<string>();
  const dirs = [socketDir, socketDir.replace(/^\/var\/run\//, '/run/')];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const path = fields[7];
    const flags = Number.parseInt(fields[3] ?? '0', 16);
    if (path === undefined || (flags & SO_ACCEPTCON) === 0 || !path.endsWith('.sock')) continue;
    for (const dir of dirs) {
      if (path.startsWith(`${dir}/`) && !path.slice(dir.length + 1).includes('/'))
        names.add(path.slice(dir.length + 1, -5));
    }
  }
  return [...names].sort();
}

function deviceError(message: string, name: string, cause?: unknown): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_WIREGUARD_DEVICE', message, {
    data: { interface: name, ...(isOpdbusError(cause) ? (cause.data ?? {}) : {}) },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Delete a link over rtnetlink; a link that is gone already is fine. */
async function deleteLink(netns: NetnsRunner | undefined, name: string, logger: Logger): Promise<void> {
  const nl = Rtnetlink.open({ netns, logger });
  try {
    if ((await nl.getLink(name)) === undefined) return;
    await nl.deleteLink(name);
  } catch (err) {
    if (isOpdbusError(err) && (err.data?.errno === 'ENODEV' || err.data?.errno === 'ENOENT')) return;
    throw deviceError(`Cannot delete WireGuard interface ${name}: ${(err as Error).message}`, name, err);
  } finally {
    nl.close();
  }
}

/** The userspace backend: UAPI sockets, new interfaces started with wireguard-go. */
export class UserspaceBackend implements WireguardBackend {
  readonly kind = 'userspace' as const;
  readonly detail: string;
  readonly #netns: NetnsRunner | undefined;
  readonly #program: string | undefined;
  readonly #socketDir: string;
  readonly #timeoutMs: number;
  readonly #logger: Logger;

  constructor(target: BackendTarget, options: BackendOptions = {}) {
    this.#netns = target.netns;
    this.#program = findUserspaceImplementation(options.userspaceImplementation);
    this.#socketDir = options.socketDir ?? UAPI_SOCKET_DIR;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#logger = target.logger ?? silentLogger;
    this.detail = `userspace UAPI sockets in ${this.#socketDir}${this.#program === undefined ? ' (no implementation to create interfaces with)' : `, new interfaces with ${this.#program}`}`;
  }

  #client(name: string): UapiClient {
    return new UapiClient(name, { socketDir: this.#socketDir, timeoutMs: this.#timeoutMs });
  }

  list(): Promise<string[]> {
    return Promise.resolve(listUapiSockets(this.#netns, this.#socketDir));
  }

  async get(name: string): Promise<DeviceState | undefined> {
    if (!listUapiSockets(this.#netns, this.#socketDir).includes(name)) return undefined;
    return this.#client(name).get();
  }

  set(name: string, update: DeviceUpdate): Promise<void> {
    return this.#client(name).set(update);
  }

  async create(name: string): Promise<void> {
    const program = this.#program;
    if (program === undefined) {
      throw new OpdbusError(
        'OPDBUS_ERR_WIREGUARD_UNAVAILABLE',
        `Cannot create WireGuard interface ${name}: the kernel has no wireguard module and no userspace implementation was found; install wireguard-go (\`apt-get install --no-install-recommends wireguard-go\`) or set OPDBUS_WIREGUARD_GO.`,
        { data: { interface: name } },
      );
    }
    const env: NodeJS.ProcessEnv = { ...process.env };
    // wireguard-go forks itself into the background and exits once the device and its UAPI
    // socket exist; its own output goes to /dev/null unless LOG_LEVEL is set.
    delete env.WG_PROCESS_FOREGROUND;
    delete env.LOG_LEVEL;
    const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = inTarget(this.#netns, () =>
        spawn(program, [name], { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true }),
      );
      let output = '';
      const collect = (chunk: Buffer): void => {
        output = (output + chunk.toString('utf8')).slice(-4096);
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      const timer = setTimeout(() => child.kill('SIGKILL'), this.#timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
    if (result.code !== 0 || !listUapiSockets(this.#netns, this.#socketDir).includes(name)) {
      const said = result.output
        .split('\n')
        .filter((l) => l.trim() !== '' && !/[│┌└─]/.test(l))
        .slice(-5)
        .join(' ');
      throw deviceError(
        `Cannot create WireGuard interface ${name}: \`${program} ${name}\` exited with ${result.code ?? 'a signal'}${said === '' ? '' : `: ${said}`}.`,
        name,
      );
    }
    this.#logger.debug({ interface: name, program }, 'started userspace WireGuard device');
  }

  async delete(name: string): Promise<void> {
    const socket = join(this.#socketDir, `${name}.sock`);
    const gone = this.#waitForRemoval(socket);
    await deleteLink(this.#netns, name, this.#logger);
    await gone;
  }

  /** Resolve once the socket file is gone (the implementation exits when its TUN device goes). */
  #waitForRemoval(socket: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!existsSync(socket)) {
        resolve();
        return;
      }
      let watcher: ReturnType<typeof watch> | undefined;
      const check = (): void => {
        if (!existsSync(socket)) done();
      };
      const timer = setTimeout(() => {
        watcher?.close();
        if (!existsSync(socket)) resolve();
        else
          reject(
            deviceError(
              `The userspace WireGuard implementation of ${socket} did not exit within ${this.#timeoutMs} ms of its interface being deleted.`,
              socket,
            ),
          );
      }, this.#timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        watcher?.close();
        resolve();
      };
      try {
        watcher = watch(this.#socketDir, check);
      } catch {
        watcher = undefined;
      }
      check();
    });
  }

  close(): void {
    // Nothing held: each request opens its own connection.
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The kernel backend: the `wireguard` generic netlink family, interfaces created over rtnetlink. */
export class KernelBackend implements WireguardBackend {
  readonly kind = 'kernel' as const;
  readonly detail: string;
  readonly #genl: GenericNetlink;
  readonly #family: GenlFamily;
  readonly #netns: NetnsRunner | undefined;
  readonly #logger: Logger;

  /** @internal Use {@link openBackend}. */
  constructor(genl: GenericNetlink, family: GenlFamily, target: BackendTarget) {
    this.#genl = genl;
    this.#family = family;
    this.#netns = target.netns;
    this.#logger = target.logger ?? silentLogger;
    this.detail = `kernel generic netlink family "${WG_GENL_NAME}" (id ${family.id})`;
  }

  async list(): Promise<string[]> {
    const nl = Rtnetlink.open({ netns: this.#netns, logger: this.#logger });
    try {
      return (await nl.listLinks())
        .filter((l) => l.kind === 'wireguard')
        .map((l) => l.name)
        .sort();
    } finally {
      nl.close();
    }
  }

  async get(name: string): Promise<DeviceState | undefined> {
    try {
      const replies = await this.#genl.request<Record<string, unknown>>(this.#family, WG_CMD.GET_DEVICE, {
        attributes: deviceAttrs,
        data: { ifname: name },
        dump: true,
        description: `get WireGuard device ${name}`,
      });
      return mergeGetDevice(
        name,
        replies.map((r) => r.data),
      );
    } catch (err) {
      const errno = isOpdbusError(err) ? err.data?.errno : undefined;
      if (errno === 'ENODEV' || errno === 'EOPNOTSUPP') return undefined;
      throw err;
    }
  }

  async set(name: string, update: DeviceUpdate): Promise<void> {
    for (const data of setDeviceMessages(name, update)) {
      try {
        await this.#genl.request(this.#family, WG_CMD.SET_DEVICE, {
          attributes: deviceAttrs,
          data,
          description: `configure WireGuard device ${name}`,
        });
      } catch (err) {
        throw deviceError(
          `Cannot configure WireGuard interface ${name}: ${(err as Error).message}`,
          name,
          err,
        );
      }
    }
  }

  async create(name: string): Promise<void> {
    const nl = Rtnetlink.open({ netns: this.#netns, logger: this.#logger });
    try {
      await nl.createLink({ name, kind: 'wireguard' });
    } catch (err) {
      throw deviceError(`Cannot create WireGuard interface ${name}: ${(err as Error).message}`, name, err);
    } finally {
      nl.close();
    }
  }

  delete(name: string): Promise<void> {
    return deleteLink(this.#netns, name, this.#logger);
  }

  close(): void {
    this.#genl.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Open the backend for a target: the kernel family when `options.backend` allows it and the
 * kernel has it, else userspace when an implementation is installed or devices already run.
 * Throws `OPDBUS_ERR_WIREGUARD_UNAVAILABLE` saying what is missing.
 */
export async function openBackend(
  target: BackendTarget,
  options: BackendOptions = {},
): Promise<WireguardBackend> {
  const want = options.backend ?? 'auto';
  let kernelReason = 'not tried';
  if (want !== 'userspace') {
    const genl = GenericNetlink.open({
      netns: target.netns,
      ...(target.logger ? { logger: target.logger } : {}),
    });
    try {
      const family = await genl.family(WG_GENL_NAME);
      return new KernelBackend(genl, family, target);
    } catch (err) {
      genl.close();
      if (!isOpdbusError(err, 'OPDBUS_ERR_GENL_FAMILY')) throw err;
      kernelReason = 'the kernel has no "wireguard" generic netlink family (no module)';
      if (want === 'kernel') {
        throw new OpdbusError(
          'OPDBUS_ERR_WIREGUARD_UNAVAILABLE',
          `The kernel WireGuard backend was asked for, but ${kernelReason}.`,
          {
            cause: err,
          },
        );
      }
    }
  }
  const program = findUserspaceImplementation(options.userspaceImplementation);
  if (
    program === undefined &&
    want === 'auto' &&
    listUapiSockets(target.netns, options.socketDir).length === 0
  ) {
    throw new OpdbusError(
      'OPDBUS_ERR_WIREGUARD_UNAVAILABLE',
      `No WireGuard backend: ${kernelReason}, and no userspace implementation was found (wireguard-go on PATH, or OPDBUS_WIREGUARD_GO); install it with \`apt-get install --no-install-recommends wireguard-go\`.`,
    );
  }
  return new UserspaceBackend(target, options);
}
