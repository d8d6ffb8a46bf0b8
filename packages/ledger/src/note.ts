import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { OpdbusError } from '@opdbus/core';
import { sha256 } from './hash.js';

/** The C2SP signed-note signature type byte of Ed25519. */
export const ED25519_TYPE = 0x01;
/** The most signatures a note may carry before it is refused (the spec asks for at least 16). */
export const MAX_NOTE_SIGNATURES = 64;

/** One signature line of a signed note: key name, key id and the signature bytes. */
export interface NoteSignature {
  name: string;
  /** The 32-bit key id (big-endian first bytes of the signature line). */
  keyId: number;
  /** The signature, without the key id. */
  signature: Buffer;
}

/** A parsed C2SP signed note. The text MUST be ignored until a trusted signature is verified. */
export interface SignedNote {
  /** The note text, ending in a newline. */
  text: string;
  signatures: NoteSignature[];
}

function noteError(message: string, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_LEDGER_CHECKPOINT_INVALID', message, { data });
}

function keyError(message: string, data: Record<string, unknown> = {}): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_LEDGER_KEY', message, { data });
}

/** Key names are non-empty and have no Unicode spaces and no "+". */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !/\p{Zs}/u.test(name);
}

/** The C2SP key id: SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4], big-endian. */
export function keyIdOf(name: string, type: number, publicKey: Uint8Array): number {
  return sha256(
    Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.from([type]), publicKey]),
  ).readUInt32BE(0);
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/** Split at the first `count - 1` plus signs (the base64 key data may contain "+"). */
function splitKey(text: string, count: number): string[] | undefined {
  const parts: string[] = [];
  let rest = text;
  for (let i = 1; i < count; i++) {
    const at = rest.indexOf('+');
    if (at < 0) return undefined;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

function hex8(id: number): string {
  return id.toString(16).padStart(8, '0');
}

/** A key that can verify Ed25519 signatures on notes. */
export class NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  /** The 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  readonly #key: KeyObject;

  constructor(name: string, publicKey: Uint8Array) {
    if (!isValidKeyName(name))
      throw keyError(`"${name}" is not a valid key name (non-empty, no spaces, no "+").`, { name });
    if (publicKey.length !== 32)
      throw keyError('An Ed25519 public key is 32 bytes.', { length: publicKey.length });
    this.name = name;
    this.publicKey = Buffer.from(publicKey);
    this.keyId = keyIdOf(name, ED25519_TYPE, this.publicKey);
    this.#key = createPublicKey({
      key: Buffer.concat([SPKI_ED25519, this.publicKey]),
      format: 'der',
      type: 'spki',
    });
  }

  /** Parse a verifier key string `NAME+KEYID+BASE64(0x01 ‖ public key)` (the Go note / sumdb format). */
  static parse(vkey: string): NoteVerifier {
    const parts = splitKey(vkey.trim(), 3);
    if (parts === undefined) throw keyError(`"${vkey}" is not a verifier key (expected NAME+KEYID+BASE64).`);
    const [name, id, b64] = parts as [string, string, string];
    const raw = Buffer.from(b64, 'base64');
    if (
      !/^[0-9a-f]{8}$/.test(id) ||
      raw.length !== 33 ||
      raw[0] !== ED25519_TYPE ||
      raw.toString('base64') !== b64
    )
      throw keyError(`"${vkey}" is not an Ed25519 verifier key.`);
    const verifier = new NoteVerifier(name, raw.subarray(1));
    if (hex8(verifier.keyId) !== id)
      throw keyError(`The key id of verifier key "${vkey}" does not match its key.`);
    return verifier;
  }

  /** The verifier key string: `NAME+KEYID+BASE64(0x01 ‖ public key)`. */
  toString(): string {
    return `${this.name}+${hex8(this.keyId)}+${Buffer.concat([Buffer.from([ED25519_TYPE]), this.publicKey]).toString('base64')}`;
  }

  /** Whether `signature` is this key's valid signature of `text`. */
  verify(text: string, signature: NoteSignature): boolean {
    if (signature.name !== this.name || signature.keyId !== this.keyId || signature.signature.length !== 64)
      return false;
    try {
      return verify(null, Buffer.from(text, 'utf8'), this.#key, signature.signature);
    } catch {
      return false;
    }
  }
}

/** An Ed25519 key that signs notes (a log's checkpoints, or a witness's cosignatures). */
export class NoteSigner {
  readonly verifier: NoteVerifier;
  readonly #seed: Buffer;
  readonly #key: KeyObject;

  constructor(name: string, seed: Uint8Array) {
    if (seed.length !== 32)
      throw keyError('An Ed25519 private key seed is 32 bytes.', { length: seed.length });
    this.#seed = Buffer.from(seed);
    this.#key = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519, this.#seed]),
      format: 'der',
      type: 'pkcs8',
    });
    const spki = createPublicKey(this.#key).export({ format: 'der', type: 'spki' });
    this.verifier = new NoteVerifier(name, spki.subarray(SPKI_ED25519.length));
  }

  /** A new random key named `name`. */
  static generate(name: string): NoteSigner {
    const { privateKey } = generateKeyPairSync('ed25519');
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    return new NoteSigner(name, der.subarray(PKCS8_ED25519.length));
  }

  /** Parse a private key string `PRIVATE+KEY+NAME+KEYID+BASE64(0x01 ‖ seed)`. */
  static parse(skey: string): NoteSigner {
    const parts = splitKey(skey.trim(), 5);
    if (parts === undefined || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY')
      throw keyError('Not a signer key (expected PRIVATE+KEY+NAME+KEYID+BASE64).');
    const [, , name, id, b64] = parts as [string, string, string, string, string];
    const raw = Buffer.from(b64, 'base64');
    if (raw.length !== 33 || raw[0] !== ED25519_TYPE) throw keyError('Not an Ed25519 signer key.');
    const signer = new NoteSigner(name, raw.subarray(1));
    if (hex8(signer.keyId) !== id) throw keyError('The key id of the signer key does not match its key.');
    return signer;
  }

  get name(): string {
    return this.verifier.name;
  }

  get keyId(): number {
    return this.verifier.keyId;
  }

  /** The private key string (keep it secret: mode 0600). */
  toString(): string {
    return `PRIVATE+KEY+${this.name}+${hex8(this.keyId)}+${Buffer.concat([Buffer.from([ED25519_TYPE]), this.#seed]).toString('base64')}`;
  }

  /** Sign a note text. */
  sign(text: string): NoteSignature {
    return {
      name: this.name,
      keyId: this.keyId,
      signature: sign(null, Buffer.from(text, 'utf8'), this.#key),
    };
  }
}

/** Serialise a signed note. */
export function formatNote(note: SignedNote): string {
  if (!note.text.endsWith('\n')) throw noteError('A note text must end with a newline.');
  const lines = note.signatures.map((s) => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(s.keyId >>> 0);
    return `— ${s.name} ${Buffer.concat([id, s.signature]).toString('base64')}\n`;
  });
  return `${note.text}\n${lines.join('')}`;
}

/** Parse a signed note (without verifying it). Throws `OPDBUS_ERR_LEDGER_CHECKPOINT_INVALID` when malformed. */
export function parseNote(input: string): SignedNote {
  if (input.length > 1 << 20) throw noteError('The note is larger than 1 MiB.');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f]/.test(input))
    throw noteError('A note must not contain control characters other than newline.');
  if (input.includes('\uFFFD')) throw noteError('A note must be valid UTF-8.');
  const split = input.lastIndexOf('\n\n');
  if (split < 0 || !input.endsWith('\n'))
    throw noteError('A signed note needs its text, a blank line and signature lines.');
  const text = input.slice(0, split + 1);
  const lines = input.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES)
    throw noteError(`The note has more than ${MAX_NOTE_SIGNATURES} signatures.`);
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    const m = /^— (\S+) ([A-Za-z0-9+/]+={0,2})$/u.exec(line);
    if (m === null) throw noteError(`Malformed signature line: "${line.slice(0, 120)}".`);
    const raw = Buffer.from(m[2]!, 'base64');
    if (raw.length < 5 || raw.toString('base64') !== m[2])
      throw noteError(`Malformed signature in line "${line.slice(0, 120)}".`);
    if (!isValidKeyName(m[1]!)) throw noteError(`Invalid key name "${m[1]}".`);
    signatures.push({ name: m[1]!, keyId: raw.readUInt32BE(0), signature: raw.subarray(4) });
  }
  return { text, signatures };
}

/**
 * Verify a signed note against trusted keys, as C2SP signed-note requires: signatures of unknown
 * keys are ignored; a known key's signature that fails rejects the note; at least one known key
 * must have signed. Returns the note and the verifiers whose signatures verified.
 */
export function verifyNote(
  input: string | SignedNote,
  verifiers: readonly NoteVerifier[],
): { note: SignedNote; verifiedBy: NoteVerifier[] } {
  const note = typeof input === 'string' ? parseNote(input) : input;
  const verifiedBy: NoteVerifier[] = [];
  for (const signature of note.signatures) {
    const known = verifiers.find((v) => v.name === signature.name && v.keyId === signature.keyId);
    if (known === undefined) continue;
    if (!known.verify(note.text, signature)) {
      throw noteError(`The signature of ${signature.name} on the note does not verify.`, {
        key: signature.name,
      });
    }
    if (!verifiedBy.includes(known)) verifiedBy.push(known);
  }
  if (verifiedBy.length === 0) {
    throw noteError(
      `The note is not signed by a trusted key (signed by: ${note.signatures.map((s) => s.name).join(', ') || 'nobody'}; trusted: ${verifiers.map((v) => v.name).join(', ')}).`,
    );
  }
  return { note, verifiedBy };
}

/** Add a signature (e.g. a witness's cosignature) to a signed note; an existing one of the same key is replaced. */
export function addSignature(input: string | SignedNote, signer: NoteSigner): string {
  const note = typeof input === 'string' ? parseNote(input) : input;
  const others = note.signatures.filter((s) => !(s.name === signer.name && s.keyId === signer.keyId));
  return formatNote({ text: note.text, signatures: [...others, signer.sign(note.text)] });
}
