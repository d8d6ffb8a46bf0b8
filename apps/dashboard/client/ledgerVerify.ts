// The ledger's proofs, checked in the browser with WebCrypto: the same formats as @opdbus/ledger
// (docs/ledger-format.md): an entry's leaf hash is SHA-256(0x00 ‖ RFC 8785 canonical JSON), interior
// nodes SHA-256(0x01 ‖ left ‖ right), RFC 9162 inclusion and consistency proofs, and checkpoints that
// are C2SP signed notes (Ed25519) over "origin\nsize\nbase64(root)\n". Nothing here trusts the
// daemon: the entry is hashed here, the path is walked here, the signature is checked here against
// the key the operator pinned.

/** A checkpoint after its signature verified. */
export interface Checkpoint {
  origin: string;
  size: number;
  /** The root hash, hex. */
  root: string;
}

/** The outcome of one check, for people. */
export interface Verdict {
  ok: boolean;
  /** What was checked and what was found. */
  steps: { label: string; ok: boolean; detail: string }[];
}

const ED25519_TYPE = 0x01;

const subtle = (): typeof globalThis.crypto.subtle => globalThis.crypto.subtle;

/** RFC 8785 canonical JSON (the ledger's storage form). */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} cannot be carried by JSON`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v: unknown) => canonicalJson(v ?? null)).join(',')}]`;
      const record = value as Record<string, unknown>;
      const members = Object.keys(record)
        .sort()
        .filter((k) => record[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`);
      return `{${members.join(',')}}`;
    }
    default:
      throw new TypeError(`a ${typeof value} cannot be carried by JSON`);
  }
}

/** Hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Bytes of hex (throws on anything but an even count of hex digits). */
export function fromHex(hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new TypeError(`"${hex.slice(0, 20)}" is not hex`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await subtle().digest('SHA-256', buf));
}

/** The RFC 9162 leaf hash of a ledger entry: SHA-256(0x00 ‖ canonical JSON). */
export async function leafHashOf(entry: unknown): Promise<Uint8Array> {
  return sha256(new Uint8Array([0]), new TextEncoder().encode(canonicalJson(entry)));
}

const nodeHash = (left: Uint8Array, right: Uint8Array): Promise<Uint8Array> =>
  sha256(new Uint8Array([1]), left, right);

/** RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, or undefined when the proof is malformed. */
export async function rootFromInclusionProof(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): Promise<Uint8Array | undefined> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size)
    return undefined;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32 || sn === 0n) return undefined;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : undefined;
}

/** RFC 9162 section 2.1.4.2: whether the tree (size2, root2) extends the tree (size1, root1). */
export async function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): Promise<boolean> {
  if (size1 > size2 || size1 < 0) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0) return proof.length === 0;
  if (proof.length === 0 || proof.some((p) => p.length !== 32)) return false;
  const first = BigInt(size1);
  const chain = (first & (first - 1n)) === 0n ? [root1, ...proof] : [...proof];
  let fn = first - 1n;
  let sn = BigInt(size2 - 1);
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = chain[0]!;
  let sr = chain[0]!;
  for (const c of chain.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(fr, root1) && equal(sr, root2);
}

/** A parsed verifier key `NAME+KEYID+BASE64(0x01 ‖ public key)`. */
export interface VerifierKey {
  name: string;
  keyId: number;
  publicKey: Uint8Array;
}

/** Parse and check a verifier key string (the key id must match the key). */
export async function parseVerifierKey(vkey: string): Promise<VerifierKey> {
  const text = vkey.trim();
  const a = text.indexOf('+');
  const b = text.indexOf('+', a + 1);
  if (a <= 0 || b < 0) throw new TypeError('A verifier key is NAME+KEYID+BASE64.');
  const name = text.slice(0, a);
  const id = text.slice(a + 1, b);
  let raw: Uint8Array;
  try {
    raw = fromBase64(text.slice(b + 1));
  } catch {
    throw new TypeError('The key part of the verifier key is not base64.');
  }
  if (!/^[0-9a-f]{8}$/.test(id) || raw.length !== 33 || raw[0] !== ED25519_TYPE)
    throw new TypeError('Not an Ed25519 verifier key.');
  const publicKey = raw.subarray(1);
  const keyId = await keyIdOf(name, publicKey);
  if (keyId.toString(16).padStart(8, '0') !== id) throw new TypeError('The key id does not match the key.');
  return { name, keyId, publicKey };
}

async function keyIdOf(name: string, publicKey: Uint8Array): Promise<number> {
  const digest = await sha256(
    new TextEncoder().encode(`${name}\n`),
    new Uint8Array([ED25519_TYPE]),
    publicKey,
  );
  return new DataView(digest.buffer, digest.byteOffset).getUint32(0);
}

/**
 * Verify a signed checkpoint note with the pinned key (Ed25519 through WebCrypto) and parse its
 * text. Throws with the reason when it does not verify or is malformed.
 */
export async function openCheckpoint(note: string, key: VerifierKey): Promise<Checkpoint> {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Error('The checkpoint is not a signed note.');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  let verified = false;
  for (const line of lines) {
    const m = /^— (\S+) ([A-Za-z0-9+/]+={0,2})$/u.exec(line);
    if (m === null) throw new Error(`Malformed signature line "${line.slice(0, 80)}".`);
    const raw = fromBase64(m[2]!);
    if (raw.length < 5) throw new Error('A signature line is too short.');
    const keyId = new DataView(raw.buffer, raw.byteOffset).getUint32(0);
    if (m[1] !== key.name || keyId !== key.keyId) continue;
    const publicKey = await subtle().importKey('raw', key.publicKey.slice(), { name: 'Ed25519' }, false, [
      'verify',
    ]);
    const ok = await subtle().verify(
      { name: 'Ed25519' },
      publicKey,
      raw.slice(4),
      new TextEncoder().encode(text),
    );
    if (!ok) throw new Error(`The signature of ${key.name} on the checkpoint does not verify.`);
    verified = true;
  }
  if (!verified) throw new Error(`The checkpoint carries no signature of the pinned key ${key.name}.`);
  const [origin, size, root] = text.slice(0, -1).split('\n');
  if (origin === undefined || origin === '' || size === undefined || !/^(0|[1-9][0-9]*)$/.test(size))
    throw new Error('The checkpoint text is malformed.');
  const rootBytes = fromBase64(root ?? '');
  if (rootBytes.length !== 32 || toBase64(rootBytes) !== root)
    throw new Error('The checkpoint root is not a hash.');
  return { origin, size: Number(size), root: toHex(rootBytes) };
}

/** What the daemon serves for one entry's check. */
export interface InclusionInput {
  index: number;
  /** The entry as served (its JSON value). */
  entry: unknown;
  /** The proof as served: `size`, `proof` (hex hashes). */
  proof: { size: number; proof: string[] };
  /** The signed checkpoint note as served. */
  checkpointNote: string;
  /** The verifier key the operator pinned. */
  pinnedKey: string;
}

/**
 * The whole check of one entry, in the browser: the checkpoint's signature against the pinned key,
 * the entry's leaf hash computed from its content, and the inclusion proof from that leaf to the
 * signed root.
 */
export async function verifyEntry(input: InclusionInput): Promise<Verdict> {
  const steps: Verdict['steps'] = [];
  const done = (): Verdict => ({ ok: steps.every((s) => s.ok), steps });
  let key: VerifierKey;
  let checkpoint: Checkpoint;
  try {
    key = await parseVerifierKey(input.pinnedKey);
    checkpoint = await openCheckpoint(input.checkpointNote, key);
    steps.push({
      label: 'checkpoint signature',
      ok: true,
      detail: `Ed25519 signature of ${key.name} verified; tree size ${checkpoint.size}`,
    });
  } catch (err) {
    steps.push({ label: 'checkpoint signature', ok: false, detail: (err as Error).message });
    return done();
  }
  const leaf = await leafHashOf(input.entry);
  steps.push({ label: 'leaf hash', ok: true, detail: `SHA-256(0x00 ‖ canonical JSON) = ${toHex(leaf)}` });
  if (input.proof.size !== checkpoint.size) {
    steps.push({
      label: 'inclusion proof',
      ok: false,
      detail: `The proof is for a tree of ${input.proof.size} entries, the checkpoint has ${checkpoint.size}.`,
    });
    return done();
  }
  let path: Uint8Array[];
  try {
    path = input.proof.proof.map(fromHex);
  } catch (err) {
    steps.push({ label: 'inclusion proof', ok: false, detail: (err as Error).message });
    return done();
  }
  const root = await rootFromInclusionProof(leaf, input.index, checkpoint.size, path);
  const ok = root !== undefined && toHex(root) === checkpoint.root;
  steps.push({
    label: 'inclusion proof',
    ok,
    detail: ok
      ? `${path.length} hashes lead from entry ${input.index} to the signed root ${checkpoint.root.slice(0, 16)}…`
      : `The entry's hash does not lead to the signed root ${checkpoint.root.slice(0, 16)}… (the entry or the proof was altered).`,
  });
  return done();
}
