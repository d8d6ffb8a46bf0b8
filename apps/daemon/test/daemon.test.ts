// opdbusd against real components: a network namespace from @opdbus/sandbox, the real network
// plugin over rtnetlink, the real engine and ledger, and the API through fastify's request pipeline.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@opdbus/core';
import { verifyLedger } from '@opdbus/ledger';
import { TokenFile, loadBuiltinPlugins } from '@opdbus/runtime';
import { builtinPlugins } from '@opdbus/runtime/builtin-plugins';
import { createNetns, probeSandbox, type SandboxNetns } from '@opdbus/sandbox';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApi } from '../src/api.js';
import { ledgerEntries, next } from './helpers.js';
import { Daemon } from '../src/daemon.js';
import type { Mode } from '../src/modes.js';

const probe = probeSandbox().netns;

const desired = `version: 1
plugins:
  network:
    links:
      - { name: br-t1, kind: bridge, state: up }
      - { name: br-t2, kind: bridge, state: up }
`;

let dir: string;
let ns: SandboxNetns;
let daemon: Daemon | undefined;

beforeEach(async () => {
  if (!probe.available) return;
  dir = await mkdtemp(join(tmpdir(), 'opdbusd-test-'));
  ns = await createNetns();
  await writeFile(join(dir, 'desired.yaml'), desired);
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  if (!probe.available) return;
  await ns.destroy();
  await rm(dir, { recursive: true, force: true });
});

async function startDaemon(mode: Mode, threshold = 5): Promise<Daemon> {
  daemon = new Daemon({
    damping: { threshold, windowMs: 600_000, holdMs: 600_000 },
    runtime: { stateDir: join(dir, 'state'), logLevel: 'silent', netns: ns.name },
    desired: join(dir, 'desired.yaml'),
    mode,
    targetCheckMs: 200,
    plugins: builtinPlugins(),
    logger: silentLogger,
  });
  await daemon.start();
  await daemon.firstSync();
  return daemon;
}

async function linkUp(name: string): Promise<boolean | undefined> {
  const r = await ns.exec('ip', ['-j', 'link', 'show', name]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { flags: string[] }[])[0]?.flags.includes('UP');
}

describe.skipIf(!probe.available)('opdbusd in a network namespace', () => {
  it('enforce: creates the bridges, restores one set down and one deleted, and the ledger verifies with the drift', async () => {
    const d = await startDaemon('enforce');
    expect(await linkUp('br-t1')).toBe(true);
    expect(await linkUp('br-t2')).toBe(true);

    const restoredUp = next(
      d,
      (e) => e.type === 'correction' && e.ok && e.keys.includes('network:link/br-t1'),
    );
    await ns.exec('ip', ['link', 'set', 'br-t1', 'down'], { check: true });
    await restoredUp;
    expect(await linkUp('br-t1')).toBe(true);

    const recreated = next(
      d,
      (e) => e.type === 'correction' && e.ok && e.keys.includes('network:link/br-t2'),
    );
    await ns.exec('ip', ['link', 'del', 'br-t2'], { check: true });
    await recreated;
    expect(await linkUp('br-t2')).toBe(true);
    expect(d.driftReport().drift).toEqual([]);

    const report = await verifyLedger(join(dir, 'state', 'ledger'));
    expect(report.ok).toBe(true);
    const drift = (await ledgerEntries(join(dir, 'state'))).filter((e) => e.kind === 'drift');
    expect(drift.map((e) => e.status)).toEqual(expect.arrayContaining(['detected', 'corrected']));
    const detected = drift.find((e) => e.status === 'detected' && JSON.stringify(e).includes('link/br-t2'));
    expect(detected?.actor).toMatchObject({ kind: 'daemon', name: 'opdbusd' });
  });

  it('observe: reports a bridge set down at /v1/drift and changes nothing', async () => {
    await ns.exec('ip', ['link', 'add', 'br-t1', 'type', 'bridge'], { check: true });
    await ns.exec('ip', ['link', 'set', 'br-t1', 'up'], { check: true });
    await ns.exec('ip', ['link', 'add', 'br-t2', 'type', 'bridge'], { check: true });
    await ns.exec('ip', ['link', 'set', 'br-t2', 'up'], { check: true });
    const d = await startDaemon('observe');
    expect(d.driftReport().drift).toEqual([]);

    const seen = next(d, (e) => e.type === 'drift' && e.items.some((i) => i.key === 'network:link/br-t1'));
    await ns.exec('ip', ['link', 'set', 'br-t1', 'down'], { check: true });
    await seen;
    const app = await buildApi({
      daemon: d,
      listener: { kind: 'unix', path: '/unused', label: 'test' },
      version: '0',
    });
    const res = await app.inject({ method: 'GET', url: '/v1/drift' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ drift: { key: string; mode: string; state: string }[] }>();
    expect(body.drift).toEqual([
      expect.objectContaining({ key: 'network:link/br-t1', mode: 'observe', state: 'open' }),
    ]);
    expect(await linkUp('br-t1')).toBe(false);
    await app.close();
  });

  it('a manual apply of a managed resource becomes its baseline: the daemon does not revert it', async () => {
    const d = await startDaemon('enforce');
    const other = d.engineFor('operator');
    const baseline = next(d, (e) => e.type === 'baseline');
    await d.apply(
      {
        version: 1,
        source: 'manual.yaml',
        plugins: { network: { links: [{ name: 'br-t1', state: 'down' }] } },
      },
      'operator',
      {},
    );
    expect(other.actor.name).toBe('operator');
    const event = await baseline;
    expect(event).toMatchObject({ type: 'baseline', actor: 'operator', keys: ['network:link/br-t1'] });
    expect(await linkUp('br-t1')).toBe(false);
    // Drift of the baselined resource is measured against the manual apply now: up is drift.
    const corrected = next(d, (e) => e.type === 'correction' && e.keys.includes('network:link/br-t1'));
    await ns.exec('ip', ['link', 'set', 'br-t1', 'up'], { check: true });
    await corrected;
    expect(await linkUp('br-t1')).toBe(false);
  });

  it('serves /metrics with opdbus_* series and enforces the token rules', async () => {
    const d = await startDaemon('observe');
    const tokenFile = join(dir, 'tokens');
    await writeFile(tokenFile, 'read-token-0123456789 read viewer\nwrite-token-0123456789 write ci\n');
    await chmod(tokenFile, 0o600);
    const app = await buildApi({
      daemon: d,
      listener: { kind: 'tcp', host: '127.0.0.1', port: 1, label: '127.0.0.1:1' },
      tokens: TokenFile.load(tokenFile),
      maxAuthFailures: 5,
      version: '0',
    });
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    const metrics = await app.inject({ url: '/metrics', headers: auth('read-token-0123456789') });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/^opdbus_drift_events_total/m);
    expect(metrics.body).toMatch(/^opdbus_nodejs_eventloop_lag_seconds/m);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/state' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/state', headers: auth('wrong-token-0123456789') })).statusCode).toBe(
      401,
    );
    expect((await app.inject({ url: '/v1/state', headers: auth('read-token-0123456789') })).statusCode).toBe(
      200,
    );
    const rollback = { method: 'POST' as const, url: '/v1/rollback', payload: {} };
    expect((await app.inject({ ...rollback, headers: auth('read-token-0123456789') })).statusCode).toBe(403);
    const crossSite = await app.inject({
      method: 'POST',
      url: '/v1/plan',
      payload: { document: desired },
      headers: { ...auth('write-token-0123456789'), origin: 'http://evil.example' },
    });
    expect(crossSite.statusCode).toBe(403);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/plan',
      payload: {
        document: 'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-x, colour: red }\n',
      },
      headers: auth('read-token-0123456789'),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { message: string } }>().error.message).toContain('plugins.network.links[0]');
    const codes: number[] = [];
    for (let i = 0; i < 6; i++)
      codes.push((await app.inject({ url: '/v1/state', headers: auth('nope-0123456789-x') })).statusCode);
    expect(codes.at(-1)).toBe(429);
    // The owner of a valid token is not locked out by someone else's failures.
    expect((await app.inject({ url: '/v1/drift', headers: auth('read-token-0123456789') })).statusCode).toBe(
      200,
    );
    await app.close();
    // Failed authentication is in the ledger, coalesced: the first refusal of the peer at once, the
    // burst after it (wrong tokens, then 429s) as one entry when the daemon stops (or the window ends).
    await d.stop();
    const refused = (await ledgerEntries(join(dir, 'state'))).filter((e) => e.kind === 'daemon.auth-failed');
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatchObject({ peer: '127.0.0.1', route: '/v1/state', reason: 'no-token', count: 1 });
    expect(refused[1]).toMatchObject({
      peer: '127.0.0.1',
      count: 7,
      reasons: { 'wrong-token': 4, 'rate-limited': 3 },
      routes: ['/v1/state'],
    });
    expect((await verifyLedger(join(dir, 'state', 'ledger'))).ok).toBe(true);
  });

  it('refuses an invalid new document on reload and keeps the one in force', async () => {
    const d = await startDaemon('observe');
    const refused = next(d, (e) => e.type === 'reload' && !e.ok);
    await writeFile(
      join(dir, 'desired.yaml'),
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-t1, colour: red }\n',
    );
    expect(await d.reload('test')).toBe(false);
    const event = await refused;
    expect(event).toMatchObject({ type: 'reload', ok: false });
    expect(JSON.stringify(event)).toContain('plugins.network.links[0]');
    expect(d.desired?.plugins).toEqual({
      network: expect.objectContaining({
        links: [expect.objectContaining({ name: 'br-t1' }), expect.objectContaining({ name: 'br-t2' })],
      }),
    });
  });

  it('reports a vanished target, retries, and converges again when it is back', async () => {
    const d = await startDaemon('enforce');
    const gone = next(d, (e) => e.type === 'status' && e.status === 'target-gone');
    const { spawnSync } = await import('node:child_process');
    expect(spawnSync('ip', ['netns', 'del', ns.name]).status).toBe(0);
    await gone;
    const back = next(d, (e) => e.type === 'status' && e.status === 'watching');
    expect(spawnSync('ip', ['netns', 'add', ns.name]).status).toBe(0);
    await back;
    await d.firstSync();
    const r = spawnSync('ip', ['-n', ns.name, '-j', 'link', 'show', 'br-t1'], { encoding: 'utf8' });
    expect((JSON.parse(r.stdout) as { flags: string[] }[])[0]?.flags).toContain('UP');
    expect(spawnSync('ip', ['netns', 'del', ns.name]).status).toBe(0);
  });

  it('puts a flapping resource on hold: reported and recorded, not fought', async () => {
    for (const name of ['br-t1', 'br-t2']) {
      await ns.exec('ip', ['link', 'add', name, 'type', 'bridge'], { check: true });
      await ns.exec('ip', ['link', 'set', name, 'up'], { check: true });
    }
    const d = await startDaemon('enforce', 2);
    const fixed = next(d, (e) => e.type === 'correction' && e.ok && e.keys.includes('network:link/br-t1'));
    await ns.exec('ip', ['link', 'set', 'br-t1', 'down'], { check: true });
    await fixed;
    const held = next(d, (e) => e.type === 'hold');
    await ns.exec('ip', ['link', 'set', 'br-t1', 'down'], { check: true });
    expect(await held).toMatchObject({ hold: { key: 'network:link/br-t1', drifts: 2 } });
    expect(d.driftReport().drift).toEqual([
      expect.objectContaining({ key: 'network:link/br-t1', state: 'held' }),
    ]);
    expect(d.driftReport().holds).toHaveLength(1);
    expect(await linkUp('br-t1')).toBe(false);
    const statuses = (await ledgerEntries(join(dir, 'state')))
      .filter((e) => e.kind === 'drift')
      .map((e) => e.status);
    expect(statuses).toContain('held');
  });

  it('loads only the plugins its desired state names, and more when an API document names them', async () => {
    const asked: (readonly string[] | undefined)[] = [];
    daemon = new Daemon({
      runtime: { stateDir: join(dir, 'state'), logLevel: 'silent', netns: ns.name },
      desired: join(dir, 'desired.yaml'),
      mode: 'enforce',
      plugins: [],
      loadPlugins: (names) => {
        asked.push(names);
        return loadBuiltinPlugins(names);
      },
      logger: silentLogger,
    });
    await daemon.start();
    await daemon.firstSync();
    expect(daemon.plugins.map((p) => p.name)).toEqual(['network']);
    expect(await linkUp('br-t1')).toBe(true);
    const app = await buildApi({
      daemon,
      listener: { kind: 'unix', path: '/unused', label: 'test' },
      version: '0',
    });
    const plan = await app.inject({
      method: 'POST',
      url: '/v1/plan',
      payload: { document: { version: 1, plugins: { sysctl: { 'net.ipv4.ip_forward': '1' } } } },
    });
    expect(plan.statusCode).toBe(200);
    expect(daemon.plugins.map((p) => p.name)).toEqual(['sysctl', 'network']);
    // A name no plugin has: every plugin is loaded, and the error lists them all.
    const unknown = await app.inject({
      method: 'POST',
      url: '/v1/plan',
      payload: { document: 'version: 1\nplugins:\n  netwrok: {}\n' },
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.body).toMatch(/unknown plugin .*netwrok.*registered plugins: sysctl, wireguard, network/);
    expect(asked.at(-1)).toBeUndefined();
    // The daemon still watches and corrects with its new engine.
    const restored = next(
      daemon,
      (e) => e.type === 'correction' && e.ok && e.keys.includes('network:link/br-t1'),
    );
    await ns.exec('ip', ['link', 'set', 'br-t1', 'down'], { check: true });
    await restored;
    expect(await linkUp('br-t1')).toBe(true);
    await app.close();
  });

  it('applies through the API with commit-confirmed, audited in the ledger under the token name', async () => {
    const d = await startDaemon('observe');
    const tokenFile = join(dir, 'tokens');
    await writeFile(tokenFile, 'write-token-0123456789 write ci\n');
    await chmod(tokenFile, 0o600);
    const app = await buildApi({
      daemon: d,
      listener: { kind: 'tcp', host: '127.0.0.1', port: 1, label: '127.0.0.1:1' },
      tokens: TokenFile.load(tokenFile),
      version: '0',
    });
    const headers = { authorization: 'Bearer write-token-0123456789' };
    const document =
      'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-api, kind: bridge, state: up }\n';
    const applied = await app.inject({
      method: 'POST',
      url: '/v1/apply',
      headers,
      payload: { document, confirmTimeoutS: 60 },
    });
    expect(applied.statusCode).toBe(200);
    const result = applied.json<{ status: string; txId: string }>();
    expect(result.status).toBe('pending-confirm');
    expect(await linkUp('br-api')).toBe(true);
    const confirmed = await app.inject({
      method: 'POST',
      url: '/v1/confirm',
      headers,
      payload: { txId: result.txId },
    });
    expect(confirmed.json()).toMatchObject({ txId: result.txId, status: 'committed' });
    const txs = await app.inject({ url: '/v1/transactions', headers });
    expect(
      txs.json<{ transactions: { txId: string; actor: { name: string } }[] }>().transactions[0],
    ).toMatchObject({
      txId: result.txId,
      actor: { name: 'ci' },
    });
    const entries = await ledgerEntries(join(dir, 'state'));
    const apply = entries.find((e) => e.kind === 'apply' && e.txId === result.txId);
    expect(apply?.actor).toMatchObject({ name: 'ci' });
    expect(entries.find((e) => e.kind === 'confirm' && e.txId === result.txId)?.actor).toMatchObject({
      name: 'ci',
    });
    const checkpoint = await app.inject({ url: '/v1/ledger/checkpoint', headers });
    expect(checkpoint.json<{ size: number }>().size).toBe(entries.length);
    expect((await app.inject({ url: '/v1/ledger/proofs/0', headers })).statusCode).toBe(200);
    const openapi = await app.inject({ url: '/openapi.json' });
    expect(Object.keys(openapi.json<{ paths: Record<string, unknown> }>().paths)).toEqual(
      expect.arrayContaining(['/v1/apply', '/v1/drift', '/v1/events', '/v1/ledger/proofs/{index}']),
    );
    await app.close();
  });
});
