import { readFile, readdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, PluginRegistry, parseStateDocument, type PluginContext } from '@opdbus/core';
import { openNetns } from '@opdbus/netlink';
import type { SandboxNetns } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listUapiSockets, openBackend } from '../src/backend.js';
import { createWireguardPlugin } from '../src/plugin.js';
import { WireguardKeyStore } from '../src/keyStore.js';
import type { InterfaceEntry, WireguardSection } from '../src/schema.js';
import { must, pings, twoHosts, uniqueIfname, wireguardRequirements } from './helpers.js';

const plugin = createWireguardPlugin();
const registry = new PluginRegistry([plugin]);
const doc = (section: WireguardSection) =>
  parseStateDocument(JSON.stringify({ version: 1, plugins: { wireguard: section } }), {
    source: 'test.yaml',
    registry,
  });

/** Walk a directory tree and return every file's bytes. */
async function allFiles(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(await readFile(join(entry.parentPath, entry.name)));
  }
  return out;
}

describeIf(wireguardRequirements(), 'WireGuard plugin against wireguard-go in two namespaces', () => {
  let a: SandboxNetns;
  let b: SandboxNetns;
  let destroy: () => Promise<void>;
  let stateA: string;
  let stateB: string;
  const ifA = uniqueIfname();
  const ifB = uniqueIfname();
  const engine = (ns: SandboxNetns, stateDir: string): Engine =>
    new Engine({
      registry,
      stateDir,
      target: { netns: ns.name },
      openNetns,
      verify: { attempts: 8, initialDelayMs: 25 },
    });
  const ctx = (ns: SandboxNetns, stateDir: string): PluginContext =>
    engine(ns, stateDir).context('wireguard');
  let pubA = '';
  let pubB = '';

  /** Each side's document: its own key (generated on its node), the other as its one peer. */
  const sideA = (extra: Partial<InterfaceEntry> = {}): WireguardSection => ({
    interfaces: [
      {
        name: ifA,
        privateKey: { stored: 'test-a' },
        listenPort: 51001,
        addresses: ['10.88.0.1/24'],
        peers: [{ publicKey: pubB, endpoint: '10.77.0.2:51002', allowedIPs: ['10.88.0.2/32'] }],
        ...extra,
      },
    ],
  });
  const sideB = (): WireguardSection => ({
    interfaces: [
      {
        name: ifB,
        privateKey: { stored: 'test-b' },
        listenPort: 51002,
        addresses: ['10.88.0.2/24'],
        peers: [{ publicKey: pubA, endpoint: '10.77.0.1:51001', allowedIPs: ['10.88.0.1/32'] }],
      },
    ],
  });

  beforeAll(async () => {
    ({ a, b, destroy } = await twoHosts());
    stateA = await mkdtemp(join(tmpdir(), 'opdbus-wg-a-'));
    stateB = await mkdtemp(join(tmpdir(), 'opdbus-wg-b-'));
    // Keys are generated on the node that owns them; only the public keys are exchanged.
    pubA = (await new WireguardKeyStore({ stateDir: stateA }).generate('test-a')).publicKey!;
    pubB = (await new WireguardKeyStore({ stateDir: stateB }).generate('test-b')).publicKey!;
  });
  afterAll(async () => {
    await destroy?.();
    await rm(stateA, { recursive: true, force: true });
    await rm(stateB, { recursive: true, force: true });
  });

  it('probes the userspace backend here (the kernel has no wireguard family)', async () => {
    const probe = await plugin.probe(ctx(a, stateA));
    expect(probe.available).toBe(true);
    using backend = await openBackend({ netns: a });
    expect(backend.kind).toBe(process.env.OPDBUS_EXPECT_WG_KERNEL === '1' ? 'kernel' : 'userspace');
    expect(probe).toMatchObject({ detail: backend.detail });
  });

  it('creates both interfaces in one transaction each; they ping over the tunnel; wg agrees', async () => {
    expect((await engine(a, stateA).apply(doc(sideA()))).status).toBe('committed');
    expect((await engine(b, stateB).apply(doc(sideB()))).status).toBe('committed');
    expect(await pings(a, '10.88.0.2')).toBe(true);
    expect(await pings(b, '10.88.0.1')).toBe(true);
    // wireguard-tools reads the same device over its UAPI socket.
    const dump = (await must(a, 'wg', ['show', ifA, 'dump'])).trim().split('\n');
    const [priv, pub, port] = dump[0]!.split('\t');
    expect(pub).toBe(pubA);
    expect(port).toBe('51001');
    expect(priv).not.toBe('(none)');
    const peer = dump[1]!.split('\t');
    expect(peer[0]).toBe(pubB);
    expect(peer[2]).toBe('10.77.0.2:51002');
    expect(peer[3]).toBe('10.88.0.2/32');
    expect(Number(peer[4])).toBeGreaterThan(0); // a handshake happened
    // Nothing is left to do.
    expect((await engine(a, stateA).plan(doc(sideA()))).plan.changes).toEqual([]);
  });

  it('never shows or stores a private key in the clear', async () => {
    const observed = await plugin.query(ctx(a, stateA));
    const text = JSON.stringify(observed);
    const dump = (await must(a, 'wg', ['show', ifA, 'private-key'])).trim();
    const raw = Buffer.from(dump, 'base64');
    expect(text).not.toContain(dump);
    expect(text).toContain('"stored":"test-a"');
    expect(observed.interfaces?.find((i) => i.name === ifA)).toMatchObject({
      publicKey: pubA,
      privateKey: { stored: 'test-a' },
    });
    for (const file of await allFiles(stateA)) {
      expect(file.includes(dump)).toBe(false);
      expect(file.includes(raw)).toBe(false);
      expect(file.includes(Buffer.from(raw.toString('hex')))).toBe(false);
    }
    const sealed = await stat(join(stateA, 'wireguard', 'keys', 'test-a.sealed'));
    expect(sealed.mode & 0o777).toBe(0o600);
  });

  it('changes peers in place: no new device, no restart of wireguard-go, the tunnel stays up', async () => {
    const before = await must(a, 'ip', ['-o', 'link', 'show', ifA]);
    const pidsBefore = a.pids().sort();
    const third = (await new WireguardKeyStore({ stateDir: stateA }).generate('throwaway')).publicKey!;
    const changed = sideA({
      peers: [
        {
          publicKey: pubB,
          endpoint: '10.77.0.2:51002',
          allowedIPs: ['10.88.0.2/32', '10.99.2.0/24'],
          persistentKeepalive: 15,
        },
        { publicKey: third, allowedIPs: ['10.88.0.3/32'] },
      ],
    });
    const { plan } = await engine(a, stateA).plan(doc(changed));
    expect(plan.changes.map((c) => c.resource).every((r) => r.startsWith('peer/'))).toBe(true);
    expect((await engine(a, stateA).apply(doc(changed))).status).toBe('committed');
    expect(await must(a, 'ip', ['-o', 'link', 'show', ifA])).toBe(before);
    expect(a.pids().sort()).toEqual(pidsBefore);
    expect(await pings(a, '10.88.0.2')).toBe(true);
    const allowed = await must(a, 'wg', ['show', ifA, 'allowed-ips']);
    expect(allowed).toContain('10.99.2.0/24');
    expect(allowed).toContain(`${third}\t10.88.0.3/32`);
    // Rolled back: the third peer is gone, the first has its old allowed IPs again.
    expect((await engine(a, stateA).rollback()).status).toBe('rolled-back');
    const restored = await must(a, 'wg', ['show', ifA, 'allowed-ips']);
    expect(restored).not.toContain(third);
    expect(restored).not.toContain('10.99.2.0/24');
    expect(await must(a, 'wg', ['show', ifA, 'persistent-keepalive'])).toContain('off');
  });

  it('rotates a key without recreating the interface', async () => {
    const linkBefore = await must(a, 'ip', ['-o', 'link', 'show', ifA]);
    const next = (await new WireguardKeyStore({ stateDir: stateA }).generate('test-a-2')).publicKey!;
    expect(
      (await engine(a, stateA).apply(doc(sideA({ privateKey: { stored: 'test-a-2' }, publicKey: next }))))
        .status,
    ).toBe('committed');
    pubA = next;
    expect(
      (
        await engine(b, stateB).apply(
          doc({
            interfaces: [
              {
                ...sideB().interfaces![0]!,
                peers: [{ publicKey: next, endpoint: '10.77.0.1:51001', allowedIPs: ['10.88.0.1/32'] }],
              },
            ],
          }),
        )
      ).status,
    ).toBe('committed');
    expect(await must(a, 'ip', ['-o', 'link', 'show', ifA])).toBe(linkBefore);
    expect((await must(a, 'wg', ['show', ifA, 'public-key'])).trim()).toBe(next);
    expect(await pings(b, '10.88.0.1')).toBe(true);
  });

  it('refuses a private key whose public key is not the pinned one, and rolls back', async () => {
    const pinned = sideA({ privateKey: { stored: 'throwaway' }, publicKey: pubA });
    await expect(engine(a, stateA).apply(doc(pinned))).rejects.toMatchObject({
      code: 'OPDBUS_ERR_APPLY_FAILED',
    });
    expect((await must(a, 'wg', ['show', ifA, 'public-key'])).trim()).toBe(pubA);
  });

  it('lists only the UAPI sockets of its own namespace', () => {
    expect(listUapiSockets(a)).toContain(ifA);
    expect(listUapiSockets(a)).not.toContain(ifB);
    expect(listUapiSockets(b)).toContain(ifB);
  });

  it('deletes an interface: wireguard-go exits and its socket goes', async () => {
    const gone: WireguardSection = { interfaces: [{ name: ifB, state: 'absent' }] };
    expect((await engine(b, stateB).apply(doc(gone))).status).toBe('committed');
    expect(listUapiSockets(b)).not.toContain(ifB);
    expect((await b.exec('ip', ['link', 'show', ifB])).code).not.toBe(0);
    // Rolled back: created again with the same key, port, address and peer.
    expect((await engine(b, stateB).rollback()).status).toBe('rolled-back');
    expect((await must(b, 'wg', ['show', ifB, 'listen-port'])).trim()).toBe('51002');
    expect(await pings(b, '10.88.0.1')).toBe(true);
  });
});
