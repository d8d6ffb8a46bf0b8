import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { userInfo } from 'node:os';
import { OpdbusError, parseStateDocument, type ApplyResult, type JsonValue } from '@opdbus/core';
import { Ledger } from '@opdbus/ledger';
import {
  MeshController,
  MeshMember,
  createMeshServer,
  parseDefinition,
  pendingSwitches,
  planNode,
  type MeshEvent,
  type MeshRecorder,
  type Roster,
} from '@opdbus/mesh';
import { netnsPath, openNetns } from '@opdbus/netlink';
import { loadDesired, mergeDocuments } from '@opdbus/runtime';
import { encodeKey, openBackend } from '@opdbus/plugins-wireguard';
import { parse as yamlParse, stringify } from 'yaml';
import { exitCodes } from '../exitCodes.js';
import {
  createEngine,
  createLogger,
  ensureStateDir,
  ledgerPaths,
  type GlobalOptions,
  type Output,
} from '../runtime.js';
import { applyDocument } from './apply.js';

const json = (value: unknown): string => JSON.stringify(value, null, 2);

/** Every mesh change goes to the ledger of the state directory as one entry. */
function recorder(global: GlobalOptions): MeshRecorder {
  const paths = ledgerPaths(global.stateDir);
  const actor = { kind: 'user', name: userInfo().username, uid: process.getuid?.() ?? -1, pid: process.pid };
  return async (event: MeshEvent) => {
    ensureStateDir(global.stateDir);
    const ledger = await Ledger.open({
      dir: paths.ledgerDir,
      keyFile: paths.ledgerKey,
      origin: paths.origin,
    });
    try {
      const entry = JSON.parse(
        JSON.stringify({ v: 1, ...event, at: new Date().toISOString(), actor }),
      ) as JsonValue;
      await ledger.append(entry);
    } finally {
      await ledger.close();
    }
  };
}

/**
 * Commands that talk to a remote controller open their sockets in this process's network
 * namespace; with --netns they would reach the wrong network.
 */
async function refuseNetns(
  global: GlobalOptions,
  member: MeshMember | undefined,
  what: string,
): Promise<void> {
  if (global.netns === undefined) return;
  if (member !== undefined && (await member.state()).controller.url === 'local') return;
  throw new OpdbusError(
    'OPDBUS_ERR_USAGE',
    `\`opdbus mesh ${what}\` talks to the mesh controller over this host's network and cannot act in another namespace; run it inside the namespace instead: \`ip netns exec ${global.netns} opdbus mesh ${what} …\` (the host's node runs it in its own network).`,
  );
}

function memberOptions(global: GlobalOptions): { record: MeshRecorder } {
  return { record: recorder(global) };
}

/** `opdbus mesh init FILE --node NAME`. */
export async function init(
  global: GlobalOptions,
  file: string,
  options: MeshJoinOptions & { url?: string; node: string },
  output: Output,
): Promise<number> {
  ensureStateDir(global.stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_STATE_READ',
      `Cannot read the mesh definition ${file}: ${(err as Error).message}.`,
      { cause: err },
    );
  }
  const { settings, nodes } = parseDefinition(text, file);
  const declared = nodes.find((n) => n.name === options.node);
  const record = recorder(global);
  const controller = await MeshController.create(global.stateDir, yamlParse(text), {
    record,
    source: file,
    ...(options.url === undefined ? {} : { url: options.url }),
  });
  const request: { node: string; endpoint?: string; subnets?: string[]; interface?: string } = {
    node: options.node,
  };
  if (options.interface !== undefined) request.interface = options.interface;
  const endpoint = options.endpoint ?? declared?.endpoint;
  if (endpoint !== undefined) request.endpoint = endpoint;
  if (options.subnet !== undefined) request.subnets = options.subnet;
  const { node } = await MeshMember.enrollController(controller, request, { record });
  if (global.json) output.out(json({ ok: true, mesh: settings.name, node }));
  else
    output.out(
      `Created mesh ${settings.name} (${settings.pool}, ${settings.topology}); this node is ${node.name} at ${node.address}, key generated here (public ${node.publicKey}).\nNext: \`opdbus mesh serve\`, \`opdbus mesh token ${settings.name}\` for each other node, \`opdbus mesh apply ${settings.name}\` here.`,
    );
  return exitCodes.OK.code;
}

/** `opdbus mesh token MESH`. */
export async function token(
  global: GlobalOptions,
  mesh: string,
  options: { node?: string; ttl?: string; url?: string },
  output: Output,
): Promise<number> {
  const controller = await MeshController.open(global.stateDir, mesh, { record: recorder(global) });
  let ttlS: number | undefined;
  if (options.ttl !== undefined) {
    ttlS = Number(options.ttl);
    if (!Number.isInteger(ttlS) || ttlS <= 0)
      throw new OpdbusError('OPDBUS_ERR_USAGE', `--ttl takes whole seconds, got "${options.ttl}".`);
  }
  const issued = await controller.issueToken({
    ...(options.node === undefined ? {} : { node: options.node }),
    ...(ttlS === undefined ? {} : { ttlS }),
    ...(options.url === undefined ? {} : { url: options.url }),
  });
  if (global.json) output.out(json({ ok: true, ...issued }));
  else output.out(issued.token);
  return exitCodes.OK.code;
}

/** `opdbus mesh join TOKEN`. */
export async function join(
  global: GlobalOptions,
  tokenText: string,
  options: MeshJoinOptions,
  output: Output,
): Promise<number> {
  await refuseNetns(global, undefined, 'join');
  ensureStateDir(global.stateDir);
  const request: { node?: string; endpoint?: string; subnets?: string[]; interface?: string } = {};
  if (options.interface !== undefined) request.interface = options.interface;
  if (options.node !== undefined) request.node = options.node;
  if (options.endpoint !== undefined) request.endpoint = options.endpoint;
  if (options.subnet !== undefined) request.subnets = options.subnet;
  const { member, node, roster } = await MeshMember.join(
    global.stateDir,
    tokenText,
    request,
    memberOptions(global),
  );
  if (global.json && !options.apply)
    output.out(json({ ok: true, mesh: roster.name, node, generation: roster.generation }));
  else if (!global.json)
    output.out(
      `Joined mesh ${roster.name} as ${node.name} at ${node.address} (key generated here, public ${node.publicKey}); ${roster.nodes.length - 1} other node(s).`,
    );
  if (!options.apply) return exitCodes.OK.code;
  return applyRoster(global, member, roster, {}, output);
}

async function applyRoster(
  global: GlobalOptions,
  member: MeshMember,
  roster: Roster,
  options: MeshApplyOptions,
  output: Output,
): Promise<number> {
  let code = await applyAt(global, member, roster, Date.now(), options, output);
  if (options.dryRun || !options.wait || code !== exitCodes.OK.code) return code;
  // Scheduled rotations: wait for each and apply at that moment, as every other node does.
  for (const at of pendingSwitches(roster, Date.now())) {
    const scheduled = roster.nodes
      .filter((n) => n.next !== undefined && Date.parse(n.next.at) === at)
      .map((n) => n.name);
    if (!global.json)
      output.out(
        `Waiting until ${new Date(at).toISOString()} to switch the key(s) of ${scheduled.join(', ')}.`,
      );
    await delay(Math.max(0, at - Date.now()));
    code = await applyAt(global, member, roster, Date.now(), { with: options.with ?? [] }, output);
    if (code !== exitCodes.OK.code) return code;
  }
  return code;
}

async function applyAt(
  global: GlobalOptions,
  member: MeshMember,
  roster: Roster,
  now: number,
  options: Omit<MeshApplyOptions, 'wait'>,
  output: Output,
): Promise<number> {
  const sections = await member.document(roster, now);
  const engine = await createEngine(global);
  const source = `mesh ${roster.name} (roster generation ${roster.generation})`;
  const meshDoc = parseStateDocument(JSON.stringify({ version: 1, plugins: sections }), {
    source,
    registry: engine.registry,
  });
  // The host's own documents join the mesh's in one transaction (one checkpoint, one rollback).
  const own = await Promise.all((options.with ?? []).map((path) => loadDesired(path, engine.registry)));
  const doc =
    own.length === 0
      ? meshDoc
      : mergeDocuments(
          [meshDoc, ...own],
          `${source} with ${(options.with ?? []).join(', ')}`,
          engine.registry,
        );
  let result: ApplyResult | undefined;
  const code = await applyDocument(
    global,
    engine,
    doc,
    { ...options, onResult: (r) => (result = r) },
    output,
  );
  if (!options.dryRun && code === exitCodes.OK.code) await member.applied(roster, result?.txId);
  return code;
}

/** Options of `opdbus mesh apply`. */
export interface MeshApplyOptions {
  dryRun?: boolean;
  /** Also apply the key rotations scheduled in the roster, each at its time. */
  wait?: boolean;
  /** The host's own documents (files or directories), merged into the mesh's transaction. */
  with?: string[];
}

/** `opdbus mesh apply MESH [--with PATH]...`. */
export async function apply(
  global: GlobalOptions,
  mesh: string,
  options: MeshApplyOptions,
  output: Output,
): Promise<number> {
  const member = await MeshMember.open(global.stateDir, mesh, memberOptions(global));
  await refuseNetns(global, member, 'apply');
  return applyRoster(global, member, await member.roster(), options, output);
}

/** `opdbus mesh document MESH [--node NAME]`. */
export async function document(
  global: GlobalOptions,
  mesh: string,
  options: { node?: string },
  output: Output,
): Promise<number> {
  let roster: Roster;
  let name = options.node;
  if ((await MeshController.list(global.stateDir)).includes(mesh)) {
    roster = (await (await MeshController.open(global.stateDir, mesh)).roster()).roster;
    name ??= (await (await MeshMember.open(global.stateDir, mesh)).state()).node;
  } else {
    const member = await MeshMember.open(global.stateDir, mesh);
    await refuseNetns(global, member, 'document');
    roster = await member.roster();
    name ??= (await member.state()).node;
  }
  const doc = { version: 1, plugins: planNode(roster, name) };
  if (global.json) output.out(json(doc));
  else
    output.out(
      `# mesh ${roster.name}, node ${name}, roster generation ${roster.generation}\n${stringify(doc)}`,
    );
  return exitCodes.OK.code;
}

/** `opdbus mesh remove MESH NODE`. */
export async function remove(
  global: GlobalOptions,
  mesh: string,
  node: string,
  output: Output,
): Promise<number> {
  const controller = await MeshController.open(global.stateDir, mesh, { record: recorder(global) });
  const roster = await controller.remove(node);
  if (global.json) output.out(json({ ok: true, mesh, removed: node, generation: roster.generation }));
  else
    output.out(
      `Removed ${node} from mesh ${mesh} (roster generation ${roster.generation}): its key is revoked; every node drops it on its next \`opdbus mesh apply ${mesh}\`.`,
    );
  return exitCodes.OK.code;
}

/** `opdbus mesh rotate MESH [--apply]`. */
export async function rotate(
  global: GlobalOptions,
  mesh: string,
  options: { apply?: boolean; in?: string },
  output: Output,
): Promise<number> {
  const member = await MeshMember.open(global.stateDir, mesh, memberOptions(global));
  await refuseNetns(global, member, 'rotate');
  let at: Date | undefined;
  if (options.in !== undefined) {
    const seconds = Number(options.in);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400)
      throw new OpdbusError(
        'OPDBUS_ERR_USAGE',
        `--in takes seconds between 1 and 86400, got "${options.in}".`,
      );
    at = new Date(Date.now() + seconds * 1000);
  }
  const { publicKey, keyGeneration, roster } = await member.rotate(at === undefined ? {} : { at });
  if (!global.json || !options.apply)
    output.out(
      global.json
        ? json({ ok: true, mesh, publicKey, keyGeneration, generation: roster.generation })
        : at === undefined
          ? `New key ${keyGeneration} of mesh ${mesh} generated here (public ${publicKey}); the controller revoked the old one (roster generation ${roster.generation}). Apply this node, then the others.`
          : `New key ${keyGeneration} of mesh ${mesh} generated here (public ${publicKey}); every node switches at ${at.toISOString()}: run \`opdbus mesh apply ${mesh} --wait\` on each before then.`,
    );
  if (!options.apply) return exitCodes.OK.code;
  return applyRoster(global, member, await member.roster(), { wait: at !== undefined }, output);
}

/** `opdbus mesh status MESH`. */
export async function status(global: GlobalOptions, mesh: string, output: Output): Promise<number> {
  const member = await MeshMember.open(global.stateDir, mesh);
  await refuseNetns(global, member, 'status');
  const state = await member.state();
  const roster = await member.roster();
  const netns = global.netns === undefined ? undefined : openNetns(netnsPath(global.netns));
  let peers: { publicKey: string; endpoint?: string; lastHandshake?: string; rx: string; tx: string }[] = [];
  try {
    using backend = await openBackend({ netns });
    // A node may have its own interface name (the definition's per-node `interface`).
    const self = roster.nodes.find((n) => n.name === state.node);
    const device = await backend.get(self?.interface ?? roster.interface);
    peers = (device?.peers ?? []).map((p) => ({
      publicKey: encodeKey(p.publicKey),
      ...(p.endpoint === undefined ? {} : { endpoint: p.endpoint }),
      ...(p.lastHandshakeMs === 0 ? {} : { lastHandshake: new Date(p.lastHandshakeMs).toISOString() }),
      rx: String(p.rxBytes),
      tx: String(p.txBytes),
    }));
  } finally {
    (netns as { close?: () => void } | undefined)?.close?.();
  }
  const byKey = new Map(peers.map((p) => [p.publicKey, p]));
  const nodes = roster.nodes.map((n) => ({
    ...n,
    self: n.name === state.node,
    peer: byKey.get(n.publicKey),
  }));
  if (global.json) {
    output.out(
      json({
        mesh,
        node: state.node,
        generation: roster.generation,
        applied: state.appliedGeneration,
        nodes,
      }),
    );
    return exitCodes.OK.code;
  }
  const lines = [
    `mesh ${mesh}: roster generation ${roster.generation} (applied here: ${state.appliedGeneration}), ${roster.topology}, ${roster.pool}`,
  ];
  for (const n of nodes) {
    const where = n.self
      ? 'this node'
      : n.peer === undefined
        ? 'not a peer here (yet)'
        : `handshake ${n.peer.lastHandshake ?? 'never'}, rx ${n.peer.rx} B, tx ${n.peer.tx} B`;
    lines.push(`  ${n.name.padEnd(16)} ${n.address.padEnd(16)} ${(n.endpoint ?? '-').padEnd(22)} ${where}`);
  }
  output.out(lines.join('\n'));
  return exitCodes.OK.code;
}

/** `opdbus mesh list`. */
export async function list(global: GlobalOptions, output: Output): Promise<number> {
  const controls = await MeshController.list(global.stateDir);
  const member = await MeshMember.list(global.stateDir);
  if (global.json) output.out(json({ controls, member }));
  else {
    const all = [...new Set([...controls, ...member])].sort();
    output.out(
      all.length === 0
        ? 'No meshes in this state directory.'
        : all
            .map(
              (m) =>
                `${m}${controls.includes(m) ? '  (controller)' : ''}${member.includes(m) ? '  (member)' : ''}`,
            )
            .join('\n'),
    );
  }
  return exitCodes.OK.code;
}

/** `opdbus mesh serve [--listen HOST:PORT]`: runs until SIGINT/SIGTERM. */
export async function serve(
  global: GlobalOptions,
  options: { listen?: string },
  output: Output,
): Promise<number> {
  await refuseNetns(global, undefined, 'serve');
  const listen = options.listen ?? '0.0.0.0:7800';
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (m === null)
    throw new OpdbusError(
      'OPDBUS_ERR_USAGE',
      `--listen takes HOST:PORT (e.g. 0.0.0.0:7800), got "${listen}".`,
    );
  const meshes = await MeshController.list(global.stateDir);
  if (meshes.length === 0)
    throw new OpdbusError(
      'OPDBUS_ERR_MESH_NOT_FOUND',
      `This state directory (${global.stateDir}) controls no mesh; create one with \`opdbus mesh init\`.`,
    );
  const logger = createLogger(global.logLevel);
  const app = createMeshServer({ stateDir: global.stateDir, record: recorder(global), logger });
  const url = await app.listen({ host: m[1] ?? m[2]!, port: Number(m[3]) });
  output.out(`Serving mesh ${meshes.join(', ')} on ${url}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await app.close();
  return exitCodes.OK.code;
}

/** Options of `opdbus mesh join`. */
export interface MeshJoinOptions {
  node?: string;
  endpoint?: string;
  subnet?: string[];
  interface?: string;
  apply?: boolean;
}
