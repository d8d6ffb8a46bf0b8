import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  watch,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  OpdbusError,
  isAlive,
  processStartTime,
  selfIdentity,
  silentLogger,
  type Logger,
  type ProcessIdentity,
} from '@opdbus/core';
import { ConfinedRoot } from '@opdbus/netlink';
import { sandboxDir } from './paths.js';
import type { Registration } from './registry.js';
import { DisposableResource, createRegistered, exitOf, terminateChild } from './resource.js';
import {
  checkedCommand,
  formatCommand,
  requireTool,
  runCommand,
  tailFile,
  type CommandResult,
  checkResult,
  type ExecOptions,
} from './tools.js';

/** Debian packages every container image has (beyond debootstrap's minbase). */
export const CONTAINER_BASE_PACKAGES: readonly string[] = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'iproute2',
  'libpam-systemd',
];

/** Options of {@link ensureDebianRootfs}. */
export interface DebianRootfsOptions {
  /**
   * Where images are cached between runs: `$OPDBUS_SANDBOX_CACHE_DIR`, else
   * `/var/cache/opdbus-sandbox` for root, else `~/.cache/opdbus-sandbox`.
   */
  cacheDir?: string;
  /** Debian suite (default `bookworm`). */
  suite?: string;
  /** Extra packages on top of {@link CONTAINER_BASE_PACKAGES}. */
  packages?: readonly string[];
  /** Debian mirror (default: debootstrap's, or `$OPDBUS_SANDBOX_DEBIAN_MIRROR`). */
  mirror?: string;
  /** How long a debootstrap may take (default 15 minutes). */
  timeoutMs?: number;
  /** Debug logging (default silent). */
  logger?: Logger;
}

/** The default image cache directory (see {@link DebianRootfsOptions.cacheDir}). */
export function defaultCacheDir(): string {
  const fromEnv = process.env.OPDBUS_SANDBOX_CACHE_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return process.getuid?.() === 0 ? '/var/cache/opdbus-sandbox' : join(homedir(), '.cache', 'opdbus-sandbox');
}

/** The image's cache key: suite and package set, so a different set never reuses an image. */
function imageKey(suite: string, packages: readonly string[]): string {
  const hash = createHash('sha256')
    .update(JSON.stringify({ v: 1, suite, packages: [...packages].sort() }))
    .digest('hex')
    .slice(0, 12);
  return `debian-${suite}-minbase-${hash}`;
}

interface LockOwner extends ProcessIdentity {
  host: string;
}

function readLock(file: string): LockOwner | undefined {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof value.pid !== 'number') return undefined;
    return { pid: value.pid, startTime: value.startTime ?? null, host: value.host ?? '' };
  } catch {
    return undefined;
  }
}

/** Take the build lock (O_EXCL); a lock whose owner died is taken over. True when taken. */
function tryLock(file: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      try {
        writeSync(fd, JSON.stringify({ ...selfIdentity(), host: 'local' }));
      } finally {
        closeSync(fd);
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readLock(file);
      if (owner !== undefined && isAlive(owner)) return false;
      // The builder died: its partial image is removed by whoever takes the lock next.
      try {
        unlinkSync(file);
      } catch (unlinkErr) {
        if ((unlinkErr as NodeJS.ErrnoException).code !== 'ENOENT') throw unlinkErr;
      }
    }
  }
  return false;
}

/**
 * Wait until `path` exists or the lock is gone, re-checking on every change in its directory
 * (inotify) and at least every second, with a deadline.
 */
async function waitForImage(path: string, lock: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const ready = (): boolean => existsSync(path);
  while (!ready()) {
    const owner = readLock(lock);
    if (owner === undefined || !isAlive(owner)) return ready();
    if (Date.now() > deadline) return false;
    await new Promise<void>((resolve) => {
      let watcher: ReturnType<typeof watch> | undefined;
      const done = (): void => {
        clearTimeout(timer);
        watcher?.close();
        resolve();
      };
      const timer = setTimeout(done, 1000);
      try {
        watcher = watch(dirname(path), done);
      } catch {
        // The directory cannot be watched: the timer re-checks.
      }
    });
  }
  return true;
}

/**
 * A Debian root filesystem for containers, built once with debootstrap (`--variant=minbase`,
 * systemd, dbus, iproute2, libpam-systemd) and cached in `cacheDir` for later runs and other
 * processes. Concurrent callers wait for one build (a lock file names the builder; a builder
 * that died is taken over). Needs root and `debootstrap`; the first build downloads about 60 MB
 * of packages and takes about a minute. Returns the image directory (never modify it: containers
 * boot on an overlay of it).
 */
export async function ensureDebianRootfs(options: DebianRootfsOptions = {}): Promise<string> {
  const logger = options.logger ?? silentLogger;
  const cacheDir = normalize(options.cacheDir ?? defaultCacheDir());
  const suite = options.suite ?? 'bookworm';
  const packages = [...new Set([...CONTAINER_BASE_PACKAGES, ...(options.packages ?? [])])];
  const key = imageKey(suite, packages);
  const image = join(cacheDir, key);
  if (existsSync(join(image, 'usr/lib/os-release'))) return image;
  mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
  const lock = join(cacheDir, `${key}.lock`);
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  for (;;) {
    if (tryLock(lock)) break;
    logger.info({ image }, 'another process builds the container image; waiting for it');
    if (await waitForImage(image, lock, timeoutMs)) return image;
    if (existsSync(lock) && isAlive(readLock(lock))) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_START',
        `Timed out after ${timeoutMs} ms waiting for another process to build the container image ${image} (lock ${lock}).`,
        { data: { image, lock } },
      );
    }
  }
  try {
    if (existsSync(join(image, 'usr/lib/os-release'))) return image;
    const partial = `${image}.partial`;
    rmSync(partial, { recursive: true, force: true });
    rmSync(image, { recursive: true, force: true });
    const mirror = options.mirror ?? process.env.OPDBUS_SANDBOX_DEBIAN_MIRROR;
    const args = [
      '--variant=minbase',
      `--include=${packages.join(',')}`,
      suite,
      partial,
      ...(mirror === undefined || mirror === '' ? [] : [mirror]),
    ];
    logger.info({ image, args }, 'building the container image with debootstrap (once; cached)');
    const logFile = join(cacheDir, `${key}.debootstrap.log`);
    const started = Date.now();
    const result = await runCommand(requireTool('debootstrap'), args, { timeoutMs });
    writeFileSync(logFile, `${result.stdout}\n${result.stderr}`);
    if (result.code !== 0) {
      rmSync(partial, { recursive: true, force: true });
      const tail = tailFile(join(partial, 'debootstrap/debootstrap.log')) || tailFile(logFile);
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_COMMAND',
        `Building the container image failed: \`${formatCommand('debootstrap', args)}\` ${result.signal === null ? `exited with ${result.code}` : `was killed by ${result.signal}`}; it needs network access to a Debian mirror (set OPDBUS_SANDBOX_DEBIAN_MIRROR to use another). Last lines:\n${tail}`,
        { data: { args, code: result.code, log: logFile } },
      );
    }
    // Every container gets its own machine id (written at boot); the image must not carry one.
    writeFileSync(join(partial, 'etc/machine-id'), '');
    rmSync(join(partial, 'var/lib/dbus/machine-id'), { force: true });
    renameSync(partial, image);
    logger.info({ image, ms: Date.now() - started }, 'container image built');
    return image;
  } finally {
    try {
      unlinkSync(lock);
    } catch (err) {
      logger.warn({ err, lock }, 'could not remove the image build lock');
    }
  }
}

/** Options of {@link startSystemdContainer}. */
export interface SystemdContainerOptions extends DebianRootfsOptions {
  /**
   * Files to write into the container's root before it boots, by absolute path inside the
   * container (e.g. `/etc/systemd/system/demo.service`). Parent directories are created.
   */
  files?: Record<string, string>;
  /** Parent directory of the sandbox directory (default: the OS temp dir). */
  baseDir?: string;
  /** How long to wait for the container's manager to reach "running" (default 60 s). */
  bootTimeoutMs?: number;
  /**
   * Host directories or files to bind read-only into the container at the same path
   * (`--bind-ro=PATH`), e.g. a checkout and the node binary to run op-dbus inside.
   */
  bindReadOnly?: readonly string[];
}

/** The cgroup hierarchies to create the container's own cgroup in. */
function cgroupRoots(): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  return ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'].filter((d) =>
    existsSync(join(d, 'cgroup.procs')),
  );
}

/**
 * A Debian container booted with systemd-nspawn: a real systemd as its PID 1 with its own system
 * bus, reachable from the host at {@link SystemdContainer.busAddress}. Its root is an overlay of
 * the cached image ({@link ensureDebianRootfs}), so every container starts pristine and writes
 * stay in the sandbox directory; {@link SystemdContainer.rootDir} is that root as seen from the
 * host (write unit files there).
 *
 * It runs in its own network namespace (`--private-network`) and in its own cgroup, created
 * before systemd-nspawn starts, so the container's systemd never touches the host's cgroups.
 */
/** A booted container; its `id` is also the machine name. */
export class SystemdContainer extends DisposableResource {
  /** The sandbox directory. */
  readonly dir: string;
  /** The container's root directory as the host sees it (an overlay over the cached image). */
  readonly rootDir: string;
  /** The cached image the root is an overlay of. */
  readonly image: string;
  /** The host directory bound to the container's /run/dbus. */
  readonly busDir: string;
  /** The container's system bus socket on the host. */
  readonly busSocketPath: string;
  /** The D-Bus address of the container's system bus: `unix:path=…/system_bus_socket`. */
  readonly busAddress: string;
  /** The container's machine id (written before boot). */
  readonly machineId: string;
  /** systemd-nspawn's pid. */
  readonly pid: number;
  /** The container's PID 1 (its systemd) as the host sees it. */
  readonly leaderPid: number;
  /** systemd-nspawn's output. */
  readonly logPath: string;
  /** The cgroups it runs in. */
  readonly cgroups: readonly string[];
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #bridge: Promise<{ server: Server; address: string; children: Set<ChildProcess> }> | undefined;

  /** @internal Use {@link startSystemdContainer}. */
  constructor(init: {
    registration: Registration;
    dir: string;
    rootDir: string;
    image: string;
    busDir: string;
    machineId: string;
    leaderPid: number;
    logPath: string;
    child: ChildProcess;
    exited: Promise<void>;
    logger: Logger;
  }) {
    super(init.registration, init.logger);
    this.dir = init.dir;
    this.rootDir = init.rootDir;
    this.image = init.image;
    this.busDir = init.busDir;
    this.busSocketPath = join(init.busDir, 'system_bus_socket');
    this.busAddress = `unix:path=${this.busSocketPath}`;
    this.machineId = init.machineId;
    this.pid = init.child.pid ?? 0;
    this.leaderPid = init.leaderPid;
    this.logPath = init.logPath;
    this.cgroups = init.registration.record.cgroups ?? [];
    this.#child = init.child;
    this.#exited = init.exited;
  }

  protected override get label(): string {
    return `container ${this.id}`;
  }

  /**
   * The host path of an absolute path inside the container, resolved as the container sees it
   * (links in its tree are followed inside the tree, `..` stops at its root): a link the
   * container planted can never point a test at a host file.
   */
  path(inside: string): string {
    using root = ConfinedRoot.open(this.rootDir, { mode: 'in-root', label: `container ${this.id}` });
    return root.hostPath(`/${inside}`);
  }

  /**
   * Run a command inside the container to completion and return its exit code and output, e.g.
   * `await ct.exec('systemctl', ['stop', 'x.service'])`. It enters the namespaces of the
   * container's PID 1 by their files (/proc/LEADER/ns/*) and proves it got there before the command
   * runs: the container's machine id must be what this sandbox wrote. Anything else (a recycled
   * pid, an nsenter that did not enter) throws `OPDBUS_ERR_SANDBOX_EXEC` and the command never
   * runs on the host. With `check: true` a non-zero exit throws `OPDBUS_ERR_SANDBOX_COMMAND` with
   * the command's stderr.
   */
  async exec(
    command: string,
    args: readonly string[] = [],
    options: ExecOptions = {},
  ): Promise<CommandResult> {
    this.assertUsable();
    const [file, argv] = this.#enter(command, args);
    const result = await runCommand(file, argv, {
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    });
    if (result.code === notInsideExit && result.stderr.startsWith(notInsideMarker)) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_EXEC',
        `\`${command}\` was not run: entering container ${this.id} (leader pid ${this.leaderPid}) did not land inside it: ${result.stderr.trim()}`,
        { data: { id: this.id, leaderPid: this.leaderPid, command: [command, ...args] } },
      );
    }
    return options.check === true ? checkResult(result, command, args, `In container ${this.id}`) : result;
  }

  /**
   * The nsenter command line that runs `command` in the container's namespaces, behind a check
   * that runs inside: the machine id must be this container's, else it exits with
   * {@link notInsideExit} without running the command. Before that, the leader's root is checked
   * from the host side, so a recycled leader pid is refused before anything is started.
   */
  #enter(command: string, args: readonly string[]): [string, string[]] {
    const proc = `/proc/${this.leaderPid}`;
    let seen: string;
    try {
      seen = readFileSync(`${proc}/root/etc/machine-id`, 'utf8').trim();
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_EXEC',
        `Cannot enter container ${this.id}: its leader pid ${this.leaderPid} is gone (${(err as Error).message}).`,
        { data: { id: this.id, leaderPid: this.leaderPid }, cause: err },
      );
    }
    if (seen !== this.machineId) {
      throw new OpdbusError(
        'OPDBUS_ERR_SANDBOX_EXEC',
        `Cannot enter container ${this.id}: pid ${this.leaderPid} is not its leader any more (machine id ${seen || 'empty'}, expected ${this.machineId}).`,
        { data: { id: this.id, leaderPid: this.leaderPid } },
      );
    }
    const ns = (kind: string): string => `${proc}/ns/${kind}`;
    return [
      requireTool('nsenter'),
      [
        `--mount=${ns('mnt')}`,
        `--uts=${ns('uts')}`,
        `--ipc=${ns('ipc')}`,
        `--net=${ns('net')}`,
        `--pid=${ns('pid')}`,
        `--cgroup=${ns('cgroup')}`,
        `--root=${proc}/root`,
        `--wd=${proc}/root`,
        '--',
        '/bin/sh',
        '-c',
        insideCheck,
        'opdbus-sandbox-exec',
        this.machineId,
        command,
        ...args,
      ],
    ];
  }

  /**
   * A bus address that reaches the container's system bus from inside the container: each
   * connection to it is relayed by `systemd-stdio-bridge` started in the container's namespaces,
   * so services see a caller in their own pid namespace (logind, for one, refuses callers whose
   * pid it cannot see, as a client on the host side of {@link SystemdContainer.busAddress} is).
   */
  insideBusAddress(): Promise<string> {
    this.#bridge ??= new Promise((resolve, reject) => {
      const socket = join(this.dir, 'bridge.sock');
      const children = new Set<ChildProcess>();
      const server = createServer((client) => {
        let file: string;
        let argv: string[];
        try {
          [file, argv] = this.#enter('/usr/bin/systemd-stdio-bridge', []);
        } catch (err) {
          this.logger.warn({ err, id: this.id }, 'cannot relay a bus connection into the container');
          client.destroy();
          return;
        }
        const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'ignore'] });
        children.add(child);
        child.once('exit', () => {
          children.delete(child);
          client.destroy();
        });
        client.on('error', () => killBridge(child));
        client.once('close', () => killBridge(child));
        child.stdout?.pipe(client);
        if (child.stdin !== null) client.pipe(child.stdin).on('error', () => client.destroy());
      });
      server.once('error', reject);
      server.listen(socket, () => {
        server.unref();
        resolve({ server, address: `unix:path=${socket}`, children });
      });
    });
    return this.#bridge.then((b) => b.address);
  }

  /**
   * Shut the container down: SIGTERM to systemd-nspawn, which halts the container's systemd; the
   * release then kills what is left in its cgroups, unmounts its root and removes its directory
   * and cgroups.
   */
  protected override async shutdown(): Promise<void> {
    const bridge = await this.#bridge?.catch(() => undefined);
    if (bridge !== undefined) {
      for (const child of bridge.children) killBridge(child);
      await new Promise<void>((resolve) => bridge.server.close(() => resolve()));
    }
    await terminateChild(this.#child, this.#exited, 15_000, 20_000);
  }
}

/** Exit code and stderr prefix of the inside check when it finds itself outside the container. */
const notInsideExit = 125;
const notInsideMarker = 'opdbus-sandbox: not inside';
/** Runs first inside the namespaces: `$1` is the expected machine id, the rest the command. */
const insideCheck = `id=$(cat /etc/machine-id 2>/dev/null); if [ "$id" != "$1" ]; then echo "${notInsideMarker} the container (machine id \${id:-none}, expected $1)" >&2; exit ${notInsideExit}; fi; shift; exec "$@"`;

/**
 * Stop a bridge: nsenter forks to enter the pid namespace, so the bridge itself is its child;
 * kill that child first (it would otherwise hold up the container's shutdown), then nsenter.
 */
function killBridge(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const grandchild = childOf(child.pid);
  if (grandchild !== undefined) {
    try {
      process.kill(grandchild, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  child.kill('SIGKILL');
}

/** Read a D-Bus property of the container's manager with dbus-send; undefined when not reachable yet. */
async function managerState(busAddress: string): Promise<string | undefined> {
  const result = await runCommand(
    requireTool('dbus-send'),
    [
      `--bus=${busAddress}`,
      '--print-reply=literal',
      '--reply-timeout=2000',
      '--dest=org.freedesktop.systemd1',
      '/org/freedesktop/systemd1',
      'org.freedesktop.DBus.Properties.Get',
      'string:org.freedesktop.systemd1.Manager',
      'string:SystemState',
    ],
    { timeoutMs: 5000 },
  );
  if (result.code !== 0) return undefined;
  return /variant\s+(\S+)/.exec(result.stdout)?.[1];
}

/** The pid of `parent`'s child process (the container's init), from /proc. */
function childOf(parent: number): number | undefined {
  try {
    const children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/);
    if (children[0] !== undefined && children[0] !== '') return Number(children[0]);
  } catch {
    // No children file (CONFIG_PROC_CHILDREN off): scan /proc.
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) return Number(entry);
    } catch {
      // Gone while we looked.
    }
  }
  return undefined;
}

/**
 * Boot a Debian container with systemd-nspawn and resolve once its systemd reports
 * `running` (or `degraded`) on the container's system bus:
 *
 * `systemd-nspawn -D ROOT -b --register=no --keep-unit --console=passive --private-network
 * --bind=DIR/bus:/run/dbus -M ID`, started inside its own cgroup (created first, the starting
 * shell moved into it before exec), on an overlay of the cached image. The image is built on
 * first use ({@link ensureDebianRootfs}). Needs root, `systemd-nspawn` (systemd-container),
 * `debootstrap` for the first build, `dbus-send` (dbus) and overlayfs.
 *
 * @example
 * ```ts
 * await using ct = await startSystemdContainer();
 * console.log(ct.busAddress); // unix:path=/tmp/opdbus-sbx-…/bus/system_bus_socket
 * ```
 */
export async function startSystemdContainer(
  options: SystemdContainerOptions = {},
): Promise<SystemdContainer> {
  const logger = options.logger ?? silentLogger;
  if (process.getuid?.() !== 0) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_PERMISSION',
      'A systemd-nspawn container needs root (mounts, cgroups, namespaces); run as root.',
    );
  }
  const nspawn = requireTool('systemd-nspawn');
  requireTool('dbus-send');
  const roots = cgroupRoots();
  if (roots.length === 0) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_UNSUPPORTED',
      'No writable cgroup hierarchy under /sys/fs/cgroup: a container needs its own cgroup so that its systemd never touches the host.',
    );
  }
  const image = await ensureDebianRootfs(options);
  return createRegistered(
    'container',
    (id) => ({ dir: sandboxDir(id, options.baseDir), cgroups: roots.map((r) => join(r, id)) }),
    async (registration) => {
      const id = registration.record.id;
      const dir = registration.record.dir ?? '';
      const rootDir = join(dir, 'root');
      const busDir = join(dir, 'bus');
      for (const sub of ['upper', 'work', 'root', 'bus'])
        mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
      await checkedCommand(
        'mount',
        [
          '-t',
          'overlay',
          'overlay',
          '-o',
          `lowerdir=${image},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`,
          rootDir,
        ],
        { what: 'Mounting the container root (overlayfs)' },
      );
      const machineId = randomBytes(16).toString('hex');
      writeFileSync(join(rootDir, 'etc/machine-id'), `${machineId}\n`);
      writeFileSync(join(rootDir, 'etc/hostname'), `${id}\n`);
      {
        using root = ConfinedRoot.open(rootDir, { mode: 'in-root', label: `container ${id}` });
        for (const [path, content] of Object.entries(options.files ?? {}))
          await root.writeFileAtomic(`/${path}`, content, 0o644);
      }
      for (const cgroup of registration.record.cgroups ?? []) mkdirSync(cgroup);
      const logPath = join(dir, 'nspawn.log');
      const args = [
        '-D',
        rootDir,
        '-b',
        '--register=no',
        '--keep-unit',
        '--console=passive',
        '--private-network',
        `--bind=${busDir}:/run/dbus`,
        ...(options.bindReadOnly ?? []).map((path) => {
          if (!isAbsolute(path) || /[:\s]/.test(path))
            throw new OpdbusError(
              'OPDBUS_ERR_SANDBOX_START',
              `bindReadOnly: "${path}" must be an absolute path without ':' or spaces.`,
            );
          return `--bind-ro=${path}`;
        }),
        '-M',
        id,
      ];
      // The starting shell moves itself into the container's cgroups, then becomes systemd-nspawn.
      const script = `for f in ${(registration.record.cgroups ?? []).map((c) => `'${c}/cgroup.procs'`).join(' ')}; do echo $$ > "$f" || exit 99; done; exec "$@"`;
      const logFd = openSync(logPath, 'a');
      let child: ChildProcess;
      try {
        child = spawn('/bin/sh', ['-c', script, 'sh', nspawn, ...args], {
          stdio: ['ignore', logFd, logFd],
          env: { ...process.env, SYSTEMD_LOG_LEVEL: 'info' },
        });
      } finally {
        closeSync(logFd);
      }
      const exited = exitOf(child);
      if (child.pid !== undefined) {
        registration.record.pids.push({ pid: child.pid, startTime: processStartTime(child.pid) });
        registration.save();
      }
      const timeoutMs = options.bootTimeoutMs ?? 60_000;
      const deadline = Date.now() + timeoutMs;
      let state: string | undefined;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new OpdbusError(
            'OPDBUS_ERR_SANDBOX_START',
            `systemd-nspawn exited (${child.signalCode ?? `code ${child.exitCode}`}) before the container booted.\nLast lines of ${logPath}:\n${tailFile(logPath)}`,
            { data: { dir, logPath } },
          );
        }
        if (existsSync(join(busDir, 'system_bus_socket'))) {
          state = await managerState(`unix:path=${join(busDir, 'system_bus_socket')}`);
          if (state === 'running' || state === 'degraded') break;
        }
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new OpdbusError(
            'OPDBUS_ERR_SANDBOX_START',
            `The container's systemd did not reach "running" within ${timeoutMs} ms (last state: ${state ?? 'no bus yet'}).\nLast lines of ${logPath}:\n${tailFile(logPath)}`,
            { data: { dir, logPath, state } },
          );
        }
        // Polling the manager's state over the bus: it answers as soon as it is up.
        await delay(50);
      }
      const leaderPid = child.pid === undefined ? undefined : childOf(child.pid);
      if (leaderPid === undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_SANDBOX_START',
          `Cannot find the container's init process (child of ${child.pid}).`,
          {
            data: { dir, logPath },
          },
        );
      }
      child.unref();
      logger.debug({ id, pid: child.pid, leaderPid, state }, 'sandbox container booted');
      return new SystemdContainer({
        registration,
        dir,
        rootDir,
        image,
        busDir,
        machineId,
        leaderPid,
        logPath,
        child,
        exited,
        logger,
      });
    },
  );
}
