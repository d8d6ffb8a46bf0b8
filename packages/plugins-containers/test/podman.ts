import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requirement } from '@opdbus/sandbox';
import { PodmanClient } from '../src/podman.js';

const run = promisify(execFile);
const which = (tool: string): boolean =>
  ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, tool)));

/** What the Podman tests need. */
export const podmanReady = requirement(
  'podman',
  process.getuid?.() === 0 && which('podman') && which('runc'),
  'podman and runc are needed (apt-get install --no-install-recommends podman runc), as root',
);

/** The image every test container runs: sleep(1) and the libraries it needs, imported from a tarball. */
export const TINY_IMAGE = 'localhost/tiny:1';

/**
 * A private Podman: its own storage (--root/--runroot), run and volume directories, events log
 * and CNI directory, all under DIR, so the host's Podman state is never touched. runc, because
 * crun refuses this machine's hybrid cgroup hierarchy; cgroupfs, because no systemd runs the host;
 * ulimits within what this process may set (it lacks CAP_SYS_RESOURCE).
 */
function containersConf(dir: string): string {
  return `[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
tmp_dir = "${dir}/tmp"
volume_path = "${dir}/volumes"
[network]
network_config_dir = "${dir}/cni"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
`;
}

/** A running private `podman system service`, and the podman(1) command line that shares its state. */
export interface PodmanService {
  /** The directory everything lives in; the socket is at DIR/run/podman/podman.sock (a target root). */
  dir: string;
  socket: string;
  /** Run podman(1) on the same storage (for setup and cross-checks). */
  podman(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Start a private Podman service with {@link TINY_IMAGE} imported. */
export async function startPodman(): Promise<PodmanService> {
  const dir = await mkdtemp(join(tmpdir(), 'opdbus-podman-'));
  const socket = join(dir, 'run/podman/podman.sock');
  await mkdir(join(dir, 'run/podman'), { recursive: true });
  await writeFile(join(dir, 'containers.conf'), containersConf(dir));
  const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') };
  const globals = [
    '--root',
    join(dir, 'storage'),
    '--runroot',
    join(dir, 'runroot'),
    '--storage-driver',
    'overlay',
  ];
  const podman = async (...args: string[]): Promise<string> =>
    (await run('podman', [...globals, ...args], { env })).stdout.trim();
  let service: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    await podman('rm', '-af', '-t', '0').catch(() => undefined);
    if (service !== undefined && service.exitCode === null) {
      const exited = new Promise((r) => service!.once('exit', r));
      service.kill('SIGTERM');
      await exited;
    }
    await podman('system', 'reset', '-f').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    // The cgroups the cgroupfs manager made (libpod_parent in each hierarchy), once empty: rmdir
    // fails on a cgroup with processes or children, so another Podman's containers keep theirs.
    for (const h of await readdir('/sys/fs/cgroup').catch(() => []))
      await run('find', [
        `/sys/fs/cgroup/${h}/libpod_parent`,
        '-depth',
        '-type',
        'd',
        '-exec',
        'rmdir',
        '{}',
        ';',
      ]).catch(() => undefined);
  };
  try {
    await run('tar', [
      '-h',
      '-C',
      '/',
      '-cf',
      join(dir, 'tiny.tar'),
      'usr/bin/sleep',
      'lib/x86_64-linux-gnu/libc.so.6',
      'lib64/ld-linux-x86-64.so.2',
    ]);
    await podman('import', '-q', join(dir, 'tiny.tar'), TINY_IMAGE);
    service = spawn('podman', [...globals, 'system', 'service', '--time=0', `unix://${socket}`], {
      env,
      stdio: 'ignore',
    });
    // Ready when it answers.
    const client = new PodmanClient(socket);
    for (let i = 0; ; i++) {
      try {
        await client.version();
        break;
      } catch (err) {
        if (i > 400 || service.exitCode !== null) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, socket, podman, stop };
}
