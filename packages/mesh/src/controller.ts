/**
 * The mesh controller: the node that holds a mesh's state (its settings, enrolled nodes,
 * addresses, revoked keys and tokens), issues join tokens, enrolls nodes and signs the roster
 * every node renders its document from. It never sees a private key.
 *
 * Files, in `STATE_DIR/mesh/MESH/`: `controller.json` (the state, written atomically),
 * `roster.key` (the Ed25519 roster signing key, 0600), `token.key` (32 bytes from which token
 * secrets are derived, 0600) and `lock` (one writer at a time, across processes).
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  OpdbusError,
  StateDir,
  writeFileAtomic,
  type JsonValue,
  type Logger,
  silentLogger,
} from '@opdbus/core';
import type { NoteSigner } from '@opdbus/ledger';
import {
  NoteVerifier,
  createSecretFile,
  loadOrCreateSigner,
  parseNote,
  readSecretFile,
  verifyNote,
} from '@opdbus/ledger';
import { isBase64Key } from '@opdbus/plugins-wireguard';
import { canonicalEndpoint } from '@opdbus/plugins-wireguard';
import {
  canonicalSubnet,
  inPool,
  nodeNamePattern,
  resolveDefinition,
  type MeshNodeInput,
  type MeshSettings,
} from './definition.js';
import { allocateAddress, canonicalAddress } from './ipam.js';
import { controllerKeyName, signRoster, type RevokedKey, type Roster, type RosterNode } from './roster.js';
import { checkProof, formatToken, newTokenId, tokenSecret } from './token.js';

/** A node as the controller keeps it. */
export interface ControllerNode {
  name: string;
  address: string;
  endpoint?: string;
  subnets: string[];
  /** Its interface, when not the mesh's. */
  interface?: string;
  /** Set once enrolled. */
  publicKey?: string;
  keyGeneration: number;
  /** The node's request-signing key (signed-note verifier key), set once enrolled. */
  credential?: string;
  /** pending: declared, not enrolled yet; active: enrolled; removed: revoked. */
  status: 'pending' | 'active' | 'removed';
  enrolled?: string;
  removed?: string;
  /** The sequence number of the node's last signed request (replays are refused). */
  requestSeq: number;
  /** A scheduled key rotation. */
  next?: { publicKey: string; keyGeneration: number; at: string };
}

/** A token the controller issued (its secret is derived from `token.key`, never stored). */
export interface TokenRecord {
  id: string;
  node?: string;
  issued: string;
  expires: string;
  used?: { node: string; at: string };
}

/** The controller's state file. */
export interface ControllerState {
  v: 1;
  settings: MeshSettings;
  /** Where nodes reach the controller (`http://ADDRESS:PORT`), written into tokens. */
  url?: string;
  generation: number;
  created: string;
  nodes: ControllerNode[];
  revoked: RevokedKey[];
  /** Addresses of removed nodes, reused last. */
  retired: string[];
  tokens: TokenRecord[];
}

/** A mesh event for the ledger: every change of a mesh is one. */
export interface MeshEvent {
  kind: `mesh.${string}`;
  mesh: string;
  generation?: number;
  node?: string;
  [key: string]: JsonValue | undefined;
}

/** Where mesh events go (the CLI appends them to the ledger). */
export type MeshRecorder = (event: MeshEvent) => Promise<void>;

/** What a joining node sends. */
export interface JoinRequest {
  mesh: string;
  /** The token id. */
  token: string;
  node: string;
  endpoint?: string;
  subnets?: string[];
  /** Its interface, when not the mesh's. */
  interface?: string;
  publicKey: string;
  keyGeneration: number;
  /** The node's request-signing key (verifier key string). */
  credential: string;
  /** HMAC of the other fields under the token secret ({@link joinProof}). */
  proof: string;
}

/** Options of the controller. */
export interface ControllerOptions {
  record?: MeshRecorder;
  logger?: Logger;
  /** Now, for tests of expiry (default Date.now). */
  now?: () => number;
}

/** The directory of a mesh in a state directory. */
export function meshDir(stateDir: string, mesh: string): string {
  return join(stateDir, 'mesh', mesh);
}

const iso = (ms: number): string => new Date(ms).toISOString();

function meshError(
  code:
    | 'OPDBUS_ERR_MESH_INVALID'
    | 'OPDBUS_ERR_MESH_NODE'
    | 'OPDBUS_ERR_MESH_TOKEN'
    | 'OPDBUS_ERR_MESH_NOT_FOUND',
  message: string,
  data: Record<string, unknown> = {},
): OpdbusError {
  return new OpdbusError(code, message, { data });
}

/** The request a node signs to change its own key (rotation). */
export interface KeyRequest {
  mesh: string;
  node: string;
  publicKey: string;
  keyGeneration: number;
  /** Strictly increasing per node. */
  seq: number;
  /**
   * When every node switches to the new key (ISO 8601): a scheduled rotation, so that all nodes
   * that apply ahead (`opdbus mesh apply --wait`) switch at the same moment. Omitted: now.
   */
  at?: string;
}

const KEY_REQUEST_HEADER = 'opdbus-mesh/v1 key';

/** The signed-note text of a key request. */
export function keyRequestText(request: KeyRequest): string {
  return `${KEY_REQUEST_HEADER}\n${JSON.stringify({ mesh: request.mesh, node: request.node, publicKey: request.publicKey, keyGeneration: request.keyGeneration, seq: request.seq, ...(request.at === undefined ? {} : { at: request.at }) })}\n`;
}

/** A mesh's controller state, changed under a lock and recorded. */
export class MeshController {
  readonly stateDir: string;
  readonly mesh: string;
  readonly dir: string;
  readonly #record: MeshRecorder;
  readonly #logger: Logger;
  readonly #now: () => number;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(stateDir: string, mesh: string, options: ControllerOptions) {
    this.stateDir = stateDir;
    this.mesh = mesh;
    this.dir = meshDir(stateDir, mesh);
    this.#record = options.record ?? (() => Promise.resolve());
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
  }

  /** The meshes this state directory controls. */
  static async list(stateDir: string): Promise<string[]> {
    try {
      const names = await readdir(join(stateDir, 'mesh'));
      const out: string[] = [];
      for (const name of names) {
        try {
          await readFile(join(meshDir(stateDir, name), 'controller.json'));
          out.push(name);
        } catch {
          // A mesh this node is only a member of.
        }
      }
      return out.sort();
    } catch {
      return [];
    }
  }

  /**
   * Create a mesh from its definition (see {@link resolveDefinition}): nodes it declares are
   * pending until they enroll; their addresses are reserved now.
   */
  static async create(
    stateDir: string,
    definition: unknown,
    options: ControllerOptions & { url?: string; source?: string } = {},
  ): Promise<MeshController> {
    const { settings, nodes } = resolveDefinition(definition, options.source);
    const controller = new MeshController(stateDir, settings.name, options);
    const state: ControllerState = {
      v: 1,
      settings,
      generation: 1,
      created: iso(controller.#now()),
      nodes: [],
      revoked: [],
      retired: [],
      tokens: [],
    };
    if (options.url !== undefined) state.url = checkUrl(options.url);
    for (const n of nodes) state.nodes.push(pendingNode(state, n));
    const sd = new StateDir(controller.dir);
    await sd.ensure();
    const lock = await sd.lock(10_000);
    try {
      try {
        await readFile(join(controller.dir, 'controller.json'));
        throw meshError(
          'OPDBUS_ERR_MESH_INVALID',
          `Mesh ${settings.name} exists already in ${controller.dir}; remove it first or choose another name.`,
          { mesh: settings.name },
        );
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await loadOrCreateSigner(join(controller.dir, 'roster.key'), controllerKeyName(settings.name));
      await createSecretFile(join(controller.dir, 'token.key'), randomBytes(32));
      await controller.#write(state);
    } finally {
      await lock.release();
    }
    await controller.#record({
      kind: 'mesh.created',
      mesh: settings.name,
      generation: 1,
      pool: settings.pool,
      topology: settings.topology,
      nodes: nodes.map((n) => n.name),
    });
    return controller;
  }

  /** Open a mesh this state directory controls; `OPDBUS_ERR_MESH_NOT_FOUND` when it does not. */
  static async open(
    stateDir: string,
    mesh: string,
    options: ControllerOptions = {},
  ): Promise<MeshController> {
    const controller = new MeshController(stateDir, mesh, options);
    await controller.state();
    return controller;
  }

  /** The current state (read from disk). */
  async state(): Promise<ControllerState> {
    let text: string;
    try {
      text = await readFile(join(this.dir, 'controller.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw meshError(
          'OPDBUS_ERR_MESH_NOT_FOUND',
          `This node does not control a mesh "${this.mesh}" (no ${join(this.dir, 'controller.json')}).`,
          { mesh: this.mesh },
        );
      throw err;
    }
    return JSON.parse(text) as ControllerState;
  }

  async #write(state: ControllerState): Promise<void> {
    await writeFileAtomic(join(this.dir, 'controller.json'), `${JSON.stringify(state, null, 2)}\n`, 0o600);
  }

  /** Run `fn` on the state under the lock (one writer in this process and across processes); save when it returns true. */
  async #change<T>(
    fn: (state: ControllerState) => Promise<{ save: boolean; value: T }> | { save: boolean; value: T },
  ): Promise<T> {
    const run = async (): Promise<T> => {
      const lock = await new StateDir(this.dir).lock(10_000);
      try {
        const state = await this.state();
        const folded = foldRotations(state, this.#now());
        const { save, value } = await fn(state);
        if (save || folded) await this.#write(state);
        return value;
      } finally {
        await lock.release();
      }
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #signer(): Promise<NoteSigner> {
    return (await loadOrCreateSigner(join(this.dir, 'roster.key'), controllerKeyName(this.mesh))).signer;
  }

  /** The controller's roster key (what tokens carry). */
  async verifierKey(): Promise<string> {
    return (await this.#signer()).verifier.toString();
  }

  /** The roster of the current state, and its signed form. */
  async roster(): Promise<{ roster: Roster; note: string }> {
    const state = await this.state();
    const roster = rosterOf(state, this.#now());
    return { roster, note: signRoster(roster, await this.#signer()) };
  }

  /** Set the URL written into tokens. */
  async setUrl(url: string): Promise<void> {
    const checked = checkUrl(url);
    await this.#change((state) => {
      const save = state.url !== checked;
      state.url = checked;
      return { save, value: undefined };
    });
  }

  /** Issue a one-time join token, optionally bound to a node name, valid for `ttlS` seconds (default 3600). */
  async issueToken(
    options: { node?: string; ttlS?: number; url?: string } = {},
  ): Promise<{ token: string; id: string; expires: string }> {
    const ttl = options.ttlS ?? 3600;
    if (!(ttl > 0 && ttl <= 30 * 86400))
      throw meshError('OPDBUS_ERR_MESH_INVALID', `A token lives between 1 second and 30 days, not ${ttl} s.`);
    if (options.node !== undefined && !nodeNamePattern.test(options.node))
      throw meshError(
        'OPDBUS_ERR_MESH_INVALID',
        `"${options.node}" is not a node name (letters, digits, ".", "_", "-").`,
      );
    const key = await this.verifierKey();
    const tokenKey = await readSecretFile(join(this.dir, 'token.key'));
    const result = await this.#change((state) => {
      const url = options.url === undefined ? state.url : checkUrl(options.url);
      if (url === undefined)
        throw meshError(
          'OPDBUS_ERR_MESH_INVALID',
          `Mesh ${this.mesh} has no controller URL for tokens: pass --url http://ADDRESS:PORT (where \`opdbus mesh serve\` listens).`,
        );
      if (options.node !== undefined) {
        const known = state.nodes.find((n) => n.name === options.node);
        if (known !== undefined && known.status !== 'pending')
          throw meshError(
            'OPDBUS_ERR_MESH_NODE',
            `Node "${options.node}" is ${known.status === 'active' ? 'enrolled already' : 'removed'} in mesh ${this.mesh}; tokens are for new nodes.`,
            { node: options.node },
          );
      }
      const now = this.#now();
      const id = newTokenId();
      const expires = Math.floor(now / 1000) + ttl;
      const record: TokenRecord = { id, issued: iso(now), expires: iso(expires * 1000) };
      if (options.node !== undefined) record.node = options.node;
      // Forget tokens that expired a day ago: their ids cannot be used any more anyway.
      state.tokens = state.tokens.filter((t) => Date.parse(t.expires) > now - 86_400_000);
      state.tokens.push(record);
      const token = formatToken({
        mesh: this.mesh,
        url,
        key,
        id,
        expires,
        secret: tokenSecret(tokenKey, id),
        ...(options.node === undefined ? {} : { node: options.node }),
      });
      return { save: true, value: { token, id, expires: record.expires, node: options.node } };
    });
    await this.#record({
      kind: 'mesh.token-issued',
      mesh: this.mesh,
      token: result.id,
      expires: result.expires,
      ...(result.node === undefined ? {} : { node: result.node }),
    });
    return { token: result.token, id: result.id, expires: result.expires };
  }

  /** Enroll the controller's own node (no token: it is local). */
  async enrollLocal(request: Omit<JoinRequest, 'token' | 'proof' | 'mesh'>): Promise<RosterNode> {
    return this.#enroll({ ...request, mesh: this.mesh, token: '', proof: '' }, undefined);
  }

  /** Enroll a node that presents a join request with a valid token proof. */
  async join(request: JoinRequest): Promise<{ node: RosterNode; note: string }> {
    const tokenKey = await readSecretFile(join(this.dir, 'token.key'));
    const node = await this.#enroll(request, tokenKey);
    return { node, note: (await this.roster()).note };
  }

  async #enroll(request: JoinRequest, tokenKey: Buffer | undefined): Promise<RosterNode> {
    if (request.mesh !== this.mesh)
      throw meshError('OPDBUS_ERR_MESH_NOT_FOUND', `This controller has no mesh "${request.mesh}".`);
    if (!nodeNamePattern.test(request.node))
      throw meshError('OPDBUS_ERR_MESH_INVALID', `"${request.node}" is not a node name.`);
    if (!isBase64Key(request.publicKey))
      throw meshError(
        'OPDBUS_ERR_MESH_INVALID',
        `The public key of node ${request.node} is not a WireGuard key.`,
      );
    try {
      NoteVerifier.parse(request.credential);
    } catch {
      throw meshError(
        'OPDBUS_ERR_MESH_INVALID',
        `The request key of node ${request.node} is not a signed-note verifier key.`,
      );
    }
    const endpoint = request.endpoint === undefined ? undefined : canonicalEndpoint(request.endpoint);
    const subnets = request.subnets?.map((s, i) => canonicalSubnet(s, `subnets[${i}]`));
    const result = await this.#change((state) => {
      const now = this.#now();
      let token: TokenRecord | undefined;
      if (tokenKey !== undefined) {
        token = state.tokens.find((t) => t.id === request.token);
        const { proof, ...signed } = request;
        if (token === undefined || !checkProof(tokenSecret(tokenKey, request.token), signed, proof))
          throw meshError(
            'OPDBUS_ERR_MESH_TOKEN',
            `The join token of node ${request.node} is not one this controller issued for mesh ${this.mesh}, or its proof does not verify.`,
          );
        const existing = state.nodes.find((n) => n.name === request.node);
        if (token.used !== undefined) {
          // A retry of the same enrollment (the answer was lost) is answered again; anything else is refused.
          if (
            token.used.node === request.node &&
            existing?.publicKey === request.publicKey &&
            existing.status === 'active'
          )
            return {
              save: false,
              value: { node: rosterNode(existing), fresh: false, generation: state.generation },
            };
          throw meshError(
            'OPDBUS_ERR_MESH_TOKEN',
            `The join token ${request.token} was used already (by node ${token.used.node} at ${token.used.at}); tokens are one-time: ask for a new one.`,
          );
        }
        if (Date.parse(token.expires) <= now)
          throw meshError(
            'OPDBUS_ERR_MESH_TOKEN',
            `The join token ${request.token} expired at ${token.expires}; ask the controller for a new one.`,
          );
        if (token.node !== undefined && token.node !== request.node)
          throw meshError(
            'OPDBUS_ERR_MESH_TOKEN',
            `The join token ${request.token} is for node "${token.node}", not "${request.node}".`,
          );
      }
      if (state.revoked.some((r) => r.publicKey === request.publicKey))
        throw meshError(
          'OPDBUS_ERR_MESH_NODE',
          `The public key of node ${request.node} was revoked in mesh ${this.mesh}; generate a new key (join with a fresh state or rotate).`,
        );
      const other = state.nodes.find((n) => n.publicKey === request.publicKey && n.name !== request.node);
      if (other !== undefined)
        throw meshError('OPDBUS_ERR_MESH_NODE', `Node ${other.name} has that public key already.`);
      let node = state.nodes.find((n) => n.name === request.node);
      if (node?.status === 'active') {
        if (node.publicKey === request.publicKey)
          return {
            save: false,
            value: { node: rosterNode(node), fresh: false, generation: state.generation },
          };
        throw meshError(
          'OPDBUS_ERR_MESH_NODE',
          `Node name "${request.node}" is enrolled already in mesh ${this.mesh} with another key; choose another name or remove the old node first.`,
          { node: request.node },
        );
      }
      if (node?.status === 'removed')
        throw meshError(
          'OPDBUS_ERR_MESH_NODE',
          `Node "${request.node}" was removed from mesh ${this.mesh}; enroll it under a new name.`,
          { node: request.node },
        );
      if (node === undefined) {
        node = pendingNode(state, { name: request.node });
        state.nodes.push(node);
      }
      if (endpoint !== undefined) node.endpoint = endpoint;
      if (subnets !== undefined) node.subnets = subnets;
      if (request.interface !== undefined) {
        if (!/^[^\s/:]{1,15}$/.test(request.interface))
          throw meshError(
            'OPDBUS_ERR_MESH_INVALID',
            `"${request.interface}" is not an interface name (at most 15 characters).`,
          );
        node.interface = request.interface;
      }
      checkSubnets(state, node);
      node.publicKey = request.publicKey;
      node.keyGeneration = request.keyGeneration;
      node.credential = request.credential;
      node.status = 'active';
      node.enrolled = iso(now);
      if (token !== undefined) token.used = { node: request.node, at: iso(now) };
      state.generation++;
      return { save: true, value: { node: rosterNode(node), fresh: true, generation: state.generation } };
    });
    if (result.fresh) {
      await this.#record({
        kind: 'mesh.node-enrolled',
        mesh: this.mesh,
        generation: result.generation,
        node: request.node,
        address: result.node.address,
        publicKey: request.publicKey,
        ...(tokenKey === undefined ? { local: true } : { token: request.token }),
      });
      this.#logger.info({ mesh: this.mesh, node: request.node }, 'node enrolled');
    }
    return result.node;
  }

  /** Remove a node: its key is revoked, every node drops it as a peer on its next apply. */
  async remove(name: string): Promise<Roster> {
    const generation = await this.#change((state) => {
      const node = state.nodes.find((n) => n.name === name);
      if (node === undefined || node.status === 'removed')
        throw meshError(
          'OPDBUS_ERR_MESH_NOT_FOUND',
          `Mesh ${this.mesh} has no node "${name}"${node ? ' (it was removed already)' : ''}.`,
          { node: name },
        );
      const now = iso(this.#now());
      if (node.publicKey !== undefined)
        state.revoked.push({
          publicKey: node.publicKey,
          node: name,
          reason: 'removed',
          subnets: node.subnets,
          ...(node.interface === undefined ? {} : { interface: node.interface }),
          at: now,
        });
      node.status = 'removed';
      node.removed = now;
      state.retired.push(node.address);
      state.generation++;
      return { save: true, value: state.generation };
    });
    await this.#record({ kind: 'mesh.node-removed', mesh: this.mesh, generation, node: name });
    return (await this.roster()).roster;
  }

  /**
   * Change a node's key: a request the node signed with its enrollment key. The old key is
   * revoked; the node switches on its next apply, the others replace the peer on theirs.
   */
  async changeKey(signed: string): Promise<{ node: RosterNode; note: string }> {
    let text: string;
    try {
      text = parseNote(signed).text;
    } catch (err) {
      throw meshError(
        'OPDBUS_ERR_MESH_NODE',
        `The key request is not a signed note: ${(err as Error).message}`,
      );
    }
    const [header, body] = text.split('\n');
    if (header !== KEY_REQUEST_HEADER || body === undefined)
      throw meshError('OPDBUS_ERR_MESH_NODE', 'The signed note is not a mesh key request.');
    const request = JSON.parse(body) as KeyRequest;
    if (request.mesh !== this.mesh)
      throw meshError('OPDBUS_ERR_MESH_NOT_FOUND', `This controller has no mesh "${request.mesh}".`);
    if (!isBase64Key(request.publicKey))
      throw meshError('OPDBUS_ERR_MESH_INVALID', 'The new public key is not a WireGuard key.');
    const result = await this.#change((state) => {
      const node = state.nodes.find((n) => n.name === request.node);
      if (node === undefined || node.status !== 'active' || node.credential === undefined)
        throw meshError(
          'OPDBUS_ERR_MESH_NODE',
          `Node "${request.node}" is not an active member of mesh ${this.mesh}.`,
          { node: request.node },
        );
      try {
        verifyNote(signed, [NoteVerifier.parse(node.credential)]);
      } catch (err) {
        throw meshError(
          'OPDBUS_ERR_MESH_NODE',
          `The key request of node ${request.node} is not signed with its enrollment key: ${(err as Error).message}`,
          { node: request.node },
        );
      }
      if (!(request.seq > node.requestSeq))
        throw meshError(
          'OPDBUS_ERR_MESH_NODE',
          `The key request of node ${request.node} is a replay (sequence ${request.seq}, last accepted ${node.requestSeq}).`,
          { node: request.node },
        );
      if (node.publicKey === request.publicKey)
        return {
          save: false,
          value: { node: rosterNode(node), changed: false, generation: state.generation },
        };
      if (
        state.revoked.some((r) => r.publicKey === request.publicKey) ||
        state.nodes.some((n) => n.publicKey === request.publicKey)
      )
        throw meshError(
          'OPDBUS_ERR_MESH_NODE',
          `The new key of node ${request.node} is in use or was revoked; generate another.`,
          { node: request.node },
        );
      const now = this.#now();
      node.requestSeq = request.seq;
      state.generation++;
      if (request.at !== undefined && Date.parse(request.at) > now) {
        // Scheduled: the roster carries both keys until then.
        node.next = {
          publicKey: request.publicKey,
          keyGeneration: request.keyGeneration,
          at: new Date(Date.parse(request.at)).toISOString(),
        };
      } else {
        delete node.next;
        if (node.publicKey !== undefined)
          state.revoked.push({ publicKey: node.publicKey, node: node.name, reason: 'rotated', at: iso(now) });
        node.publicKey = request.publicKey;
        node.keyGeneration = request.keyGeneration;
      }
      return { save: true, value: { node: rosterNode(node), changed: true, generation: state.generation } };
    });
    if (result.changed)
      await this.#record({
        kind: 'mesh.key-rotated',
        mesh: this.mesh,
        generation: result.generation,
        node: request.node,
        publicKey: request.publicKey,
        keyGeneration: request.keyGeneration,
        ...(result.node.next === undefined ? {} : { switchAt: result.node.next.at }),
      });
    return { node: result.node, note: (await this.roster()).note };
  }
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw meshError('OPDBUS_ERR_MESH_INVALID', `"${url}" is not a URL; write http://ADDRESS:PORT.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw meshError(
      'OPDBUS_ERR_MESH_INVALID',
      `The controller URL must be http:// or https://, not ${parsed.protocol}.`,
    );
  return url.replace(/\/+$/, '');
}

function pendingNode(state: ControllerState, input: MeshNodeInput): ControllerNode {
  const taken = state.nodes.filter((n) => n.status !== 'removed').map((n) => n.address);
  let address: string;
  if (input.address !== undefined) {
    address = canonicalAddress(input.address);
    if (!inPool(state.settings.pool, address))
      throw meshError('OPDBUS_ERR_MESH_INVALID', `${address} is not in the pool ${state.settings.pool}.`);
    if (taken.includes(address)) throw meshError('OPDBUS_ERR_MESH_INVALID', `${address} is taken already.`);
  } else address = allocateAddress(state.settings.pool, taken, state.retired);
  state.retired = state.retired.filter((a) => a !== address);
  const node: ControllerNode = {
    name: input.name,
    address,
    subnets: input.subnets ?? [],
    keyGeneration: 0,
    status: 'pending',
    requestSeq: 0,
  };
  if (input.endpoint !== undefined) node.endpoint = input.endpoint;
  if (input.interface !== undefined) node.interface = input.interface;
  return node;
}

function checkSubnets(state: ControllerState, node: ControllerNode): void {
  for (const s of node.subnets) {
    const owner = state.nodes.find((n) => n !== node && n.status !== 'removed' && n.subnets.includes(s));
    if (owner !== undefined)
      throw meshError('OPDBUS_ERR_MESH_INVALID', `Subnet ${s} is behind node ${owner.name} already.`, {
        subnet: s,
      });
  }
}

function rosterNode(n: ControllerNode): RosterNode {
  const out: RosterNode = {
    name: n.name,
    address: n.address,
    subnets: n.subnets,
    publicKey: n.publicKey!,
    keyGeneration: n.keyGeneration,
  };
  if (n.endpoint !== undefined) out.endpoint = n.endpoint;
  if (n.interface !== undefined) out.interface = n.interface;
  if (n.next !== undefined) out.next = { ...n.next };
  return out;
}

/**
 * Scheduled rotations whose time has come become the node's key, the old one revoked (one
 * generation each). Returns whether anything changed.
 */
export function foldRotations(state: ControllerState, now: number): boolean {
  let changed = false;
  for (const node of state.nodes) {
    if (node.next === undefined || Date.parse(node.next.at) > now) continue;
    if (node.publicKey !== undefined)
      state.revoked.push({ publicKey: node.publicKey, node: node.name, reason: 'rotated', at: node.next.at });
    node.publicKey = node.next.publicKey;
    node.keyGeneration = node.next.keyGeneration;
    delete node.next;
    state.generation++;
    changed = true;
  }
  return changed;
}

/** The roster of a controller state (active nodes only). */
export function rosterOf(current: ControllerState, now: number): Roster {
  const state = structuredClone(current);
  foldRotations(state, now);
  return {
    v: 1,
    ...state.settings,
    generation: state.generation,
    issued: iso(now),
    nodes: state.nodes.filter((n) => n.status === 'active').map(rosterNode),
    revoked: state.revoked,
  };
}
