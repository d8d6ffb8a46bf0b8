import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from './helpers.js';
import { describeIf, requirement } from '@opdbus/sandbox/testing';

const asRoot = requirement('root', process.getuid?.() === 0, 'this test needs root; run the tests as root');

/** The example of the network issue, exactly as written there. */
const ISSUE_EXAMPLE = `version: 1
plugins:
  network:
    links:
      - { name: br0, kind: bridge, state: up, mtu: 1500 }
      - { name: veth0, kind: veth, peer: veth0p, master: br0, state: up }
      - { name: vx100, kind: vxlan, vxlan: { id: 100, local: 10.0.0.1, port: 4789 }, master: br0, state: up }
    addresses:
      - { link: br0, address: 10.0.0.1/24 }
      - { link: br0, address: fd00::1/64 }
    routes:
      - { to: 10.9.0.0/16, via: 10.0.0.254, metric: 100 }
`;

describeIf(asRoot, 'opdbus with the network plugin, in a fresh namespace', () => {
  let netns: SandboxNetns;
  let dir: string;
  let stateDir: string;
  const cli = (...args: string[]) => runCli(['--netns', netns.name, '--state-dir', stateDir, ...args]);
  const file = async (name: string, body: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, body);
    return path;
  };

  beforeAll(async () => {
    netns = await createNetns();
    dir = await mkdtemp(join(tmpdir(), 'opdbus-cli-network-'));
    stateDir = join(dir, 'state');
  });
  afterAll(async () => {
    await netns?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('the schema has the network section', async () => {
    const result = await runCli(['schema']);
    const schema = JSON.parse(result.stdout) as {
      properties: { plugins: { properties: Record<string, unknown> } };
    };
    expect(Object.keys(schema.properties.plugins.properties)).toEqual(
      expect.arrayContaining(['sysctl', 'network']),
    );
  });

  it('a scoped query loads no zod and builds no schema; a diff of its output, which validates, does', async () => {
    const env = { OPDBUS_DEBUG_CHUNKS: '1' };
    const scripts = (stderr: string): string[] =>
      (/opdbus: scripts run: (.*);/.exec(stderr)?.[1] ?? '').split(', ').filter((s) => s !== '');
    const queried = await runCli(
      ['--netns', netns.name, '--state-dir', stateDir, 'query', '--plugin', 'network'],
      { env },
    );
    expect(queried.code, queried.stderr).toBe(0);
    expect(queried.stdout).toContain('name: lo');
    const ran = scripts(queried.stderr);
    expect(ran.some((s) => s.startsWith('chunks/query-'))).toBe(true);
    expect(ran.filter((s) => s.includes('zod'))).toEqual([]);
    const document = await file('queried.yaml', queried.stdout);
    const diffed = await runCli(['--netns', netns.name, '--state-dir', stateDir, 'diff', document], { env });
    expect(diffed.code, diffed.stderr).toBe(0);
    expect(scripts(diffed.stderr).some((s) => /^chunks\/zod-/.test(s))).toBe(true);
  });

  it("applies the issue's example as written; then diff reports no change (exit 0)", async () => {
    const example = await file('issue.yaml', ISSUE_EXAMPLE);
    const pending = await cli('diff', example);
    expect(pending.code).toBe(2);
    expect(pending.stdout).toMatch(/6 change\(s\)/);
    const applied = await cli('apply', example);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/Verified/);
    expect(applied.stdout).toMatch(/Committed transaction/);
    const after = await cli('diff', example);
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(after.stdout).toContain('No changes');
    const links = await netns.exec('ip', ['-j', '-d', 'link', 'show']);
    const byName = new Map(
      (JSON.parse(links.stdout) as { ifname: string; master?: string; mtu: number }[]).map((l) => [
        l.ifname,
        l,
      ]),
    );
    expect(byName.get('veth0')?.master).toBe('br0');
    expect(byName.get('vx100')?.master).toBe('br0');
    expect(byName.get('br0')?.mtu).toBe(1500);
    const routes = await netns.exec('ip', ['route', 'show', '10.9.0.0/16']);
    expect(routes.stdout).toContain('10.9.0.0/16 via 10.0.0.254 dev br0 proto static metric 100');
  });

  it('query --plugin network, fed back to diff, shows no change', async () => {
    const query = await cli('query', '--plugin', 'network');
    expect(query.code).toBe(0);
    expect(query.stdout).toContain('name: vx100');
    const roundTrip = await file('query.yaml', query.stdout);
    const again = await cli('diff', roundTrip);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('diff and apply take a directory: its documents merged as opdbusd merges them, as one transaction', async () => {
    const docs = join(dir, 'desired.d');
    await mkdir(docs);
    await writeFile(
      join(docs, '10-bridge.yaml'),
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: brd, kind: bridge, state: up }\n',
    );
    await writeFile(
      join(docs, '20-address.yaml'),
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: brd2, kind: bridge }\n    addresses:\n      - { link: brd, address: 10.47.0.1/24 }\n',
    );
    const pending = await cli('diff', docs);
    expect(pending.code, pending.stdout + pending.stderr).toBe(2);
    expect(pending.stdout).toMatch(/3 change\(s\)/);
    const applied = await cli('--json', 'apply', docs);
    expect(applied.code, applied.stderr).toBe(0);
    const result = JSON.parse(applied.stdout) as { changes: number };
    expect(result.changes).toBe(3);
    expect((await netns.exec('ip', ['-o', 'addr', 'show', 'brd'])).stdout).toContain('10.47.0.1/24');
    expect((await cli('diff', docs)).code).toBe(0);
    // A value two documents set differently is refused before anything is applied, naming both.
    await writeFile(
      join(docs, '30-conflict.yaml'),
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: brd, kind: bridge, state: down }\n',
    );
    const refused = await cli('apply', docs);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('brd');
    expect((await netns.exec('ip', ['-o', 'link', 'show', 'brd'])).stdout).toMatch(/[<,]UP[,>]/);
  });

  it('refuses a risky change (exit 9) unless forced, and rolls back on demand', async () => {
    const setup = [
      ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p'],
      ['link', 'set', 'up0', 'up'],
      ['addr', 'add', '10.46.0.2/24', 'dev', 'up0'],
      ['route', 'add', 'default', 'via', '10.46.0.1'],
    ];
    for (const args of setup) expect((await netns.exec('ip', args)).code).toBe(0);
    const risky = await file(
      'risky.yaml',
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: up0, state: down }\n',
    );
    const refused = await cli('apply', risky);
    expect(refused.code).toBe(9);
    expect(refused.stderr).toContain('link up0 carries the default route');
    expect(refused.stderr).toContain('OPDBUS_ERR_RISKY_CHANGE');
    const forced = await cli('apply', '--force', risky);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await netns.exec('ip', ['-o', 'link', 'show', 'up0'])).stdout).not.toContain(',UP');
    const rollback = await cli('rollback');
    expect(rollback.code, rollback.stderr).toBe(0);
    expect((await netns.exec('ip', ['-o', 'link', 'show', 'up0'])).stdout).toContain(',UP');
  });

  it('a document that cannot apply here is refused with its path (exit 3)', async () => {
    const bad = await file(
      'bad.yaml',
      'version: 1\nplugins:\n  network:\n    addresses:\n      - { link: eth9, address: 10.0.0.9/24 }\n',
    );
    const result = await cli('diff', bad);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('plugins.network.addresses[0].link: link eth9 does not exist');
    expect(result.stderr).toContain('OPDBUS_ERR_NETWORK_INVALID');
  });
});
