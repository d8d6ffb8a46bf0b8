/**
 * A node's membership of a mesh: enrolling with a join token (its WireGuard key generated here,
 * only the public key sent), fetching and verifying the roster, rendering its own document,
 * rotating its key.
 *
 * Files, in `STATE_DIR/mesh/MESH/`: `member.json` (the controller's URL and roster key, this
 * node's name and key generation, the last roster generation applied) and `node.key` (the
 * Ed25519 key the node signs its requests to the controller with, 0600).
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { OpdbusError, StateDir, writeFileAtomic, type Logger, silentLogger } from '@opdbus/core';
import { formatNote, loadOrCreateSigner, type NoteSigner } from '@opdbus/ledger';
import { WireguardKeyStore } from '@opdbus/plugins-wireguard';
import { callController } from './client.js';
import {
  MeshController,
  keyRequestText,
  meshDir,
  type JoinRequest,
  type MeshRecorder,
} from './controller.js';
import { nodeNamePattern } from './definition.js';
import { meshKeyId, planNode, rosterAt, type NodeDocument } from './planner.js';
import { verifyRoster, type Roster, type RosterNode } from './roster.js';
import { joinProof, parseToken } from './token.js';

/** The member file. */
export interface MemberState {
  v: 1;
  mesh: string;
  node: string;
  controller: {
    /** The controller's URL, or `local` when this node is the controller. */
    url: string;
    /** Its roster key. */
    key: string;
  };
  /** The generation of this node's current key (`mesh-MESH-N` in the key store). */
  keyGeneration: number;
  /** A key sent to the controller that this node has not switched to yet. */
  pendingKeyGeneration?: number;
  /** The last roster generation this node applied (older ones are refused). */
  appliedGeneration: number;
  /** The sequence number of the last signed request. */
  requestSeq: number;
}

/** Options of membership operations. */
export interface MemberOptions {
  record?: MeshRecorder;
  logger?: Logger;
  /** The key store's sealing key file (default STATE_DIR/keys/wireguard.key). */
  sealingKeyFile?: string;
}

function notFound(mesh: string, stateDir: string): OpdbusError {
  return new OpdbusError(
    'OPDBUS_ERR_MESH_NOT_FOUND',
    `This node is not a member of a mesh "${mesh}" (no ${join(meshDir(stateDir, mesh), 'member.json')}); join it with \`opdbus mesh join TOKEN\`.`,
    { data: { mesh } },
  );
}

/** The next free key generation of a mesh in the key store (a rejoin never reuses a revoked key). */
async function nextKeyGeneration(store: WireguardKeyStore, mesh: string): Promise<number> {
  const prefix = `mesh-${mesh}-`;
  let max = 0;
  for (const id of (await store.index()).keys()) {
    if (!id.startsWith(prefix)) continue;
    const n = Number(id.slice(prefix.length));
    if (Number.isSafeInteger(n) && n > max) max = n;
  }
  return max + 1;
}

/** This node's membership of one mesh. */
export class MeshMember {
  readonly stateDir: string;
  readonly mesh: string;
  readonly dir: string;
  readonly #options: MemberOptions;
  readonly #logger: Logger;

  private constructor(stateDir: string, mesh: string, options: MemberOptions) {
    this.stateDir = stateDir;
    this.mesh = mesh;
    this.dir = meshDir(stateDir, mesh);
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  /** The meshes this state directory is a member of. */
  static async list(stateDir: string): Promise<string[]> {
    try {
      const out: string[] = [];
      for (const name of await readdir(join(stateDir, 'mesh'))) {
        try {
          await readFile(join(meshDir(stateDir, name), 'member.json'));
          out.push(name);
        } catch {
          // Not a member.
        }
      }
      return out.sort();
    } catch {
      return [];
    }
  }

  /** Open a membership; `OPDBUS_ERR_MESH_NOT_FOUND` when this node is not a member. */
  static async open(stateDir: string, mesh: string, options: MemberOptions = {}): Promise<MeshMember> {
    const member = new MeshMember(stateDir, mesh, options);
    await member.state();
    return member;
  }

  #store(): WireguardKeyStore {
    return new WireguardKeyStore({
      stateDir: this.stateDir,
      ...(this.#options.sealingKeyFile === undefined ? {} : { sealingKeyFile: this.#options.sealingKeyFile }),
    });
  }

  async #signer(node: string): Promise<NoteSigner> {
    return (await loadOrCreateSigner(join(this.dir, 'node.key'), `opdbus-mesh-${this.mesh}-${node}`)).signer;
  }

  /** The member file. */
  async state(): Promise<MemberState> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'member.json'), 'utf8')) as MemberState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(this.mesh, this.stateDir);
      throw err;
    }
  }

  async #write(state: MemberState): Promise<void> {
    await new StateDir(this.dir).ensure();
    await writeFileAtomic(join(this.dir, 'member.json'), `${JSON.stringify(state, null, 2)}\n`, 0o600);
  }

  /** Generate this node's key for the mesh (here: it never leaves the node) and its request key. */
  async #newIdentity(
    node: string,
  ): Promise<{ publicKey: string; keyGeneration: number; credential: string }> {
    const store = this.#store();
    const keyGeneration = await nextKeyGeneration(store, this.mesh);
    const info = await store.generate(meshKeyId(this.mesh, keyGeneration), 'private');
    const credential = (await this.#signer(node)).verifier.toString();
    return { publicKey: info.publicKey!, keyGeneration, credential };
  }

  /**
   * Enroll this node with a join token: generate its key, send the public key (with an HMAC
   * proof under the token secret) to the controller, verify the roster it answers with.
   */
  static async join(
    stateDir: string,
    tokenText: string,
    request: { node?: string; endpoint?: string; subnets?: string[]; interface?: string },
    options: MemberOptions = {},
  ): Promise<{ member: MeshMember; node: RosterNode; roster: Roster }> {
    const token = parseToken(tokenText);
    const node = request.node ?? token.node;
    if (node === undefined || !nodeNamePattern.test(node))
      throw new OpdbusError(
        'OPDBUS_ERR_MESH_INVALID',
        `Name this node with --node NAME (letters, digits, ".", "_", "-"); the token does not name one.`,
      );
    if (Date.now() / 1000 >= token.expires)
      throw new OpdbusError(
        'OPDBUS_ERR_MESH_TOKEN',
        `The join token expired at ${new Date(token.expires * 1000).toISOString()}; ask the controller for a new one.`,
      );
    const member = new MeshMember(stateDir, token.mesh, options);
    try {
      const existing = await member.state();
      throw new OpdbusError(
        'OPDBUS_ERR_MESH_NODE',
        `This node is a member of mesh ${token.mesh} already (as ${existing.node}).`,
      );
    } catch (err) {
      if (!(err instanceof OpdbusError && err.code === 'OPDBUS_ERR_MESH_NOT_FOUND')) throw err;
    }
    const identity = await member.#newIdentity(node);
    const body: Omit<JoinRequest, 'proof'> = { mesh: token.mesh, token: token.id, node, ...identity };
    if (request.endpoint !== undefined) body.endpoint = request.endpoint;
    if (request.subnets !== undefined) body.subnets = request.subnets;
    if (request.interface !== undefined) body.interface = request.interface;
    const join = { ...body, proof: joinProof(token.secret, body) };
    const answer = (await callController(token.url, `/v1/meshes/${token.mesh}/join`, {
      method: 'POST',
      body: join,
    })) as { roster: string };
    const roster = verifyRoster(answer.roster, token.key, { mesh: token.mesh });
    const self = roster.nodes.find((n) => n.name === node);
    if (self === undefined || self.publicKey !== identity.publicKey)
      throw new OpdbusError(
        'OPDBUS_ERR_MESH_ROSTER',
        `The controller answered the enrollment of ${node} with a roster that does not hold this node's key.`,
      );
    await member.#write({
      v: 1,
      mesh: token.mesh,
      node,
      controller: { url: token.url, key: token.key },
      keyGeneration: identity.keyGeneration,
      appliedGeneration: 0,
      requestSeq: 0,
    });
    await options.record?.({
      kind: 'mesh.joined',
      mesh: token.mesh,
      generation: roster.generation,
      node,
      address: self.address,
      publicKey: self.publicKey,
      controller: token.url,
      token: token.id,
    });
    return { member, node: self, roster };
  }

  /** Make this state directory's node a member of a mesh it controls (`opdbus mesh init --node`). */
  static async enrollController(
    controller: MeshController,
    request: { node: string; endpoint?: string; subnets?: string[]; interface?: string },
    options: MemberOptions = {},
  ): Promise<{ member: MeshMember; node: RosterNode }> {
    const member = new MeshMember(controller.stateDir, controller.mesh, options);
    const identity = await member.#newIdentity(request.node);
    const enroll: Parameters<MeshController['enrollLocal']>[0] = { node: request.node, ...identity };
    if (request.endpoint !== undefined) enroll.endpoint = request.endpoint;
    if (request.subnets !== undefined) enroll.subnets = request.subnets;
    if (request.interface !== undefined) enroll.interface = request.interface;
    const node = await controller.enrollLocal(enroll);
    await member.#write({
      v: 1,
      mesh: controller.mesh,
      node: request.node,
      controller: { url: 'local', key: await controller.verifierKey() },
      keyGeneration: identity.keyGeneration,
      appliedGeneration: 0,
      requestSeq: 0,
    });
    return { member, node };
  }

  /** The controller, when this node is it. */
  async #localController(state: MemberState): Promise<MeshController | undefined> {
    if (state.controller.url !== 'local') return undefined;
    return MeshController.open(this.stateDir, this.mesh, {
      ...(this.#options.record ? { record: this.#options.record } : {}),
      logger: this.#logger,
    });
  }

  /**
   * The current roster, verified with the controller's key and not older than the last one
   * applied. A key this node sent and the roster now carries becomes its current key.
   */
  async roster(): Promise<Roster> {
    const state = await this.state();
    const local = await this.#localController(state);
    const note =
      local !== undefined
        ? (await local.roster()).note
        : (
            (await callController(state.controller.url, `/v1/meshes/${this.mesh}/roster`, {
              method: 'GET',
            })) as { roster: string }
          ).roster;
    const roster = verifyRoster(note, state.controller.key, {
      mesh: this.mesh,
      minGeneration: state.appliedGeneration,
    });
    const self = rosterAt(roster, Date.now()).nodes.find((n) => n.name === state.node);
    if (state.pendingKeyGeneration !== undefined && self?.keyGeneration === state.pendingKeyGeneration) {
      state.keyGeneration = state.pendingKeyGeneration;
      delete state.pendingKeyGeneration;
      await this.#write(state);
    }
    return roster;
  }

  /** This node's document under a roster. */
  async document(roster: Roster, now = Date.now()): Promise<NodeDocument> {
    return planNode(roster, (await this.state()).node, now);
  }

  /** Record that a roster generation was applied (older rosters are refused from now on). */
  async applied(roster: Roster, txId: string | undefined): Promise<void> {
    const state = await this.state();
    state.appliedGeneration = Math.max(state.appliedGeneration, roster.generation);
    await this.#write(state);
    const self = roster.nodes.find((n) => n.name === state.node);
    await this.#options.record?.({
      kind: 'mesh.applied',
      mesh: this.mesh,
      generation: roster.generation,
      node: state.node,
      peers: roster.nodes.length - (self === undefined ? 0 : 1),
      ...(self === undefined ? { left: true } : {}),
      ...(txId === undefined ? {} : { txId }),
    });
  }

  /**
   * Rotate this node's key: generate the next one here, have the controller record its public
   * key (a request signed with this node's enrollment key). The old key is revoked in the
   * roster; this node switches on its next apply, the others replace the peer on theirs.
   */
  async rotate(
    options: { at?: Date } = {},
  ): Promise<{ publicKey: string; keyGeneration: number; roster: Roster }> {
    const state = await this.state();
    const store = this.#store();
    const keyGeneration = await nextKeyGeneration(store, this.mesh);
    const info = await store.generate(meshKeyId(this.mesh, keyGeneration), 'private');
    state.pendingKeyGeneration = keyGeneration;
    state.requestSeq += 1;
    await this.#write(state);
    const signer = await this.#signer(state.node);
    const text = keyRequestText({
      mesh: this.mesh,
      node: state.node,
      publicKey: info.publicKey!,
      keyGeneration,
      seq: state.requestSeq,
      ...(options.at === undefined ? {} : { at: options.at.toISOString() }),
    });
    const signed = formatNote({ text, signatures: [signer.sign(text)] });
    const local = await this.#localController(state);
    const note =
      local !== undefined
        ? (await local.changeKey(signed)).note
        : (
            (await callController(state.controller.url, `/v1/meshes/${this.mesh}/key`, {
              method: 'POST',
              body: { request: signed },
            })) as { roster: string }
          ).roster;
    const roster = verifyRoster(note, state.controller.key, {
      mesh: this.mesh,
      minGeneration: state.appliedGeneration,
    });
    await this.#options.record?.({
      kind: 'mesh.key-rotation',
      mesh: this.mesh,
      generation: roster.generation,
      node: state.node,
      publicKey: info.publicKey!,
      keyGeneration,
    });
    await this.roster();
    return { publicKey: info.publicKey!, keyGeneration, roster };
  }
}
