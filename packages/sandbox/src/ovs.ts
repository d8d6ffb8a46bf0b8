import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OpdbusError,
  processStartTime,
  silentLogger,
  type Logger,
  type NetnsRunner,
  type ProcessIdentity,
} from '@opdbus/core';
import { waitGone } from './cleanup.js';
import { createNetns, type SandboxNetns } from './netns.js';
import { sandboxDir } from './paths.js';
import type { Registration } from './registry.js';
import { DisposableResource, createRegistered } from './resource.js';
import { checkedCommand, formatCommand, requireTool, runCommand, tailFile } from './tools.js';

/** Debian's Open_vSwitch schema, the default for {@link startOvs}. */
export const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

/** Options of {@link startOvs}. */
export interface OvsOptions {
  /**
   * Also start ovs-vswitchd with the userspace datapath (default false). It always runs inside a
   * network namespace: `netns` when given, else one created for it (and deleted with it), so the
   * tap devices of `datapath_type=netdev` bridges never appear on the host.
   */
  vswitchd?: boolean;
  /** Run the daemons inside this namespace (a {@link SandboxNetns} or any `Netns`). */
  netns?: NetnsRunner;
  /** The schema the database is created from (default {@link VSWITCH_SCHEMA}). */
  schema?: string;
  /**
   * Create a one-server clustered (Raft) database instead of a standalone one
   * (`ovsdb-tool create-cluster`). Clustered databases keep a transaction history, so
   * `monitor_cond_since` can resume from a transaction id after a reconnect; standalone ones
   * always answer with the full contents. Default false.
   */
  clustered?: boolean;
  /** Parent directory of the sandbox directory (default: the OS temp dir). */
  baseDir?: string;
  /** Bound on each start-up step (default 30 s). */
  timeoutMs?: number;
  /** Debug logging (default silent). */
  logger?: Logger;
}

/**
 * A private ovsdb-server on a fresh Open_vSwitch database (and optionally ovs-vswitchd with the
 * userspace datapath). Everything lives in {@link OvsSandbox.dir}: the database, the sockets, the
 * pid and log files. Talk to it at {@link OvsSandbox.address} (`unix:DIR/db.sock`).
 */
export class OvsSandbox extends DisposableResource {
  /** The sandbox directory. */
  readonly dir: string;
  /** The database file. */
  readonly dbPath: string;
  /** ovsdb-server's client socket. */
  readonly socketPath: string;
  /** The OVSDB address: `unix:DIR/db.sock` (for ovs-vsctl `--db=`, or an OVSDB client). */
  readonly address: string;
  /** The namespace the daemons run in, if any (always set with `vswitchd`). */
  readonly netns: NetnsRunner | undefined;
  /** Whether ovs-vswitchd runs. */
  readonly vswitchd: boolean;
  /** Whether the database is clustered (Raft, one server). */
  readonly clustered: boolean;
  /** ovsdb-server's pid. */
  readonly ovsdbServerPid: number;
  /** ovs-vswitchd's pid, when it runs. */
  readonly vswitchdPid: number | undefined;
  /** The environment OVS tools need to find this instance (OVS_RUNDIR, OVS_LOGDIR, OVS_DBDIR). */
  readonly env: Readonly<Record<'OVS_RUNDIR' | 'OVS_LOGDIR' | 'OVS_DBDIR', string>>;
  readonly #ownedNetns: SandboxNetns | undefined;

  /** @internal Use {@link startOvs}. */
  constructor(init: {
    dir: string;
    netns: NetnsRunner | undefined;
    ownedNetns: SandboxNetns | undefined;
    ovsdbServerPid: number;
    vswitchdPid: number | undefined;
    clustered: boolean;
    registration: Registration;
    logger: Logger;
  }) {
    super(init.registration, init.logger);
    this.dir = init.dir;
    this.dbPath = join(init.dir, 'conf.db');
    this.socketPath = join(init.dir, 'db.sock');
    this.address = `unix:${this.socketPath}`;
    this.netns = init.netns;
    this.vswitchd = init.vswitchdPid !== undefined;
    this.clustered = init.clustered;
    this.ovsdbServerPid = init.ovsdbServerPid;
    this.vswitchdPid = init.vswitchdPid;
    this.env = ovsEnv(init.dir);
    this.#ownedNetns = init.ownedNetns;
  }

  protected override get label(): string {
    return `Open vSwitch sandbox ${this.id}`;
  }

  /**
   * Stop ovs-vswitchd (`exit --cleanup`, which removes its bridges' devices) and ovsdb-server
   * (`exit`); the release makes sure both are gone (SIGTERM/SIGKILL otherwise) and removes the
   * directory.
   */
  protected override async shutdown(): Promise<void> {
    const appctl = requireTool('ovs-appctl');
    const pids = this.registration.record.pids;
    const identity = (pid: number | undefined): ProcessIdentity[] => pids.filter((p) => p.pid === pid);
    if (this.vswitchdPid !== undefined) {
      const ctl = join(this.dir, `ovs-vswitchd.${this.vswitchdPid}.ctl`);
      const result = await runCommand(appctl, ['-t', ctl, 'exit', '--cleanup'], {
        env: { ...process.env, ...this.env },
        timeoutMs: 10_000,
      });
      if (result.code !== 0)
        this.logger.warn({ id: this.id, stderr: result.stderr }, 'ovs-vswitchd did not exit on request');
      await waitGone(identity(this.vswitchdPid), 5000);
    }
    const result = await runCommand(appctl, ['-t', join(this.dir, 'ovsdb-server.ctl'), 'exit'], {
      env: { ...process.env, ...this.env },
      timeoutMs: 10_000,
    });
    if (result.code !== 0)
      this.logger.warn({ id: this.id, stderr: result.stderr }, 'ovsdb-server did not exit on request');
    await waitGone(identity(this.ovsdbServerPid), 5000);
  }

  /** The namespace created for ovs-vswitchd goes after the daemons. */
  protected override async leftovers(): Promise<string[]> {
    try {
      await this.#ownedNetns?.destroy();
      return [];
    } catch (err) {
      return [(err as Error).message];
    }
  }
}

function ovsEnv(dir: string): Record<'OVS_RUNDIR' | 'OVS_LOGDIR' | 'OVS_DBDIR', string> {
  return { OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
}

function readPidfile(path: string): number {
  const pid = Number(readFileSync(path, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${path} holds no pid`);
  return pid;
}

/** Start a daemon that detaches once ready (`--detach`) and return its pid from its pidfile. */
async function startDetached(
  tool: 'ovsdb-server' | 'ovs-vswitchd',
  args: readonly string[],
  context: {
    dir: string;
    netns: NetnsRunner | undefined;
    logFile: string;
    pidFile: string;
    timeoutMs: number;
    registration: Registration;
  },
): Promise<number> {
  const file = requireTool(tool);
  // --detach: the command returns only once the daemon is ready (or has failed).
  const result = await runCommand(file, args, {
    env: { ...process.env, ...ovsEnv(context.dir) },
    netns: context.netns,
    timeoutMs: context.timeoutMs,
  });
  let pid: number | undefined;
  try {
    pid = readPidfile(context.pidFile);
  } catch {
    pid = undefined;
  }
  if (pid !== undefined) {
    context.registration.record.pids.push({ pid, startTime: processStartTime(pid) });
    context.registration.save();
  }
  if (result.code !== 0 || pid === undefined) {
    const log = tailFile(context.logFile);
    const output = `${result.stderr}${result.stdout}`.trim().split('\n').slice(-10).join('\n');
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_START',
      `${tool} did not start: \`${formatCommand(file, args)}\` ${result.signal === null ? `exited with ${result.code}` : `was killed by ${result.signal}`}` +
        `${pid === undefined ? ' and wrote no pidfile' : ''}.` +
        (output === '' ? '' : `\n${output}`) +
        (log === '' ? '' : `\nLast lines of ${context.logFile}:\n${log}`),
      { data: { tool, dir: context.dir, logFile: context.logFile, code: result.code } },
    );
  }
  return pid;
}

/**
 * Start ovsdb-server on a fresh database created from the Open_vSwitch schema, initialise it
 * (`ovs-vsctl init`), and with `{ vswitchd: true }` start ovs-vswitchd (userspace datapath) inside
 * a network namespace. Resolves once the daemons are ready (their `--detach` returns only then).
 *
 * Needs the Debian package openvswitch-switch; ovs-vswitchd needs root (network namespace, tap
 * devices). Throws `OPDBUS_ERR_SANDBOX_MISSING_TOOL`, `OPDBUS_ERR_SANDBOX_COMMAND` or
 * `OPDBUS_ERR_SANDBOX_START` (with the daemon's log tail); nothing is left behind on failure.
 *
 * @example
 * ```ts
 * await using ovs = await startOvs({ vswitchd: true });
 * // ovs-vsctl --db=${ovs.address} add-br br0 -- set bridge br0 datapath_type=netdev
 * ```
 */
export async function startOvs(options: OvsOptions = {}): Promise<OvsSandbox> {
  const logger = options.logger ?? silentLogger;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const schema = options.schema ?? VSWITCH_SCHEMA;
  for (const tool of [
    'ovsdb-tool',
    'ovsdb-server',
    'ovs-vsctl',
    'ovs-appctl',
    ...(options.vswitchd === true ? (['ovs-vswitchd'] as const) : []),
  ] as const) {
    requireTool(tool);
  }
  if (!existsSync(schema)) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_MISSING_TOOL',
      `The OVSDB schema ${schema} does not exist; install it with \`apt-get install openvswitch-switch\` or pass \`schema\`.`,
      {
        data: { schema, package: 'openvswitch-switch' },
      },
    );
  }
  return createRegistered(
    'ovs',
    (id) => ({ dir: sandboxDir(id, options.baseDir) }),
    async (registration) => {
      const dir = registration.record.dir ?? '';
      let ownedNetns: SandboxNetns | undefined;
      try {
        mkdirSync(dir, { mode: 0o755 });
        if (options.vswitchd === true && options.netns === undefined)
          ownedNetns = await createNetns({ logger });
        const netns = options.netns ?? ownedNetns;
        const env = { ...process.env, ...ovsEnv(dir) };
        const dbPath = join(dir, 'conf.db');
        const socketPath = join(dir, 'db.sock');
        const clustered = options.clustered === true;
        const createArgs = clustered
          ? ['create-cluster', dbPath, schema, `unix:${join(dir, 'raft.sock')}`]
          : ['create', dbPath, schema];
        await checkedCommand('ovsdb-tool', createArgs, {
          what: 'Creating the OVSDB database',
          env,
          timeoutMs,
        });
        const serverLog = join(dir, 'ovsdb-server.log');
        const ovsdbServerPid = await startDetached(
          'ovsdb-server',
          [
            dbPath,
            `--remote=punix:${socketPath}`,
            '--remote=db:Open_vSwitch,Open_vSwitch,manager_options',
            // As ovs-ctl starts it: TLS settings come from the SSL table (used by ssl:/pssl: remotes).
            '--private-key=db:Open_vSwitch,SSL,private_key',
            '--certificate=db:Open_vSwitch,SSL,certificate',
            '--ca-cert=db:Open_vSwitch,SSL,ca_cert',
            `--unixctl=${join(dir, 'ovsdb-server.ctl')}`,
            `--pidfile=${join(dir, 'ovsdb-server.pid')}`,
            `--log-file=${serverLog}`,
            '--detach',
            '--no-chdir',
          ],
          { dir, netns, logFile: serverLog, pidFile: join(dir, 'ovsdb-server.pid'), timeoutMs, registration },
        );
        await checkedCommand('ovs-vsctl', [`--db=unix:${socketPath}`, '--no-wait', 'init'], {
          what: 'Initialising the Open_vSwitch database',
          env,
          timeoutMs,
          logFile: serverLog,
        });
        let vswitchdPid: number | undefined;
        if (options.vswitchd === true) {
          const log = join(dir, 'ovs-vswitchd.log');
          vswitchdPid = await startDetached(
            'ovs-vswitchd',
            [
              `unix:${socketPath}`,
              `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`,
              `--log-file=${log}`,
              '--detach',
              '--no-chdir',
            ],
            { dir, netns, logFile: log, pidFile: join(dir, 'ovs-vswitchd.pid'), timeoutMs, registration },
          );
        }
        logger.debug(
          { id: registration.record.id, dir, ovsdbServerPid, vswitchdPid, netns: netns?.name },
          'sandbox ovs started',
        );
        return new OvsSandbox({
          dir,
          netns,
          ownedNetns,
          ovsdbServerPid,
          vswitchdPid,
          clustered,
          registration,
          logger,
        });
      } catch (err) {
        if (ownedNetns !== undefined)
          await ownedNetns
            .destroy()
            .catch((e: unknown) => logger.warn({ err: e }, 'sandbox netns cleanup failed'));
        throw err;
      }
    },
  );
}
