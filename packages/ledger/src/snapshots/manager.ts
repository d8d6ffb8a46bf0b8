import { join } from 'node:path';
import { OpdbusError, canonicalJson, newTxId, type JsonValue } from '@opdbus/core';
import { sha256 } from '../hash.js';
import type { Ledger } from '../ledger.js';
import { BtrfsBackend, DirectoryBackend, isOnBtrfs, type SnapshotBackend } from './backend.js';
import { loadOrCreateSnapshotKey, seal, unseal } from './crypto.js';
import { planRetention, type RetentionPlan, type RetentionPolicy } from './retention.js';

/** What made a snapshot. */
export interface SnapshotTrigger {
  /** `apply` (a committed apply), `confirm`, `manual`, `import` … */
  kind: string;
  txId?: string;
}

/** The plaintext description stored beside a snapshot's ciphertext (and recorded in the ledger). */
export interface SnapshotMeta {
  version: 1;
  id: string;
  /** ISO time. */
  createdAt: string;
  trigger: SnapshotTrigger;
  /** Plugins whose observed sections the snapshot holds. */
  plugins: string[];
  /** SHA-256 (hex) of the canonical JSON of the state. */
  stateHash: string;
  /** SHA-256 (hex) of the encrypted file `state.enc`. */
  cipherHash: string;
  backend: SnapshotBackend['kind'];
  /** Index of the ledger entry that records it. */
  ledgerIndex: number;
}

/**
 * A snapshot as listed: `ok` (present, recorded in the ledger with this very ciphertext),
 * `missing` (recorded, not on disk), `unrecorded` (on disk, unknown to the ledger), `altered`
 * (ciphertext or description differs from the ledger's record: replayed or changed), `pruned`
 * (the ledger records it as pruned, yet it is on disk: replayed).
 */
export interface SnapshotInfo {
  id: string;
  status: 'ok' | 'missing' | 'unrecorded' | 'altered' | 'pruned';
  createdAt?: string;
  trigger?: SnapshotTrigger;
  plugins?: string[];
  stateHash?: string;
  ledgerIndex?: number;
  problem?: string;
}

/** Options of {@link SnapshotManager.open}. */
export interface SnapshotManagerOptions {
  /** Directory of the snapshots (e.g. `STATE_DIR/snapshots`). */
  dir: string;
  /** The AES-256-GCM key file (32 bytes, mode 0600), created on first use. */
  keyFile: string;
  /** The open ledger that records snapshots. */
  ledger: Ledger;
  /** `auto` (default): btrfs when `dir`'s parent is on btrfs, else plain directories. */
  backend?: 'auto' | 'directory' | 'btrfs' | SnapshotBackend;
  retention?: Partial<RetentionPolicy>;
  /** Who acts, recorded in the ledger entries (e.g. `{ kind: 'user', name, uid, pid }`). */
  actor?: JsonValue;
  /** The clock (tests simulate one). */
  now?: () => Date;
}

const META = 'meta.json';
const STATE = 'state.enc';

function aadFor(id: string, createdAt: string): string {
  return `opdbus-snapshot-v1\n${id}\n${createdAt}`;
}

interface LedgerView {
  created: Map<string, { index: number; cipherHash: string; stateHash: string; createdAt: string }>;
  pruned: Map<string, number>;
}

function invalid(message: string, data: Record<string, unknown>): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_SNAPSHOT_INVALID', message, { data });
}

/**
 * Encrypted snapshots of the observed state, each recorded in the ledger (its ciphertext hash in
 * a `snapshot.created` entry) so that a snapshot put back after pruning, or an old one copied over
 * a newer one, is detected before it is restored.
 */
export class SnapshotManager {
  readonly backend: SnapshotBackend;
  readonly #key: Buffer;
  readonly #ledger: Ledger;
  readonly #retention: Partial<RetentionPolicy>;
  readonly #actor: JsonValue | undefined;
  readonly #now: () => Date;

  private constructor(backend: SnapshotBackend, key: Buffer, options: SnapshotManagerOptions) {
    this.backend = backend;
    this.#key = key;
    this.#ledger = options.ledger;
    this.#retention = options.retention ?? {};
    this.#actor = options.actor;
    this.#now = options.now ?? (() => new Date());
  }

  /** Open the snapshot store, choosing the backend and loading (or creating) the key. */
  static async open(options: SnapshotManagerOptions): Promise<SnapshotManager> {
    let backend: SnapshotBackend;
    const choice = options.backend ?? 'auto';
    if (typeof choice === 'object') backend = choice;
    else if (choice === 'btrfs' || (choice === 'auto' && (await isOnBtrfs(join(options.dir, '..')))))
      backend = new BtrfsBackend(options.dir);
    else backend = new DirectoryBackend(options.dir);
    return new SnapshotManager(backend, await loadOrCreateSnapshotKey(options.keyFile), options);
  }

  #entry(kind: string, fields: Record<string, JsonValue>): JsonValue {
    return {
      v: 1,
      kind,
      at: this.#now().toISOString(),
      ...(this.#actor === undefined ? {} : { actor: this.#actor }),
      ...fields,
    };
  }

  /** Encrypt `state`, record it in the ledger, and store it as a read-only snapshot. */
  async create(
    state: Readonly<Record<string, unknown>>,
    trigger: SnapshotTrigger = { kind: 'manual' },
  ): Promise<SnapshotMeta> {
    const now = this.#now();
    const id = newTxId(now);
    const createdAt = now.toISOString();
    const plaintext = Buffer.from(canonicalJson(state), 'utf8');
    const stateHash = sha256(plaintext).toString('hex');
    const ciphertext = seal(this.#key, plaintext, aadFor(id, createdAt));
    const cipherHash = sha256(ciphertext).toString('hex');
    const plugins = Object.keys(state).sort();
    const { index } = await this.#ledger.append(
      this.#entry('snapshot.created', {
        id,
        createdAt,
        cipherHash,
        stateHash,
        plugins,
        backend: this.backend.kind,
        trigger: { ...trigger },
      }),
    );
    const meta: SnapshotMeta = {
      version: 1,
      id,
      createdAt,
      trigger,
      plugins,
      stateHash,
      cipherHash,
      backend: this.backend.kind,
      ledgerIndex: index,
    };
    await this.backend.create(id, {
      [META]: Buffer.from(`${JSON.stringify(meta, null, 2)}\n`),
      [STATE]: ciphertext,
    });
    return meta;
  }

  async #view(): Promise<LedgerView> {
    const view: LedgerView = { created: new Map(), pruned: new Map() };
    const marker = Buffer.from('"kind":"snapshot.');
    for await (const entry of this.#ledger.entries()) {
      if (!entry.bytes.includes(marker)) continue;
      const value = entry.value as Record<string, JsonValue>;
      const id = typeof value.id === 'string' ? value.id : undefined;
      if (id === undefined) continue;
      if (value.kind === 'snapshot.created' || value.kind === 'snapshot.imported') {
        const text = (v: JsonValue | undefined): string => (typeof v === 'string' ? v : '');
        view.created.set(id, {
          index: entry.index,
          cipherHash: text(value.cipherHash),
          stateHash: text(value.stateHash),
          createdAt: text(value.createdAt),
        });
        view.pruned.delete(id);
      } else if (value.kind === 'snapshot.pruned') {
        view.pruned.set(id, entry.index);
      }
    }
    return view;
  }

  async #check(
    id: string,
    view: LedgerView,
  ): Promise<{ info: SnapshotInfo; meta?: SnapshotMeta; ciphertext?: Buffer }> {
    const recorded = view.created.get(id);
    let meta: SnapshotMeta;
    let ciphertext: Buffer;
    try {
      meta = JSON.parse((await this.backend.read(id, META)).toString('utf8')) as SnapshotMeta;
      ciphertext = await this.backend.read(id, STATE);
    } catch (err) {
      if (
        err instanceof OpdbusError &&
        err.code === 'OPDBUS_ERR_SNAPSHOT_NOT_FOUND' &&
        recorded !== undefined
      ) {
        return {
          info: {
            id,
            status: 'missing',
            createdAt: recorded.createdAt,
            ledgerIndex: recorded.index,
            problem: 'recorded in the ledger but not on disk',
          },
        };
      }
      throw err;
    }
    const base: SnapshotInfo = {
      id,
      status: 'ok',
      createdAt: meta.createdAt,
      trigger: meta.trigger,
      plugins: meta.plugins,
      stateHash: meta.stateHash,
      ...(recorded === undefined ? {} : { ledgerIndex: recorded.index }),
    };
    const cipherHash = sha256(ciphertext).toString('hex');
    if (recorded === undefined)
      return {
        info: { ...base, status: 'unrecorded', problem: 'the ledger has no record of this snapshot' },
      };
    const prunedAt = view.pruned.get(id);
    if (prunedAt !== undefined) {
      return {
        info: {
          ...base,
          status: 'pruned',
          problem: `the ledger recorded it as pruned (entry ${prunedAt}); it was put back`,
        },
      };
    }
    if (
      meta.id !== id ||
      cipherHash !== recorded.cipherHash ||
      meta.createdAt !== recorded.createdAt ||
      meta.stateHash !== recorded.stateHash
    ) {
      return {
        info: {
          ...base,
          status: 'altered',
          problem: `it is not the snapshot ledger entry ${recorded.index} recorded (ciphertext ${cipherHash.slice(0, 12)}…, recorded ${recorded.cipherHash.slice(0, 12)}…): replayed or changed`,
        },
      };
    }
    return { info: base, meta, ciphertext };
  }

  /** Every snapshot on disk or in the ledger, oldest first, each checked against the ledger. */
  async list(): Promise<SnapshotInfo[]> {
    const view = await this.#view();
    const ids = new Set([
      ...(await this.backend.list()),
      ...[...view.created.keys()].filter((id) => !view.pruned.has(id)),
    ]);
    const out: SnapshotInfo[] = [];
    for (const id of [...ids].sort()) out.push((await this.#check(id, view)).info);
    return out;
  }

  /**
   * The state a snapshot holds, after checking it against the ledger and decrypting it. Throws
   * `OPDBUS_ERR_SNAPSHOT_INVALID` for a snapshot that is replayed, altered, pruned or unrecorded.
   */
  async load(id: string): Promise<{ meta: SnapshotMeta; state: Record<string, JsonValue> }> {
    const { info, meta, ciphertext } = await this.#check(id, await this.#view());
    if (info.status === 'missing') {
      throw new OpdbusError(
        'OPDBUS_ERR_SNAPSHOT_NOT_FOUND',
        `Snapshot ${id} is recorded in the ledger (entry ${info.ledgerIndex}) but is not on disk.`,
        {
          data: { id },
        },
      );
    }
    if (info.status !== 'ok' || meta === undefined || ciphertext === undefined) {
      throw invalid(
        `Snapshot ${id} does not verify: ${info.problem ?? info.status}. It will not be restored.`,
        { id, status: info.status },
      );
    }
    const plaintext = unseal(this.#key, ciphertext, aadFor(id, meta.createdAt), `Snapshot ${id}`);
    if (sha256(plaintext).toString('hex') !== meta.stateHash) {
      throw invalid(`Snapshot ${id} decrypts to a state whose hash differs from the one recorded.`, { id });
    }
    return { meta, state: JSON.parse(plaintext.toString('utf8')) as Record<string, JsonValue> };
  }

  /**
   * Apply timeline retention: remove what the policy does not keep (recording each removal in the
   * ledger), or only report it with `dryRun`. Only verified snapshots take part; others are left
   * for an operator to look at.
   */
  async prune(
    options: { dryRun?: boolean; policy?: Partial<RetentionPolicy> } = {},
  ): Promise<RetentionPlan & { removed: string[] }> {
    const items = (await this.list()).filter((s) => s.status === 'ok' && s.createdAt !== undefined);
    const plan = planRetention(
      items.map((s) => ({ id: s.id, createdAt: new Date(s.createdAt!) })),
      { ...this.#retention, ...options.policy },
      this.#now(),
    );
    const removed: string[] = [];
    if (options.dryRun !== true) {
      for (const { id } of plan.remove) {
        await this.#ledger.append(this.#entry('snapshot.pruned', { id, reason: 'timeline retention' }));
        await this.backend.remove(id);
        removed.push(id);
      }
    }
    return { ...plan, removed };
  }

  /** Record that a snapshot was restored by transaction `txId` (with its outcome). */
  async recordRestore(id: string, result: { txId?: string; status: string }): Promise<void> {
    await this.#ledger.append(
      this.#entry('snapshot.restored', {
        id,
        status: result.status,
        ...(result.txId === undefined ? {} : { txId: result.txId }),
      }),
    );
  }

  #btrfs(): BtrfsBackend {
    if (!(this.backend instanceof BtrfsBackend)) {
      throw new OpdbusError(
        'OPDBUS_ERR_SNAPSHOT_BACKEND',
        `Export and import use btrfs send/receive; the snapshots in ${this.backend.root} are plain directories (the state directory is not on btrfs).`,
        { data: { backend: this.backend.kind } },
      );
    }
    return this.backend;
  }

  /** Export a snapshot with `btrfs send` (incremental against `parent` when given). The snapshot is verified first. */
  async export(id: string, file: string, parent?: string): Promise<void> {
    const backend = this.#btrfs();
    await this.load(id);
    if (parent !== undefined) await this.load(parent);
    await backend.send(id, file, parent);
  }

  /**
   * Import a `btrfs send` stream with `btrfs receive`. The snapshot must decrypt with this host's
   * key; it is then recorded in the ledger (`snapshot.imported`) and usable like any other.
   */
  async import(file: string): Promise<SnapshotMeta> {
    const backend = this.#btrfs();
    const id = await backend.receive(file);
    const meta = JSON.parse((await backend.read(id, META)).toString('utf8')) as SnapshotMeta;
    const ciphertext = await backend.read(id, STATE);
    const plaintext = unseal(this.#key, ciphertext, aadFor(id, meta.createdAt), `Imported snapshot ${id}`);
    if (meta.id !== id || sha256(plaintext).toString('hex') !== meta.stateHash) {
      await backend.remove(id);
      throw invalid(`Imported snapshot ${id} does not match its own description; it was removed again.`, {
        id,
        file,
      });
    }
    const cipherHash = sha256(ciphertext).toString('hex');
    const { index } = await this.#ledger.append(
      this.#entry('snapshot.imported', {
        id,
        createdAt: meta.createdAt,
        cipherHash,
        stateHash: meta.stateHash,
        plugins: meta.plugins,
        backend: backend.kind,
      }),
    );
    return { ...meta, cipherHash, ledgerIndex: index };
  }
}
