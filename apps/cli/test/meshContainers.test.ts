// A container on one host reaches a container on another over the mesh, with every part real:
// two hosts, each a Debian container booted with systemd-nspawn (@opdbus/sandbox), so each has
// its own systemd, machined and network stack; an underlay (a veth pair) between them. On each
// host `opdbus` (run in that host's network namespace, with --bus/--root at its system bus and
// root) joins the mesh and applies ONE document: the mesh's WireGuard interface (wireguard-go)
// and routes, a bridge, and a systemd-nspawn machine on that bridge, made through machined by
// the containers plugin. Then the machine on host 1 pings the machine on host 2 through the
// tunnel, and the WireGuard peers' counters show the packets went through it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  probeSandbox,
  startSystemdContainer,
  type CommandResult,
  type SystemdContainer,
} from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { stringify } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliBin, waitForOutput } from './helpers.js';

const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

const WIREGUARD_GO = ['/usr/bin/wireguard-go', '/usr/local/bin/wireguard-go'].find(executable);
const PING = ['/usr/bin/ping', '/bin/ping'].find(executable);

const needs = [
  probeSandbox().container,
  requirement(
    'wireguard-go',
    WIREGUARD_GO !== undefined,
    'wireguard-go is not installed; install it with `apt-get install --no-install-recommends wireguard-go`.',
  ),
  requirement(
    'ping',
    PING !== undefined,
    'ping is not installed (it is bound into the hosts for their machines); install it with `apt-get install iputils-ping`.',
  ),
];

/**
 * The hosts' image: the same package set as the containers plugin's tests
 * (packages/plugins-containers/test/helpers.ts), so both use one cached debootstrap image.
 */
const CONTAINER_PACKAGES = ['systemd-container'];

const tag = randomBytes(3).toString('hex');

interface Host {
  name: string;
  ct: SystemdContainer;
  stateDir: string;
  /** Underlay address. */
  ip: string;
  /** Its WireGuard interface (names are unique: the UAPI socket directory is the machine's). */
  wg: string;
  /** Its container network, 10.200.N.0/24: the bridge is .1, the machine .2. */
  n: number;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** nsenter's arguments that put a command into the host's network namespace only. */
const inNetwork = (host: Host): string[] => [`--net=/proc/${host.ct.leaderPid}/ns/net`, '--'];

function run(file: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 * 1024 * 1024, timeout: 180_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number')
        reject(new Error(`${file} ${args.join(' ')}: ${error.message}`, { cause: error }));
      else resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}

/**
 * `opdbus ARGS` run on a host: in its network namespace, with its own state directory, and for
 * documents, its system bus and root (where machined and the machines' files are).
 */
async function opdbus(host: Host, args: string[], options: { expect?: number } = {}): Promise<string> {
  const r = await run('nsenter', [
    ...inNetwork(host),
    process.execPath,
    cliBin,
    '--state-dir',
    host.stateDir,
    '--bus',
    host.ct.busAddress,
    '--root',
    host.ct.rootDir,
    ...args,
  ]);
  if (r.code !== (options.expect ?? 0))
    throw new Error(`on ${host.name}: opdbus ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Run a command in a host (all of the sandbox container's namespaces); fail unless it exits 0. */
async function must(host: Host, command: string, args: string[]): Promise<string> {
  const r = await host.ct.exec(command, args);
  if (r.code !== 0)
    throw new Error(
      `on ${host.name}: ${command} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`,
    );
  return r.stdout;
}

/**
 * A minimal machine tree at /srv/tiny in the host: the usual directories and the /usr-merge
 * links; the machine binds the host's /usr read-only, so it has its shell, iproute2 and ping.
 */
async function makeTinyTree(host: Host): Promise<void> {
  const dir = host.ct.path('/srv/tiny');
  for (const d of ['usr', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'var', 'root'])
    await mkdir(join(dir, d), { recursive: true });
  for (const link of ['bin', 'sbin', 'lib', 'lib64']) await symlink(`usr/${link}`, join(dir, link));
  await writeFile(join(dir, 'etc/os-release'), 'ID=opdbus-test\nNAME="op-dbus test machine"\n');
}

/** The pids of the wireguard-go processes in a host's network namespace (they run outside its cgroup). */
function wireguardGoIn(host: Host): number[] {
  let ns: string;
  try {
    ns = readlinkSync(`/proc/${host.ct.leaderPid}/ns/net`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (
        readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'wireguard-go' &&
        readlinkSync(`/proc/${entry}/ns/net`) === ns
      )
        pids.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return pids;
}

interface PeerCounters {
  rx: number;
  tx: number;
  handshake: boolean;
}

/** The host's WireGuard peer for `other`, as `opdbus mesh status` reports it. */
async function peerCounters(host: Host, other: Host): Promise<PeerCounters> {
  const status = JSON.parse(await opdbus(host, ['--json', 'mesh', 'status', 'lab'])) as {
    nodes: { name: string; peer?: { rx: string; tx: string; lastHandshake?: string } }[];
  };
  const peer = status.nodes.find((n) => n.name === other.name)?.peer;
  if (peer === undefined) throw new Error(`${host.name} has no WireGuard peer for ${other.name}`);
  return { rx: Number(peer.rx), tx: Number(peer.tx), handshake: peer.lastHandshake !== undefined };
}

/** Where a host's machine is: its leader's pid as the host sees it. */
async function leaderOf(host: Host, machine: string): Promise<string> {
  return (await must(host, 'machinectl', ['show', machine, '-p', 'Leader', '--value'])).trim();
}

/** Ping from inside a machine (all its namespaces: its own network stack, its /usr). */
async function pingFrom(host: Host, machine: string, to: string, count: number): Promise<CommandResult> {
  const leader = await leaderOf(host, machine);
  return host.ct.exec('nsenter', [
    '-t',
    leader,
    '--all',
    '--',
    'ping',
    '-n',
    '-c',
    String(count),
    '-W',
    '5',
    to,
  ]);
}

/** Each ICMP echo of ping's default size is 84 bytes of IP; WireGuard's counters add its own overhead. */
const ECHO_BYTES = 84;

describeIf(
  needs,
  'opdbus mesh: machined machines on two systemd hosts reach each other over wireguard-go',
  () => {
    let base: string;
    const hosts: Host[] = [];
    let server: ChildProcess | undefined;
    const h = (i: number): Host => hosts[i - 1]!;

    beforeAll(async () => {
      base = await mkdtemp(join(tmpdir(), 'opdbus-mesh-ct-'));
      for (const n of [1, 2]) {
        // ping is bound in at its own path (the image has none), so the machines have it too:
        // they bind the host's /usr.
        const ct = await startSystemdContainer({ packages: CONTAINER_PACKAGES, bindReadOnly: [PING!] });
        hosts.push({
          name: `h${n}`,
          ct,
          stateDir: join(base, `h${n}`),
          ip: `192.168.77.${n}`,
          wg: `wc${tag}${n}`,
          n,
        });
      }
      // The underlay: a veth pair made directly between the two hosts' network namespaces.
      const made = await run('ip', [
        'link',
        'add',
        'eth0',
        'netns',
        String(h(1).ct.leaderPid),
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        String(h(2).ct.leaderPid),
      ]);
      if (made.code !== 0) throw new Error(`cannot make the underlay: ${made.stderr}`);
      for (const host of hosts) {
        await must(host, 'ip', ['addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
        await must(host, 'ip', ['link', 'set', 'eth0', 'up']);
        await makeTinyTree(host);
      }
    }, 900_000);

    afterAll(async () => {
      const child = server;
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      for (const host of hosts) {
        // wireguard-go was started by opdbus from here, so it is not in the host's cgroup: delete
        // its interface (it exits when its TUN device goes), and stop whatever is left of it.
        const pids = wireguardGoIn(host);
        await run('nsenter', [...inNetwork(host), 'ip', 'link', 'del', host.wg]).catch(() => undefined);
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // Exited with its interface.
          }
        }
        await host.ct.stop();
      }
      await rm(base, { recursive: true, force: true });
    }, 120_000);

    it('joins the two hosts into a mesh (the control plane over the underlay)', async () => {
      const definition = join(base, 'lab.yaml');
      await writeFile(
        definition,
        [
          'name: lab',
          'pool: 10.99.0.0/24',
          'nodes:',
          ...hosts.map(
            (x) =>
              `  - { name: ${x.name}, endpoint: "${x.ip}:51820", interface: ${x.wg}, subnets: [10.200.${x.n}.0/24] }`,
          ),
          '',
        ].join('\n'),
      );
      expect(
        await opdbus(h(1), ['mesh', 'init', definition, '--node', 'h1', '--url', `http://${h(1).ip}:7800`]),
      ).toMatch(/Created mesh lab .* this node is h1 at 10\.99\.0\.1/);
      server = spawn(
        'nsenter',
        [
          ...inNetwork(h(1)),
          process.execPath,
          cliBin,
          '--state-dir',
          h(1).stateDir,
          'mesh',
          'serve',
          '--listen',
          `${h(1).ip}:7800`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      await waitForOutput(server, /Serving mesh lab on http:\/\//, 'opdbus mesh serve');
      const token = (await opdbus(h(1), ['mesh', 'token', 'lab', '--node', 'h2'])).trim();
      expect(await opdbus(h(2), ['mesh', 'join', token])).toMatch(/Joined mesh lab as h2 at 10\.99\.0\.2/);
    }, 300_000);

    it('each host applies the mesh with its own document in one transaction: a bridge, and a machine on it made through machined', async () => {
      for (const host of hosts) {
        // The host's own part; `mesh apply --with` merges it with the document the roster renders.
        const doc = {
          version: 1,
          plugins: {
            network: {
              links: [{ name: 'ctbr', kind: 'bridge', state: 'up' }],
              addresses: [{ address: `10.200.${host.n}.1/24`, link: 'ctbr' }],
            },
            containers: {
              machines: [
                {
                  name: `app${host.n}`,
                  source: { directory: '/srv/tiny' },
                  boot: false,
                  command: [
                    '/bin/sh',
                    '-c',
                    `ip addr add 10.200.${host.n}.2/24 dev host0 && ip link set host0 up && ip route add default via 10.200.${host.n}.1 && exec sleep infinity`,
                  ],
                  bind: { readOnly: ['/usr'] },
                  network: { bridge: 'ctbr' },
                },
              ],
            },
          },
        };
        const file = join(base, `${host.name}.yaml`);
        await writeFile(file, stringify(doc));
        const applied = await opdbus(host, ['mesh', 'apply', 'lab', '--with', file]);
        expect(applied).toMatch(/wireguard create interface\//);
        expect(applied).toMatch(/network create route\/.*10\.200\.\d\.0\/24/);
        expect(applied).toMatch(
          new RegExp(`containers create machine/app${host.n}|create machine app${host.n}`),
        );
        expect(applied).toMatch(/Committed transaction/);
        // Applied again: nothing left to do.
        expect(await opdbus(host, ['mesh', 'apply', 'lab', '--with', file, '--dry-run'])).toMatch(
          /No changes|0 change/,
        );
        // The node recorded the roster generation it applied, as a plain `mesh apply` does.
        const status = JSON.parse(await opdbus(host, ['--json', 'mesh', 'status', 'lab'])) as {
          generation: number;
          applied: number;
        };
        expect(status.applied).toBe(status.generation);
        // machined runs the machine, its veth's host end is a port of the bridge.
        expect(await must(host, 'machinectl', ['list', '--no-legend', '--no-pager'])).toMatch(
          new RegExp(`^app${host.n}\\s+container\\s+systemd-nspawn`, 'm'),
        );
        expect(await must(host, 'ip', ['-o', 'link', 'show', 'master', 'ctbr'])).toContain(`vb-app${host.n}`);
      }
    }, 600_000);

    it('the machine on h1 pings the machine on h2 through the tunnel, and back', async () => {
      // The host routes the other container network into the tunnel, not onto the underlay.
      expect(await must(h(1), 'ip', ['route', 'get', '10.200.2.2'])).toMatch(
        new RegExp(`via 10\\.99\\.0\\.2 dev ${h(1).wg}`),
      );
      const before1 = await peerCounters(h(1), h(2));
      const before2 = await peerCounters(h(2), h(1));
      const count = 5;
      const there = await pingFrom(h(1), 'app1', '10.200.2.2', count);
      expect(there.code, there.stdout + there.stderr).toBe(0);
      expect(there.stdout).toContain(`${count} received`);
      const back = await pingFrom(h(2), 'app2', '10.200.1.2', count);
      expect(back.code, back.stdout + back.stderr).toBe(0);
      expect(back.stdout).toContain(`${count} received`);
      // Both ways went through WireGuard: each peer sent and received at least the echoes.
      const after1 = await peerCounters(h(1), h(2));
      const after2 = await peerCounters(h(2), h(1));
      expect(after1.handshake && after2.handshake).toBe(true);
      for (const [before, after, who] of [
        [before1, after1, 'h1 → h2'],
        [before2, after2, 'h2 → h1'],
      ] as const) {
        expect(after.tx - before.tx, `${who} tx`).toBeGreaterThanOrEqual(2 * count * ECHO_BYTES);
        expect(after.rx - before.rx, `${who} rx`).toBeGreaterThanOrEqual(2 * count * ECHO_BYTES);
      }
    }, 120_000);
  },
);
