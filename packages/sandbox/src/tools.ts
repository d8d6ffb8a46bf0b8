import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants as fsc,
  fstatSync,
  openSync,
  readSync,
  statSync,
  type Stats,
} from 'node:fs';
import { delimiter, join } from 'node:path';
import { OpdbusError, type NetnsRunner } from '@opdbus/core';

/** The programs the sandboxes start, and the Debian package that ships each. */
export const toolPackages = {
  'dbus-daemon': 'dbus',
  'ovsdb-server': 'openvswitch-switch',
  'ovs-vswitchd': 'openvswitch-switch',
  'ovsdb-tool': 'openvswitch-switch',
  'ovs-vsctl': 'openvswitch-switch',
  'ovs-appctl': 'openvswitch-switch',
  'mkfs.btrfs': 'btrfs-progs',
  mount: 'mount',
  umount: 'mount',
  losetup: 'mount',
  'systemd-nspawn': 'systemd-container',
  debootstrap: 'debootstrap',
  nsenter: 'util-linux',
  'dbus-send': 'dbus',
} as const;

/** A program a sandbox runs. */
export type ToolName = keyof typeof toolPackages;

// sbin directories are searched too: a non-root PATH often lacks them, and the daemons live there.
const extraDirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The absolute path of `name` on PATH (or in the usual sbin/bin directories), or undefined. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')), ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsc.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next.
    }
  }
  return undefined;
}

/** Why `tool` is unavailable, naming the package to install. */
export function missingToolMessage(tool: ToolName): string {
  const pkg = toolPackages[tool];
  return `${tool} is not installed (not on PATH nor in /usr/sbin, /sbin); install it with \`apt-get install ${pkg}\` (Debian package ${pkg}).`;
}

/** The absolute path of `tool`; throws `OPDBUS_ERR_SANDBOX_MISSING_TOOL` naming the package when absent. */
export function requireTool(tool: ToolName): string {
  const path = findTool(tool);
  if (path === undefined) {
    throw new OpdbusError('OPDBUS_ERR_SANDBOX_MISSING_TOOL', missingToolMessage(tool), {
      data: { tool, package: toolPackages[tool] },
    });
  }
  return path;
}

/** Start `file` with `args`, inside `netns` when given (the child is forked from inside the namespace). */
export function spawnIn(
  netns: NetnsRunner | undefined,
  file: string,
  args: readonly string[],
  options: SpawnOptions,
): ChildProcess {
  if (netns === undefined) return spawn(file, args, options);
  return netns.run(() => {
    assertInNetns(netns);
    return spawn(file, args, options);
  });
}

/**
 * Throw unless the calling thread is inside `netns` (its /proc/thread-self/ns/net is the same
 * namespace as the runner's file), so a process meant for a sandbox is never started on the host.
 */
export function assertInNetns(netns: NetnsRunner): void {
  let here: Stats;
  let there: Stats;
  try {
    here = statSync('/proc/thread-self/ns/net');
    there = statSync(netns.path);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_EXEC',
      `Cannot check that this thread entered network namespace ${netns.name}: ${(err as Error).message}; nothing was started.`,
      { data: { netns: netns.name }, cause: err },
    );
  }
  if (here.ino !== there.ino || here.dev !== there.dev) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_EXEC',
      `Entering network namespace ${netns.name} (${netns.path}) did not take effect (this thread is in net:[${here.ino}], the namespace is net:[${there.ino}]); nothing was started.`,
      { data: { netns: netns.name, here: here.ino, there: there.ino } },
    );
  }
}

/** What a finished command did. */
export interface CommandResult {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of a sandbox's `exec`. */
export interface ExecOptions {
  /** Kill the command (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  /** Throw `OPDBUS_ERR_SANDBOX_COMMAND` (with the command's stderr) when it exits non-zero. */
  check?: boolean;
}

/** `result`, or `OPDBUS_ERR_SANDBOX_COMMAND` naming the command, its exit and its output when it failed. */
export function checkResult(
  result: CommandResult,
  command: string,
  args: readonly string[],
  where: string,
): CommandResult {
  if (result.code === 0) return result;
  const output = `${result.stderr}${result.stdout}`.trim().split('\n').slice(-15).join('\n');
  throw new OpdbusError(
    'OPDBUS_ERR_SANDBOX_COMMAND',
    `${where}: \`${formatCommand(command, args)}\` ${result.signal === null ? `exited with ${result.code}` : `was killed by ${result.signal}`}.` +
      (output === '' ? '' : `\n${output}`),
    {
      data: { command: [command, ...args], code: result.code, signal: result.signal, stderr: result.stderr },
    },
  );
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  env?: NodeJS.ProcessEnv;
  netns?: NetnsRunner | undefined;
  /** Kill the command (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
}

const maxOutput = 64 * 1024;

/**
 * Run a command to completion and collect its output (the last 64 KiB of each stream). Resolves
 * on exit whatever the exit code; rejects only when it cannot be started.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawnIn(options.netns, file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout = (stdout + chunk).slice(-maxOutput);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-maxOutput);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' waits for the streams too. A daemon started with --detach closes its inherited
    // stdio once it is ready, so this also waits for readiness.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A command line as a shell would show it (for messages). */
export function formatCommand(file: string, args: readonly string[]): string {
  return [file, ...args]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/**
 * Run a setup command and throw `OPDBUS_ERR_SANDBOX_COMMAND` (with its output) unless it exits 0.
 * A missing program throws `OPDBUS_ERR_SANDBOX_MISSING_TOOL`.
 */
export async function checkedCommand(
  tool: ToolName,
  args: readonly string[],
  options: RunCommandOptions & { what: string; logFile?: string },
): Promise<CommandResult> {
  const file = requireTool(tool);
  const result = await runCommand(file, args, options);
  if (result.code !== 0) {
    const output = `${result.stderr}${result.stdout}`.trim().split('\n').slice(-15).join('\n');
    const log = options.logFile === undefined ? '' : tailFile(options.logFile);
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_COMMAND',
      `${options.what}: \`${formatCommand(file, args)}\` ${result.signal === null ? `exited with ${result.code}` : `was killed by ${result.signal}`}.` +
        (output === '' ? '' : `\n${output}`) +
        (log === '' ? '' : `\nLast lines of ${options.logFile}:\n${log}`),
      { data: { command: [file, ...args], code: result.code, signal: result.signal, stderr: result.stderr } },
    );
  }
  return result;
}

/** The last `lines` lines of a (log) file, '' when it cannot be read. */
export function tailFile(path: string, lines = 20): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 8192);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}
