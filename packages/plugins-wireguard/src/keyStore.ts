/**
 * The node's WireGuard key store: private and preshared keys sealed at rest with the ledger's
 * AES-256-GCM encryption (`seal`/`unseal` of @opdbus/ledger) under a 32-byte key file of mode
 * 0600. Keys are generated here, on the node that owns them; only public keys leave it.
 *
 * Layout under the state directory:
 * - `keys/wireguard.key`: the sealing key (created on first use, mode 0600);
 * - `wireguard/keys/ID.sealed`: one sealed key each (the id is authenticated with it, so files
 *   cannot be swapped);
 * - `wireguard/keys/index.json`: what is public: each id's kind, public key (private keys) and
 *   fingerprint (SHA-256 of the secret, to recognise a key a device holds without unsealing).
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OpdbusError, writeFileAtomic } from '@opdbus/core';
import { createSecretFile, loadOrCreateSnapshotKey, readSecretFile, seal, unseal } from '@opdbus/ledger';
import { KEY_LENGTH, encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from './keys.js';

/** What kind of secret an entry holds. */
export type StoredKeyKind = 'private' | 'preshared';

/** The public facts about one stored key. */
export interface StoredKeyInfo {
  id: string;
  kind: StoredKeyKind;
  /** Base64 public key (private keys only). */
  publicKey?: string;
  /** Hex SHA-256 of the secret. */
  fingerprint: string;
  /** When it was created (ISO 8601). */
  created: string;
}

/** Key ids: letters, digits, `.`, `_`, `-`, `@`; at most 128 characters. */
export const storedKeyIdPattern = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

const aad = (id: string): string => `opdbus-wireguard-key:${id}`;

/** The SHA-256 fingerprint (hex) of a secret key. */
export function keyFingerprint(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex');
}

function checkId(id: string): void {
  if (!storedKeyIdPattern.test(id)) {
    throw new OpdbusError(
      'OPDBUS_ERR_WIREGUARD_INVALID',
      `"${id}" is not a stored key id: letters, digits, ".", "_", "-" and "@", starting with a letter or digit, at most 128 characters.`,
      { data: { id } },
    );
  }
}

/** Options of {@link WireguardKeyStore.open}. */
export interface KeyStoreOptions {
  /** The op-dbus state directory. */
  stateDir: string;
  /** The sealing key file (default `STATE_DIR/keys/wireguard.key`). */
  sealingKeyFile?: string;
}

/**
 * Sealed WireGuard keys in a state directory.
 *
 * @example
 * ```ts
 * const store = new WireguardKeyStore({ stateDir: '/var/lib/opdbus' });
 * const info = await store.generate('wg0', 'private'); // info.publicKey leaves the node, nothing else
 * ```
 */
export class WireguardKeyStore {
  /** Where the sealed keys live. */
  readonly dir: string;
  readonly #sealingKeyFile: string;
  #sealingKey: Promise<Buffer> | undefined;

  constructor(options: KeyStoreOptions) {
    this.dir = join(options.stateDir, 'wireguard', 'keys');
    this.#sealingKeyFile = options.sealingKeyFile ?? join(options.stateDir, 'keys', 'wireguard.key');
  }

  #key(): Promise<Buffer> {
    this.#sealingKey ??= loadOrCreateSnapshotKey(this.#sealingKeyFile);
    this.#sealingKey.catch(() => (this.#sealingKey = undefined));
    return this.#sealingKey;
  }

  #file(id: string): string {
    return join(this.dir, `${id}.sealed`);
  }

  /**
   * Every stored key's public facts, by id. The index is rebuilt for sealed files it misses
   * (two processes that stored keys at once), so it never hides a key.
   */
  async index(): Promise<Map<string, StoredKeyInfo>> {
    const index = await this.#readIndex();
    const missing = (await this.ids()).filter((id) => !index.has(id));
    if (missing.length === 0) return index;
    for (const id of missing) {
      const secret = await this.secret(id);
      const info: StoredKeyInfo = {
        id,
        kind: 'private',
        fingerprint: keyFingerprint(secret),
        created: (await stat(this.#file(id))).mtime.toISOString(),
      };
      // A private key is a clamped scalar; a preshared key is 32 random bytes, clamped by
      // chance only one time in 32: the kind is a best guess for entries rebuilt this way.
      if ((secret[0]! & 7) === 0 && (secret[31]! & 0xc0) === 0x40)
        info.publicKey = encodeKey(publicKeyOf(secret));
      else info.kind = 'preshared';
      index.set(id, info);
    }
    await this.#writeIndex(index);
    return index;
  }

  async #readIndex(): Promise<Map<string, StoredKeyInfo>> {
    let text: string;
    try {
      text = await readFile(join(this.dir, 'index.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw storeError(`Cannot read the key index in ${this.dir}: ${(err as Error).message}.`, err);
    }
    const list = JSON.parse(text) as StoredKeyInfo[];
    return new Map(list.map((e) => [e.id, e]));
  }

  async #writeIndex(index: Map<string, StoredKeyInfo>): Promise<void> {
    const list = [...index.values()].sort((a, b) => a.id.localeCompare(b.id));
    await writeFileAtomic(join(this.dir, 'index.json'), `${JSON.stringify(list, null, 2)}\n`, 0o600);
  }

  /** The public facts of one key, undefined when it is not stored. */
  async info(id: string): Promise<StoredKeyInfo | undefined> {
    checkId(id);
    return (await this.index()).get(id);
  }

  /** The id of the stored key with this secret's fingerprint, if any. */
  async findByFingerprint(fingerprint: string): Promise<StoredKeyInfo | undefined> {
    for (const info of (await this.index()).values()) if (info.fingerprint === fingerprint) return info;
    return undefined;
  }

  /**
   * Generate and store a new key under `id` (a private key, or a preshared key). Refuses an id
   * that exists (`OPDBUS_ERR_WIREGUARD_KEY`): a key is never overwritten, rotation uses a new id.
   */
  async generate(id: string, kind: StoredKeyKind = 'private'): Promise<StoredKeyInfo> {
    return this.put(id, kind === 'private' ? generatePrivateKey() : generatePresharedKey(), kind);
  }

  /** Store an existing secret under a new `id` (e.g. a key a device held before a checkpoint). */
  async put(id: string, secret: Uint8Array, kind: StoredKeyKind): Promise<StoredKeyInfo> {
    checkId(id);
    if (secret.length !== KEY_LENGTH) {
      throw new OpdbusError(
        'OPDBUS_ERR_WIREGUARD_INVALID',
        `A WireGuard key has 32 bytes, not ${secret.length}.`,
      );
    }
    const sealed = seal(await this.#key(), secret, aad(id));
    if (!(await createSecretFile(this.#file(id), sealed))) {
      throw new OpdbusError(
        'OPDBUS_ERR_WIREGUARD_KEY',
        `A key "${id}" is already stored in ${this.dir}; keys are never overwritten: use a new id (rotation) or remove the old one.`,
        { data: { id } },
      );
    }
    const info: StoredKeyInfo = {
      id,
      kind,
      fingerprint: keyFingerprint(secret),
      created: new Date().toISOString(),
    };
    if (kind === 'private') info.publicKey = encodeKey(publicKeyOf(secret));
    const index = await this.index();
    index.set(id, info);
    await this.#writeIndex(index);
    return info;
  }

  /** The secret of a stored key; `OPDBUS_ERR_WIREGUARD_KEY` when there is none or it does not decrypt. */
  async secret(id: string): Promise<Buffer> {
    checkId(id);
    let blob: Buffer;
    try {
      blob = await readSecretFile(this.#file(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new OpdbusError(
          'OPDBUS_ERR_WIREGUARD_KEY',
          `No WireGuard key "${id}" is stored in ${this.dir}; generate it on this node (a private key is generated by the first apply that names it).`,
          { data: { id } },
        );
      }
      throw err;
    }
    try {
      return unseal(await this.#key(), blob, aad(id), `the WireGuard key ${this.#file(id)}`);
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_WIREGUARD_KEY',
        `The stored WireGuard key "${id}" does not decrypt with ${this.#sealingKeyFile}: ${(err as Error).message}`,
        { data: { id }, cause: err },
      );
    }
  }

  /** Whether a key is stored under `id`. */
  async has(id: string): Promise<boolean> {
    checkId(id);
    try {
      await stat(this.#file(id));
      return true;
    } catch {
      return false;
    }
  }

  /** Remove a stored key (its sealed file and index entry). */
  async remove(id: string): Promise<void> {
    checkId(id);
    await rm(this.#file(id), { force: true });
    const index = await this.index();
    if (index.delete(id)) await this.#writeIndex(index);
  }

  /** Ids of the sealed files present (for consistency checks). */
  async ids(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((f) => f.endsWith('.sealed')).map((f) => f.slice(0, -7));
    } catch {
      return [];
    }
  }
}

function storeError(message: string, cause: unknown): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_WIREGUARD_KEY', message, { cause });
}
