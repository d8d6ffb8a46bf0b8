// The mesh, end to end, as an operator runs it: network namespaces as hosts on one underlay
// (a bridge in a "switch" namespace), each running `opdbus` inside its own namespace with its
// own state directory, wireguard-go as the WireGuard implementation. The first host controls
// the mesh and serves its API; the others join with tokens.
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf, requirement } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliBin, waitForOutput } from './helpers.js';

const executable = (paths: string[]): boolean =>
  paths.some((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

const needs = [
  probeSandbox().netns,
  requirement(
    'wireguard-go',
    executable(['/usr/bin/wireguard-go', '/usr/local/bin/wireguard-go']),
    'wireguard-go is not installed; install it with `apt-get install --no-install-recommends wireguard-go`.',
  ),
  requirement(
    'wg',
    executable(['/usr/bin/wg', '/usr/local/bin/wg']),
    'wg is not installed (the test cross-checks with it); install it with `apt-get install --no-install-recommends wireguard-tools`.',
  ),
  requirement(
    'ping',
    executable(['/usr/bin/ping', '/bin/ping']),
    'ping is not installed; install it with `apt-get install iputils-ping`.',
  ),
];

interface Host {
  name: string;
  ns: SandboxNetns;
  stateDir: string;
  /** Underlay address. */
  ip: string;
  /** Its WireGuard interface (names are unique: the UAPI socket directory is shared). */
  wg: string;
  /** Mesh address, once known. */
  mesh: string;
}

const tag = randomBytes(3).toString('hex');

async function must(ns: SandboxNetns, command: string, args: string[]): Promise<string> {
  const r = await ns.exec(command, args);
  if (r.code !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `opdbus ARGS` run on a host: inside its namespace, with its state directory. */
async function opdbus(host: Host, ...args: string[]): Promise<string> {
  const r = await host.ns.exec(process.execPath, [cliBin, '--state-dir', host.stateDir, ...args], {
    timeoutMs: 120_000,
  });
  if (r.code !== 0)
    throw new Error(`on ${host.name}: opdbus ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const pings = async (from: SandboxNetns, to: string): Promise<boolean> =>
  (await from.exec('ping', ['-n', '-q', '-c', '1', '-W', '2', to])).code === 0;

describeIf(needs, 'opdbus mesh: four hosts in network namespaces with wireguard-go', () => {
  let base: string;
  let sw: SandboxNetns;
  const hosts: Host[] = [];
  const containers: SandboxNetns[] = [];
  let server: ChildProcess | undefined;
  const h = (i: number): Host => hosts[i - 1]!;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'opdbus-mesh-cli-'));
    sw = await createNetns();
    await must(sw, 'ip', ['link', 'add', 'br0', 'type', 'bridge']);
    await must(sw, 'ip', ['link', 'set', 'br0', 'up']);
    for (let i = 1; i <= 4; i++) {
      const ns = await createNetns();
      const host: Host = {
        name: `h${i}`,
        ns,
        stateDir: join(base, `h${i}`),
        ip: `192.168.77.${i}`,
        wg: `wm${tag}${i}`,
        mesh: '',
      };
      // The host's NIC (eth0) on the underlay switch.
      await must(sw, 'ip', [
        'link',
        'add',
        `p${i}`,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        ns.name,
      ]);
      await must(sw, 'ip', ['link', 'set', `p${i}`, 'master', 'br0', 'up']);
      await must(ns, 'ip', ['addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
      await must(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      hosts.push(host);
    }
    // A client on the subnet behind hosts 1 and 2: a network namespace on a bridge of the host,
    // the host its gateway (10.200.N.0/24 behind host N). Real machines made through machined
    // on such a bridge: meshContainers.test.ts.
    for (const i of [1, 2]) {
      const ct = await createNetns();
      const host = h(i);
      await must(host.ns, 'ip', ['link', 'add', 'ctbr', 'type', 'bridge']);
      await must(host.ns, 'ip', ['addr', 'add', `10.200.${i}.1/24`, 'dev', 'ctbr']);
      await must(host.ns, 'ip', ['link', 'set', 'ctbr', 'up']);
      await must(host.ns, 'ip', [
        'link',
        'add',
        'vct',
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        ct.name,
      ]);
      await must(host.ns, 'ip', ['link', 'set', 'vct', 'master', 'ctbr', 'up']);
      await must(ct, 'ip', ['addr', 'add', `10.200.${i}.2/24`, 'dev', 'eth0']);
      await must(ct, 'ip', ['link', 'set', 'eth0', 'up']);
      await must(ct, 'ip', ['route', 'add', 'default', 'via', `10.200.${i}.1`]);
      containers.push(ct);
    }
  }, 120_000);

  afterAll(async () => {
    server?.kill('SIGTERM');
    for (const ns of [...containers, ...hosts.map((x) => x.ns), sw]) await ns?.destroy();
    await rm(base, { recursive: true, force: true });
  });

  it('plans and applies a mesh of three hosts; every pair pings over the tunnel', async () => {
    const definition = join(base, 'lab.yaml');
    await writeFile(
      definition,
      [
        'name: lab',
        'pool: 10.99.0.0/24',
        'topology: full',
        'nodes:',
        ...[1, 2, 3].map(
          (i) =>
            `  - { name: h${i}, endpoint: "192.168.77.${i}:51820", interface: ${h(i).wg}${i <= 2 ? `, subnets: [10.200.${i}.0/24]` : ''} }`,
        ),
        '',
      ].join('\n'),
    );
    expect(
      await opdbus(h(1), 'mesh', 'init', definition, '--node', 'h1', '--url', `http://${h(1).ip}:7800`),
    ).toMatch(/Created mesh lab .* this node is h1 at 10\.99\.0\.1/);
    server = h(1).ns.spawn(
      process.execPath,
      [cliBin, '--state-dir', h(1).stateDir, 'mesh', 'serve', '--listen', `${h(1).ip}:7800`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    await waitForOutput(server, /Serving mesh lab on http:\/\//, 'opdbus mesh serve');
    for (const i of [2, 3]) {
      const token = (await opdbus(h(1), 'mesh', 'token', 'lab', '--node', `h${i}`)).trim();
      expect(await opdbus(h(i), 'mesh', 'join', token)).toMatch(
        new RegExp(`Joined mesh lab as h${i} at 10\\.99\\.0\\.${i}`),
      );
    }
    await Promise.all([1, 2, 3].map((i) => opdbus(h(i), 'mesh', 'apply', 'lab')));
    for (const host of hosts) host.mesh = `10.99.0.${host.name.slice(1)}`;
    for (const a of [1, 2, 3])
      for (const b of [1, 2, 3])
        if (a !== b) expect(await pings(h(a).ns, h(b).mesh), `h${a} → h${b}`).toBe(true);
    // The document each host applied: one peer per other host, nothing pending.
    const doc = await opdbus(h(2), 'mesh', 'document', 'lab');
    expect(doc.match(/publicKey: /g)?.length).toBe(3); // its own pin and two peers
    expect(await opdbus(h(2), 'mesh', 'apply', 'lab', '--dry-run')).toMatch(/No changes|0 change/);
  }, 300_000);

  it('a subnet behind one host reaches the subnet behind another over the mesh', async () => {
    expect(await pings(containers[0]!, '10.200.2.2')).toBe(true);
    expect(await pings(containers[1]!, '10.200.1.2')).toBe(true);
    // Over the tunnel: the underlay has no route to the container networks.
    expect(await must(h(1).ns, 'ip', ['route', 'get', '10.200.2.2'])).toMatch(
      new RegExp(`via 10\\.99\\.0\\.2 dev ${h(1).wg}`),
    );
  });

  it('a fourth host joins with a token and reaches the others', async () => {
    const token = (await opdbus(h(1), 'mesh', 'token', 'lab', '--ttl', '600')).trim();
    await opdbus(
      h(4),
      'mesh',
      'join',
      token,
      '--node',
      'h4',
      '--endpoint',
      `${h(4).ip}:51820`,
      '--interface',
      h(4).wg,
      '--apply',
    );
    await Promise.all([1, 2, 3].map((i) => opdbus(h(i), 'mesh', 'apply', 'lab')));
    for (const i of [1, 2, 3]) {
      expect(await pings(h(4).ns, h(i).mesh), `h4 → h${i}`).toBe(true);
      expect(await pings(h(i).ns, h(4).mesh), `h${i} → h4`).toBe(true);
    }
    // One-time: the same token does not enroll anyone else.
    const spare: Host = { ...h(3), stateDir: join(base, 'spare') };
    await expect(opdbus(spare, 'mesh', 'join', token, '--node', 'h9')).rejects.toThrow(/was used already/);
  }, 300_000);

  it('a removed host can no longer reach the others, although it still has its configuration', async () => {
    await opdbus(h(1), 'mesh', 'remove', 'lab', 'h3');
    await Promise.all([1, 2, 4].map((i) => opdbus(h(i), 'mesh', 'apply', 'lab')));
    expect(await must(h(3).ns, 'wg', ['show', h(3).wg, 'peers'])).not.toBe(''); // h3 still has its peers…
    for (const i of [1, 2, 4]) expect(await pings(h(3).ns, h(i).mesh), `h3 → h${i}`).toBe(false); // …but nobody accepts it
    for (const i of [1, 2, 4]) expect(await pings(h(i).ns, h(3).mesh), `h${i} → h3`).toBe(false);
    // Applying on h3 itself takes its interface down for good.
    await opdbus(h(3), 'mesh', 'apply', 'lab');
    expect((await h(3).ns.exec('ip', ['link', 'show', h(3).wg])).code).not.toBe(0);
    // The others still reach each other.
    expect(await pings(h(1).ns, h(4).mesh)).toBe(true);
  }, 300_000);

  it('a scheduled key rotation loses at most one ping', async () => {
    const before = (await must(h(2).ns, 'wg', ['show', h(2).wg, 'public-key'])).trim();
    const ping = h(1).ns.spawn('ping', ['-n', '-i', '1', '-W', '1', h(2).mesh], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const replies = new Set<number>();
    let out = '';
    let onReply: (() => void) | undefined;
    ping.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const m of out.matchAll(/icmp_seq=(\d+)/g)) replies.add(Number(m[1]));
      onReply?.();
    });
    const nextReply = (): Promise<void> => new Promise((resolve) => (onReply = resolve));
    try {
      await nextReply();
      // The switch is scheduled far enough ahead for every host to be waiting for it.
      await opdbus(h(2), 'mesh', 'rotate', 'lab', '--in', '25');
      await Promise.all([1, 2, 4].map((i) => opdbus(h(i), 'mesh', 'apply', 'lab', '--wait')));
      const after = (await must(h(2).ns, 'wg', ['show', h(2).wg, 'public-key'])).trim();
      expect(after).not.toBe(before);
      expect(await must(h(1).ns, 'wg', ['show', h(1).wg, 'peers'])).toContain(after);
      // Two more replies after everyone switched, then stop right after a reply.
      await nextReply();
      await nextReply();
    } finally {
      ping.kill('SIGINT');
    }
    const seqs = [...replies].sort((a, b) => a - b);
    const first = seqs[0]!;
    const last = seqs.at(-1)!;
    const lost = last - first + 1 - seqs.length;
    expect(seqs.length).toBeGreaterThan(20);
    expect(lost, `lost pings (replies to ${seqs.join(',')})`).toBeLessThanOrEqual(1);
  }, 300_000);

  it('records every mesh change in the ledgers', async () => {
    const controller = await opdbus(h(1), 'ledger', 'log');
    for (const kind of [
      'mesh.created',
      'mesh.node-enrolled',
      'mesh.token-issued',
      'mesh.node-removed',
      'mesh.key-rotated',
      'mesh.applied',
    ])
      expect(controller, kind).toContain(kind);
    const member = await opdbus(h(2), 'ledger', 'log');
    for (const kind of ['mesh.joined', 'mesh.key-rotation', 'mesh.applied', 'apply'])
      expect(member, kind).toContain(kind);
    expect(await opdbus(h(2), 'ledger', 'verify')).toMatch(/verif/i);
  });
});
