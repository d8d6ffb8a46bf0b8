import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpdbusError, processStartTime, silentLogger, type Logger, type NetnsRunner } from '@opdbus/core';
import type { Registration } from './registry.js';
import { DisposableResource, createRegistered, exitOf, terminateChild } from './resource.js';
import { sandboxDir } from './paths.js';
import { requireTool, spawnIn, tailFile } from './tools.js';

/** Options of {@link startDbusDaemon}. */
export interface DbusDaemonOptions {
  /** Start the daemon inside this network namespace (a {@link SandboxNetns} or any `Netns`). */
  netns?: NetnsRunner;
  /** Extra `<servicedir>` entries (directories of `.service` files for bus activation). */
  serviceDirs?: readonly string[];
  /** Extra `<includedir>` entries (directories of policy fragments, like /etc/dbus-1/system.d). */
  includeDirs?: readonly string[];
  /** Raw XML added inside `<busconfig>` after the generated elements. */
  extraConfig?: string;
  /** Parent directory of the sandbox directory (default: the OS temp dir). */
  baseDir?: string;
  /** How long to wait for the daemon to print its address (default 20 s). */
  timeoutMs?: number;
  /** Debug logging (default silent). */
  logger?: Logger;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The bus configuration: system-bus-like, one unix socket, EXTERNAL auth, everything allowed. */
export function dbusConfig(
  socketPath: string,
  options: Pick<DbusDaemonOptions, 'serviceDirs' | 'includeDirs' | 'extraConfig'> = {},
): string {
  const lines = [
    '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"',
    ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">',
    '<busconfig>',
    '  <type>system</type>',
    `  <listen>unix:path=${xmlEscape(socketPath)}</listen>`,
    '  <auth>EXTERNAL</auth>',
    '  <policy context="default">',
    '    <allow user="*"/>',
    '    <allow own="*"/>',
    '    <allow send_destination="*" eavesdrop="true"/>',
    '    <allow receive_sender="*"/>',
    '    <allow eavesdrop="true"/>',
    '  </policy>',
    ...(options.serviceDirs ?? []).map((d) => `  <servicedir>${xmlEscape(d)}</servicedir>`),
    ...(options.includeDirs ?? []).map((d) => `  <includedir>${xmlEscape(d)}</includedir>`),
    ...(options.extraConfig === undefined ? [] : [options.extraConfig]),
    '</busconfig>',
    '',
  ];
  return lines.join('\n');
}

/**
 * A private dbus-daemon with a system-bus-like configuration and a permissive policy, listening
 * on a unix socket in its own directory. Connect with `dbus-next`'s
 * `sessionBus({ busAddress: daemon.address })` or export `DBUS_SYSTEM_BUS_ADDRESS=address`.
 */
export class DbusDaemon extends DisposableResource {
  /** The bus address printed by the daemon, e.g. `unix:path=/tmp/opdbus-sbx-…/bus.sock,guid=…`. */
  readonly address: string;
  /** The listening socket. */
  readonly socketPath: string;
  /** The daemon's pid. */
  readonly pid: number;
  /** The sandbox directory (config, socket, log). */
  readonly dir: string;
  /** The generated configuration file. */
  readonly configPath: string;
  /** The daemon's stderr. */
  readonly logPath: string;
  /** The namespace the daemon runs in, when one was given. */
  readonly netns: NetnsRunner | undefined;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;

  /** @internal Use {@link startDbusDaemon}. */
  constructor(init: {
    address: string;
    socketPath: string;
    dir: string;
    configPath: string;
    logPath: string;
    netns: NetnsRunner | undefined;
    child: ChildProcess;
    exited: Promise<void>;
    registration: Registration;
    logger: Logger;
  }) {
    super(init.registration, init.logger);
    this.address = init.address;
    this.socketPath = init.socketPath;
    this.pid = init.child.pid ?? 0;
    this.dir = init.dir;
    this.configPath = init.configPath;
    this.logPath = init.logPath;
    this.netns = init.netns;
    this.#child = init.child;
    this.#exited = init.exited;
  }

  protected override get label(): string {
    return `dbus-daemon ${this.id}`;
  }

  /** SIGTERM, SIGKILL after 3 s; the release then removes its directory and record. */
  protected override shutdown(): Promise<void> {
    return terminateChild(this.#child, this.#exited, 3000, 10_000);
  }
}

/**
 * Start a private dbus-daemon and resolve once it listens (when it has printed its address).
 * Needs the `dbus-daemon` program (Debian package dbus); does not need root unless `netns` is
 * given. Throws `OPDBUS_ERR_SANDBOX_MISSING_TOOL` or `OPDBUS_ERR_SANDBOX_START` (with the log).
 *
 * @example
 * ```ts
 * await using bus = await startDbusDaemon();
 * process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address;
 * ```
 */
export async function startDbusDaemon(options: DbusDaemonOptions = {}): Promise<DbusDaemon> {
  const logger = options.logger ?? silentLogger;
  const daemon = requireTool('dbus-daemon');
  return createRegistered(
    'dbus',
    (id) => ({ dir: sandboxDir(id, options.baseDir) }),
    async (registration) => {
      const dir = registration.record.dir ?? '';
      mkdirSync(dir, { mode: 0o755 });
      const socketPath = join(dir, 'bus.sock');
      const configPath = join(dir, 'bus.conf');
      const logPath = join(dir, 'dbus-daemon.log');
      writeFileSync(configPath, dbusConfig(socketPath, options));
      const args = [
        `--config-file=${configPath}`,
        '--nofork',
        '--print-address=1',
        '--print-pid=1',
        '--nopidfile',
      ];
      const logFd = openSync(logPath, 'a');
      let child: ChildProcess;
      try {
        child = spawnIn(options.netns, daemon, args, { stdio: ['ignore', 'pipe', logFd] });
      } finally {
        closeSync(logFd);
      }
      const exited = exitOf(child);
      if (child.pid !== undefined) {
        registration.record.pids.push({ pid: child.pid, startTime: processStartTime(child.pid) });
        registration.save();
      }
      let address: string;
      try {
        address = await readAddress(child, options.timeoutMs ?? 20_000);
      } catch (err) {
        child.kill('SIGKILL');
        await exited;
        const log = tailFile(logPath);
        throw new OpdbusError(
          'OPDBUS_ERR_SANDBOX_START',
          `dbus-daemon did not start (${(err as Error).message}); config ${configPath}.` +
            (log === '' ? '' : `\nLast lines of ${logPath}:\n${log}`),
          { data: { dir, configPath, logPath }, cause: err },
        );
      }
      // The daemon keeps running on its own: do not hold the event loop open for it.
      child.stdout?.destroy();
      child.unref();
      logger.debug({ id: registration.record.id, pid: child.pid, address }, 'sandbox dbus-daemon started');
      return new DbusDaemon({
        address,
        socketPath,
        dir,
        configPath,
        logPath,
        netns: options.netns,
        child,
        exited,
        registration,
        logger,
      });
    },
  );
}

/** Read the two lines `--print-address=1 --print-pid=1` write (address, then pid). */
function readAddress(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdout = child.stdout;
    if (stdout === null) {
      reject(new Error('no stdout pipe'));
      return;
    }
    let text = '';
    const finish = (err: Error | undefined, address?: string): void => {
      clearTimeout(timer);
      stdout.removeListener('data', onData);
      child.removeListener('exit', onExit);
      child.removeListener('error', onError);
      if (err !== undefined) reject(err);
      else resolve(address ?? '');
    };
    const onData = (chunk: string): void => {
      text += chunk;
      const lines = text.split('\n');
      // Complete lines only: the address, then the pid.
      if (lines.length >= 3) {
        const address = lines[0]?.trim() ?? '';
        const pid = Number(lines[1]?.trim());
        if (!address.startsWith('unix:')) finish(new Error(`unexpected output ${JSON.stringify(text)}`));
        else if (pid !== child.pid) finish(new Error(`printed pid ${pid} is not the child's ${child.pid}`));
        else finish(undefined, address);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish(new Error(signal === null ? `it exited with ${code}` : `it was killed by ${signal}`));
    };
    const onError = (err: Error): void => finish(err);
    const timer = setTimeout(
      () => finish(new Error(`it printed no address within ${timeoutMs} ms`)),
      timeoutMs,
    );
    stdout.setEncoding('utf8');
    stdout.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}
