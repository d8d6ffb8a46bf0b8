/**
 * The roster: what every node needs to render its document (the mesh settings, the active
 * nodes with their public keys, the revoked keys), signed by the controller as a C2SP signed
 * note with its Ed25519 key. Nodes trust the controller key from their join token and refuse a
 * roster that does not verify or is older than one they applied.
 */
import { OpdbusError, canonicalJson } from '@opdbus/core';
import { NoteVerifier, formatNote, parseNote, verifyNote, type NoteSigner } from '@opdbus/ledger';
import type { MeshSettings } from './definition.js';

/** An enrolled node as every node sees it. */
export interface RosterNode {
  name: string;
  /** Its mesh address (no prefix length). */
  address: string;
  endpoint?: string;
  subnets: string[];
  /** Its current WireGuard public key. */
  publicKey: string;
  /** Its interface, when not the mesh's. */
  interface?: string;
  /**
   * Which of its keys is current: the node stores it as `mesh-MESH-GENERATION` (1 at
   * enrollment, one more per rotation).
   */
  keyGeneration: number;
  /** A scheduled rotation: from `at` on, this is its key (and the current one is revoked). */
  next?: { publicKey: string; keyGeneration: number; at: string };
}

/** A key that must not be a peer anywhere any more. */
export interface RevokedKey {
  publicKey: string;
  node: string;
  reason: 'removed' | 'rotated';
  /** The subnets the node had (removed nodes), whose routes go too. */
  subnets?: string[];
  /** The interface the node had, when not the mesh's (removed nodes delete it). */
  interface?: string;
  at: string;
}

/** The signed roster of a mesh. */
export interface Roster extends MeshSettings {
  v: 1;
  /** Increases with every change; nodes refuse an older one than they applied. */
  generation: number;
  issued: string;
  nodes: RosterNode[];
  revoked: RevokedKey[];
}

const HEADER = 'opdbus-mesh/v1 roster';

function rosterError(message: string, cause?: unknown): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_MESH_ROSTER', message, cause === undefined ? {} : { cause });
}

/** The signer's key name for a mesh. */
export function controllerKeyName(mesh: string): string {
  return `opdbus-mesh-${mesh}`;
}

/** Sign a roster: `opdbus-mesh/v1 roster` and its canonical JSON on one line, then the signature. */
export function signRoster(roster: Roster, signer: NoteSigner): string {
  const text = `${HEADER}\n${canonicalJson(roster)}\n`;
  return formatNote({ text, signatures: [signer.sign(text)] });
}

/**
 * Verify a signed roster with the controller's key (its `vkey` string) and return it. Checks the
 * mesh name, and with `minGeneration` that it is not older than one already applied.
 */
export function verifyRoster(
  note: string,
  vkey: string,
  expect: { mesh: string; minGeneration?: number },
): Roster {
  let text: string;
  try {
    text = verifyNote(parseNote(note), [NoteVerifier.parse(vkey)]).note.text;
  } catch (err) {
    throw rosterError(
      `The roster of mesh ${expect.mesh} does not verify with the controller key this node trusts: ${(err as Error).message}`,
      err,
    );
  }
  const [header, body] = text.split('\n');
  if (header !== HEADER || body === undefined)
    throw rosterError(`The signed note is not a mesh roster ("${header}").`);
  const roster = JSON.parse(body) as Roster;
  if (roster.v !== 1 || roster.name !== expect.mesh)
    throw rosterError(`The roster is for mesh "${roster.name}", not "${expect.mesh}".`);
  if (expect.minGeneration !== undefined && roster.generation < expect.minGeneration) {
    throw rosterError(
      `The controller sent roster generation ${roster.generation} of mesh ${expect.mesh}, older than generation ${expect.minGeneration} this node applied already: a replay, or a controller restored from an old backup.`,
    );
  }
  return roster;
}
