// Real traffic through the firewall: a client namespace and a server namespace joined by a veth
// pair, TCP listeners in Node on two ports; one port is accepted and the other dropped after the
// apply, and both connect again after the rollback.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import { NftClient } from '@opdbus/nftables';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFirewallPlugin } from '../src/plugin.js';
import type { FirewallSection } from '../src/schema.js';

const SERVER = `
const net = require('node:net');
let ready = 0;
for (const port of [8080, 9090]) {
  net.createServer((c) => { process.stdout.write('accepted ' + port + '\\n'); c.end('hello\\n'); })
    .listen(port, '0.0.0.0', () => { if (++ready === 2) process.stdout.write('ready\\n'); });
}`;
const CLIENT = `
const net = require('node:net');
const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]) }, () => process.stdout.write('connected\\n'));
s.on('data', (d) => process.stdout.write(String(d)));
s.on('end', () => process.exit(0));
s.on('error', (e) => { process.stdout.write('error ' + e.code + '\\n'); process.exit(1); });`;

describeIf(probeSandbox().netns, 'firewall plugin with real traffic between two namespaces', () => {
  let client: SandboxNetns;
  let server: SandboxNetns;
  let listener: ChildProcess;
  let accepted = '';
  let stateDir: string;
  const plugin = createFirewallPlugin();
  const registry = new PluginRegistry([plugin]);
  const serverIp = '10.231.0.2';

  beforeAll(async () => {
    client = await createNetns();
    server = await createNetns();
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-firewall-traffic-'));
    const peer = `fw${process.pid.toString(36)}`;
    for (const [ns, args] of [
      [client, ['link', 'add', 'c0', 'type', 'veth', 'peer', 'name', peer, 'netns', server.name]],
      [client, ['addr', 'add', '10.231.0.1/24', 'dev', 'c0']],
      [client, ['link', 'set', 'c0', 'up']],
      [server, ['link', 'set', peer, 'name', 's0']],
      [server, ['addr', 'add', `${serverIp}/24`, 'dev', 's0']],
      [server, ['link', 'set', 's0', 'up']],
    ] as const) {
      const r = await ns.exec('ip', args);
      if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr}`);
    }
    listener = server.spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    listener.stdout!.setEncoding('utf8');
    let out = '';
    const ready = new Promise<void>((resolve) =>
      listener.stdout!.on('data', (d: string) => {
        out += d;
        accepted += d;
        if (out.includes('ready')) resolve();
      }),
    );
    await ready;
  });
  afterAll(async () => {
    plugin.close();
    listener?.kill();
    await client?.destroy();
    await server?.destroy();
    await rm(stateDir, { recursive: true, force: true });
  });

  /** Start a client in the client namespace; resolves with its output when it exits. */
  const connect = (port: number): { done: Promise<string>; child: ChildProcess } => {
    const child = client.spawn(process.execPath, ['-e', CLIENT, serverIp, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => (out += d));
    const done = once(child, 'exit').then(() => out);
    return { done, child };
  };

  /** The packet count of the rule with this comment, read natively. */
  const dropped = async (): Promise<number> => {
    using nft = NftClient.open({ netns: server.name });
    const rules = await nft.listRules('inet', 'traffic', 'input');
    const rule = rules.find((r) => r.comment === 'closed');
    const counter = rule?.expressions.find((e) => e.type === 'counter');
    return counter?.type === 'counter' ? (counter.packets ?? 0) : 0;
  };

  const section: FirewallSection = {
    tables: [
      {
        family: 'inet',
        name: 'traffic',
        chains: [
          {
            name: 'input',
            hook: 'input',
            priority: 'filter',
            policy: 'drop',
            rules: [
              { name: 'established', match: { ct: { state: 'established,related' } }, verdict: 'accept' },
              { name: 'loopback', match: { iif: 'lo' }, verdict: 'accept' },
              { name: 'open', match: { tcp: { dport: 8080 } }, verdict: 'accept' },
              { name: 'closed', match: { tcp: { dport: 9090 } }, statements: ['counter'], verdict: 'drop' },
            ],
          },
        ],
      },
    ],
  };

  it('accepts one port and drops the other after apply; both connect again after rollback', async () => {
    const engine = new Engine({ registry, stateDir, target: { netns: server.name }, openNetns });
    const doc = parseStateDocument(JSON.stringify({ version: 1, plugins: { firewall: section } }), {
      source: 'traffic.yaml',
      registry,
    });

    // Before: both ports answer.
    expect(await connect(8080).done).toBe('connected\nhello\n');
    expect(await connect(9090).done).toBe('connected\nhello\n');

    expect((await engine.apply(doc)).status).toBe('committed');
    expect(await connect(8080).done).toBe('connected\nhello\n');
    // 9090: the SYN reaches the drop rule (its counter moves) and no connection is made.
    accepted = '';
    const attempt = connect(9090);
    for (let i = 0; (await dropped()) === 0; i++) {
      if (i > 500) throw new Error('the SYN to port 9090 never reached the drop rule');
      await delay(10);
    }
    attempt.child.kill();
    expect(await attempt.done).toBe('');
    expect(accepted).not.toContain('accepted 9090');

    // Rollback: the firewall is gone and 9090 answers again.
    expect((await engine.rollback()).status).toBe('rolled-back');
    expect(await connect(9090).done).toBe('connected\nhello\n');
    expect(await connect(8080).done).toBe('connected\nhello\n');
  });
});
