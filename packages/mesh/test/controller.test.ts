import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WireguardKeyStore } from '@opdbus/plugins-wireguard';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshController, type MeshEvent } from '../src/controller.js';
import { MeshMember } from '../src/member.js';
import { planNode } from '../src/planner.js';
import { verifyRoster } from '../src/roster.js';
import { createMeshServer } from '../src/server.js';
import { formatToken, parseToken } from '../src/token.js';

// The controller's HTTP API on the loopback, a controller and members in their own state
// directories: enrollment, tokens, removal and rotation end to end (the tunnels themselves are
// tested in apps/cli/test/mesh.test.ts with wireguard-go in network namespaces).
describe('mesh controller and members over HTTP', () => {
  let base: string;
  let server: FastifyInstance;
  let url: string;
  const events: MeshEvent[] = [];
  const record = (e: MeshEvent): Promise<void> => {
    events.push(e);
    return Promise.resolve();
  };
  const dir = (name: string): string => join(base, name);

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'opdbus-mesh-'));
    server = createMeshServer({ stateDir: dir('n1'), record });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const address = server.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });
  afterAll(async () => {
    await server.close();
    await rm(base, { recursive: true, force: true });
  });

  it('creates a mesh, enrolls its controller node and signs a roster the node verifies', async () => {
    const controller = await MeshController.create(
      dir('n1'),
      {
        name: 'lab',
        pool: '10.99.0.0/24',
        nodes: [
          { name: 'n1', endpoint: '192.0.2.1:51820', subnets: ['10.200.1.0/24'] },
          { name: 'n2', endpoint: '192.0.2.2:51820' },
        ],
      },
      { url, record },
    );
    const { member, node } = await MeshMember.enrollController(controller, { node: 'n1' }, { record });
    expect(node).toMatchObject({
      name: 'n1',
      address: '10.99.0.1',
      endpoint: '192.0.2.1:51820',
      keyGeneration: 1,
    });
    // The key was generated here, in this node's store; the controller state has only the public key.
    const stored = await new WireguardKeyStore({ stateDir: dir('n1') }).info('mesh-lab-1');
    expect(stored?.publicKey).toBe(node.publicKey);
    const roster = await member.roster();
    expect(roster.nodes.map((n) => n.name)).toEqual(['n1']);
    expect(events.map((e) => e.kind)).toEqual(['mesh.created', 'mesh.node-enrolled']);
  });

  it('enrolls a node with a one-time token: its declared address, a verified roster; the token cannot be used twice', async () => {
    const controller = await MeshController.open(dir('n1'), 'lab', { record });
    const { token } = await controller.issueToken({ node: 'n2', ttlS: 600 });
    expect(parseToken(token)).toMatchObject({ mesh: 'lab', url, node: 'n2' });
    const { node, roster } = await MeshMember.join(dir('n2'), token, {}, { record });
    expect(node).toMatchObject({ name: 'n2', address: '10.99.0.2', endpoint: '192.0.2.2:51820' });
    expect(roster.nodes.map((n) => n.name)).toEqual(['n1', 'n2']);
    expect(planNode(roster, 'n1').wireguard.interfaces![0]!.peers).toEqual([
      {
        publicKey: node.publicKey,
        endpoint: '192.0.2.2:51820',
        allowedIPs: ['10.99.0.2/32'],
        persistentKeepalive: 25,
      },
    ]);
    // Used again by another node (another key): refused.
    await expect(MeshMember.join(dir('n2b'), token, { node: 'n2' })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_MESH_TOKEN',
      message: expect.stringMatching(/used already/),
    });
    // The secret never crossed the wire: the state directory of the controller does not hold it either.
    const secret = parseToken(token).secret;
    for (const f of await readdir(join(dir('n1'), 'mesh', 'lab'), { withFileTypes: true }))
      if (f.isFile()) expect((await readFile(join(f.parentPath, f.name))).includes(secret)).toBe(false);
  });

  it('refuses expired tokens, tokens for another node, and forged ones', async () => {
    let now = Date.now();
    const controller = await MeshController.open(dir('n1'), 'lab', { record, now: () => now });
    const bound = await controller.issueToken({ node: 'n3', ttlS: 60 });
    await expect(MeshMember.join(dir('x1'), bound.token, { node: 'other' })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_MESH_TOKEN',
      message: expect.stringMatching(/is for node "n3"/),
    });
    const forged = formatToken({ ...parseToken(bound.token), secret: Buffer.alloc(32, 7) });
    await expect(MeshMember.join(dir('x2'), forged, {})).rejects.toMatchObject({
      code: 'OPDBUS_ERR_MESH_TOKEN',
      message: expect.stringMatching(/proof does not verify/),
    });
    const short = await controller.issueToken({ ttlS: 1 });
    now += 5_000;
    // The node's clock says it is still valid; the controller's says it expired.
    const late = await MeshController.open(dir('n1'), 'lab', { now: () => now });
    const parsed = parseToken(short.token);
    const { joinProof } = await import('../src/token.js');
    const body = {
      mesh: 'lab',
      token: parsed.id,
      node: 'late',
      publicKey: 'kwy8hNapXX2YY1kkuW5WFFpPLNfC7aRpq33IoRsQiDQ=',
      keyGeneration: 1,
      credential: await controller.verifierKey(),
    };
    await expect(late.join({ ...body, proof: joinProof(parsed.secret, body) })).rejects.toMatchObject({
      code: 'OPDBUS_ERR_MESH_TOKEN',
      message: expect.stringMatching(/expired/),
    });
  });

  it('rotates a node key through a request signed with its enrollment key; the old key is revoked', async () => {
    const member = await MeshMember.open(dir('n2'), 'lab', { record });
    const before = (await member.roster()).nodes.find((n) => n.name === 'n2')!;
    const { publicKey, keyGeneration, roster } = await member.rotate();
    expect(keyGeneration).toBe(2);
    expect(roster.nodes.find((n) => n.name === 'n2')).toMatchObject({ publicKey, keyGeneration: 2 });
    expect(roster.revoked).toContainEqual(
      expect.objectContaining({ publicKey: before.publicKey, reason: 'rotated' }),
    );
    expect((await member.state()).keyGeneration).toBe(2);
    // On n1, the old key is a peer to remove, the new one a peer to add.
    const peers = planNode(roster, 'n1').wireguard.interfaces![0]!.peers!;
    expect(peers).toContainEqual({ publicKey: before.publicKey, state: 'absent' });
    expect(peers.find((p) => p.publicKey === publicKey)?.allowedIPs).toEqual(['10.99.0.2/32']);
  });

  it('removes a node: its key is revoked everywhere, its address is not handed out again while others are free', async () => {
    const controller = await MeshController.open(dir('n1'), 'lab', { record });
    const roster = await controller.remove('n2');
    expect(roster.nodes.map((n) => n.name)).toEqual(['n1']);
    expect(planNode(roster, 'n2')).toEqual({
      wireguard: { interfaces: [{ name: 'wg-lab', state: 'absent' }] },
    });
    const { token } = await controller.issueToken({});
    const { node } = await MeshMember.join(dir('n5'), token, { node: 'n5' });
    expect(node.address).toBe('10.99.0.3');
    await expect(controller.remove('n2')).rejects.toMatchObject({ code: 'OPDBUS_ERR_MESH_NOT_FOUND' });
  });

  it('refuses a roster older than one applied (a replay)', async () => {
    const member = await MeshMember.open(dir('n5'), 'lab');
    const roster = await member.roster();
    await member.applied(roster, undefined);
    const controller = await MeshController.open(dir('n1'), 'lab');
    const { note } = await controller.roster();
    const trusted = (await member.state()).controller.key;
    const wrong = (await controller.verifierKey()).replace(/.$/, 'A');
    expect(() =>
      verifyRoster(note, trusted, {
        mesh: 'lab',
        minGeneration: roster.generation + 1,
      }),
    ).toThrow(/older than generation/);
    expect(() => verifyRoster(note, wrong, { mesh: 'lab' })).toThrow();
    expect(events.map((e) => e.kind)).toEqual(
      expect.arrayContaining([
        'mesh.token-issued',
        'mesh.joined',
        'mesh.key-rotation',
        'mesh.key-rotated',
        'mesh.node-removed',
      ]),
    );
  });
});
