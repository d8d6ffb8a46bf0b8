import { constants } from 'node:fs';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  FileLock,
  OpdbusError,
  canonicalJson,
  describeLockOwner,
  silentLogger,
  writeFileAtomic,
  type JsonValue,
  type LockProbe,
  type Logger,
} from '@opdbus/core';
import { openCheckpoint, signCheckpoint, type Checkpoint } from './checkpoint.js';
import { FRAME_HEADER, FrameType, MAX_PAYLOAD, storedDigest, writeHeader } from './frame.js';
import { HASH_SIZE, leafHash, leafHashesInto } from './hash.js';
import { loadOrCreateSigner } from './keys.js';
import { MerkleTree, type TreeIndex } from './merkle.js';
import { NoteVerifier, type NoteSigner } from './note.js';
import { isTornTail, readAt, scanFrames, syncDir, writeAt } from './storage.js';
import { verifyLedgerFiles, type VerifyOptions, type VerifyReport } from './verify.js';

/** File names inside a ledger directory. */
export const ledgerFiles = {
  log: 'log',
  index: 'index',
  head: 'head',
  verifier: 'verifier.pub',
  lock: 'lock',
  signingKey: 'signing.key',
  treeLevel: (k: number) => `tree.${String(k).padStart(2, '0')}`,
} as const;

/** Options of {@link Ledger.open}. */
export interface LedgerOptions {
  /** The ledger directory (created with mode 0700). */
  dir: string;
  /** The log's origin (checkpoint first line and key name). Default `HOSTNAME/opdbus-ledger`. An existing key keeps its name. */
  origin?: string;
  /** The Ed25519 signing key file (signed-note format, mode 0600), created on first use. Default `DIR/signing.key`. */
  keyFile?: string;
  /** Use this signer instead of a key file. */
  signer?: NoteSigner;
  /**
   * Open for reading only: takes no lock (works while another process appends), repairs nothing,
   * refuses appends. The view is the log up to its last checkpoint record when opened (entries
   * of a batch still being written are not in it); open again to see later entries.
   */
  readOnly?: boolean;
  /**
   * How long a writer waits for another writer to close the ledger (default 30 s; 0 tries
   * once; `Infinity` waits for ever). Then `OPDBUS_ERR_LEDGER_LOCKED` names the holder.
   */
  lockWaitMs?: number;
  /** What this writer is doing, shown to writers that wait for it (default: the process's command line). */
  lockCommand?: string;
  /** Bytes of entries queued for the next group commit before `append` waits (default 64 MiB). */
  maxPendingBytes?: number;
  logger?: Logger;
}

/** What {@link Ledger.open} found and repaired. */
export interface OpenReport {
  /**
   * A torn tail (an incomplete last record: a crash mid-write) that was cut back to the last whole
   * record. Read-only: not cut, and it may also be an append in progress in another process.
   */
  tornTail?: { offset: number; bytes: number; reason: string };
  /** Entries whose index or tree hashes had to be rebuilt from the log (derived files behind after a crash). */
  rebuilt: number;
  /** A checkpoint was signed on open for entries that no checkpoint covered (their batch's checkpoint was torn off). */
  resealed: boolean;
  /** The signing key was created now. */
  keyCreated: boolean;
}

/** One entry read back from the ledger. */
export interface LedgerEntry {
  index: number;
  /** The entry as parsed JSON. */
  value: JsonValue;
  /** The canonical JSON bytes the leaf hash covers. */
  bytes: Buffer;
  /** RFC 9162 leaf hash. */
  leafHash: Buffer;
}

/** What `append` resolves to once the entry is durable. */
export interface AppendResult {
  index: number;
  leafHash: Buffer;
}

interface Pending {
  bytes: Buffer;
  resolve: (result: AppendResult) => void;
  reject: (err: unknown) => void;
}

function ioError(message: string, file: string, cause: unknown): OpdbusError {
  return new OpdbusError(
    'OPDBUS_ERR_LEDGER_IO',
    `${message} (${file}): ${(cause as Error).message ?? String(cause)}`,
    {
      data: {
        file,
        ...((cause as NodeJS.ErrnoException).code ? { errno: (cause as NodeJS.ErrnoException).code } : {}),
      },
      cause,
    },
  );
}

/** Growable offsets of entry records (u64 LE as two u32 per entry). */
class Offsets {
  words = new Uint32Array(1024);
  count = 0;
  push(offset: number): void {
    if ((this.count + 1) * 2 > this.words.length) {
      const next = new Uint32Array(this.words.length * 2);
      next.set(this.words);
      this.words = next;
    }
    this.words[this.count * 2] = offset % 2 ** 32;
    this.words[this.count * 2 + 1] = Math.floor(offset / 2 ** 32);
    this.count++;
  }
  get(i: number): number {
    return this.words[i * 2]! + this.words[i * 2 + 1]! * 2 ** 32;
  }
  bytes(from: number, to = this.count): Buffer {
    return Buffer.from(this.words.buffer, this.words.byteOffset + from * 8, (to - from) * 8);
  }
  truncate(n: number): void {
    this.count = Math.min(this.count, n);
  }
}

/**
 * A tamper-evident, append-only transparency log on local disk.
 *
 * Entries are JSON values stored as RFC 8785 canonical JSON; the log is an RFC 9162 Merkle tree
 * over them; each group commit ends with a C2SP checkpoint (origin, size, root) signed with the
 * host's Ed25519 key, written and fsync'd together with the entries it covers. Concurrent
 * `append` calls are committed in groups with one fdatasync each.
 */
export class Ledger {
  readonly dir: string;
  readonly origin: string;
  /** The verifier key of the log's signing key (publish it to let others verify checkpoints). */
  readonly verifier: NoteVerifier;
  readonly readOnly: boolean;
  readonly openReport: OpenReport;
  readonly #signer: NoteSigner | undefined;
  readonly #log: FileHandle;
  readonly #lock: FileLock | undefined;
  readonly #tree: MerkleTree;
  readonly #offsets: Offsets;
  readonly #logger: Logger;
  readonly #maxPending: number;
  #fileSize: number;
  #checkpoint: string | undefined;
  #checkpointSize: number;
  #headWritten: number;
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #flushing: Promise<void> | undefined;
  #failed: OpdbusError | undefined;
  #closed = false;
  #indexHandle: FileHandle | undefined;
  readonly #levelHandles = new Map<number, FileHandle>();
  #derivedSize: number;

  private constructor(init: {
    dir: string;
    origin: string;
    verifier: NoteVerifier;
    signer: NoteSigner | undefined;
    readOnly: boolean;
    log: FileHandle;
    lock: FileLock | undefined;
    tree: MerkleTree;
    offsets: Offsets;
    fileSize: number;
    checkpoint: string | undefined;
    checkpointSize: number;
    headSize: number;
    derivedSize: number;
    report: OpenReport;
    logger: Logger;
    maxPending: number;
  }) {
    this.dir = init.dir;
    this.origin = init.origin;
    this.verifier = init.verifier;
    this.#signer = init.signer;
    this.readOnly = init.readOnly;
    this.#log = init.log;
    this.#lock = init.lock;
    this.#tree = init.tree;
    this.#offsets = init.offsets;
    this.#fileSize = init.fileSize;
    this.#checkpoint = init.checkpoint;
    this.#checkpointSize = init.checkpointSize;
    this.#headWritten = init.headSize;
    this.#derivedSize = init.derivedSize;
    this.openReport = init.report;
    this.#logger = init.logger;
    this.#maxPending = init.maxPending;
  }

  /**
   * Open (creating if needed) the ledger in `options.dir`.
   *
   * A writer (the default) holds the ledger's lock (`DIR/lock`, an OFD lock the kernel releases
   * when the process dies; see `FileLock` in @opdbus/core) from `open` to `close`: one writer at
   * a time across processes and within one; another writer waits up to `lockWaitMs`, then gets
   * `OPDBUS_ERR_LEDGER_LOCKED` naming the holder. Readers (`readOnly`) take no lock.
   *
   * A torn tail (an incomplete last record left by a crash) is cut back to the last whole record
   * and reported in {@link Ledger.openReport}. A complete record that does not verify, the last
   * one included, is tampering: `OPDBUS_ERR_LEDGER_TAMPERED` with the entry index where it starts,
   * and nothing is cut (run {@link verifyLedger} for the full report).
   */
  static async open(options: LedgerOptions): Promise<Ledger> {
    const dir = options.dir;
    const readOnly = options.readOnly === true;
    const logger = options.logger ?? silentLogger;
    const report: OpenReport = { rebuilt: 0, resealed: false, keyCreated: false };
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw ioError('Cannot create the ledger directory', dir, err);
    }
    const lock = readOnly ? undefined : await lockLedger(dir, options);
    let log: FileHandle | undefined;
    try {
      let signer = options.signer;
      let verifier: NoteVerifier;
      if (signer === undefined && !readOnly) {
        const loaded = await loadOrCreateSigner(
          options.keyFile ?? join(dir, ledgerFiles.signingKey),
          options.origin ?? `${hostname()}/opdbus-ledger`,
        );
        signer = loaded.signer;
        report.keyCreated = loaded.created;
      }
      if (signer !== undefined) {
        verifier = signer.verifier;
        await writeVerifierFile(dir, verifier);
      } else {
        verifier = await readVerifierFile(dir);
      }
      const origin = verifier.name;
      const logPath = join(dir, ledgerFiles.log);
      let created = false;
      try {
        log = await open(logPath, readOnly ? constants.O_RDONLY : constants.O_RDWR);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || readOnly)
          throw ioError('Cannot open the ledger', logPath, err);
        log = await open(logPath, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
        created = true;
      }
      if (created) await syncDir(dir);

      // The head and the index are read before the log's size: a writer in another process
      // (readers take no lock) writes the log first, so what they name is inside that size.
      const head = await readHead(dir);
      let headSize = -1;
      if (head !== undefined) {
        const verified = openCheckpoint(head, [verifier]);
        headSize = verified.checkpoint.size;
      }

      // The derived index: offsets of entry records. Trust it up to its last entry (checked).
      const offsets = new Offsets();
      const indexBytes = await readFile(join(dir, ledgerFiles.index)).catch(() => Buffer.alloc(0));
      let fileSize = (await log.stat()).size;
      const indexed = Math.floor(indexBytes.length / 8);
      if (indexed > 0) {
        const words = new Uint32Array(
          indexBytes.buffer.slice(indexBytes.byteOffset, indexBytes.byteOffset + indexed * 8),
        );
        offsets.words = new Uint32Array(Math.max(1024, words.length * 2));
        offsets.words.set(words);
        offsets.count = indexed;
      }
      let scanFrom = 0;
      let entriesBefore = 0;
      if (offsets.count > 0) {
        const last = offsets.count - 1;
        const at = offsets.get(last);
        const header = at + FRAME_HEADER <= fileSize ? await readAt(log, at, FRAME_HEADER) : Buffer.alloc(0);
        const ok =
          header.length === FRAME_HEADER &&
          header[0] === 0x4f &&
          header[1] === 0x4c &&
          header[2] === FrameType.entry &&
          header.readUInt32LE(8) + header.readUInt32LE(12) * 2 ** 32 === last;
        if (ok) {
          scanFrom = at;
          entriesBefore = last;
          offsets.truncate(last);
        } else {
          offsets.truncate(0);
        }
      }
      const derivedSize = offsets.count;

      // Scan the tail: every record after the last indexed entry, checksums included.
      const tailDigests: Buffer[] = [];
      let checkpoint: string | undefined;
      let checkpointSize = -1;
      let checkpointEnd = -1;
      let expected = entriesBefore;
      const stop = await scanFrames(log, scanFrom, fileSize, (buf, frames) => {
        for (let i = 0; i < frames.count; i++) {
          const at = frames.at[i]!;
          const offset = frames.offset[i]!;
          const seq = frames.seq[i]!;
          const payload = buf.subarray(at + FRAME_HEADER, at + FRAME_HEADER + frames.length[i]!);
          const digest = leafHash(payload);
          if (!digest.equals(storedDigest(buf, at)))
            return {
              offset,
              reason:
                frames.type[i] === FrameType.entry
                  ? `the checksum of entry ${seq} does not match its bytes`
                  : `the checksum of the checkpoint record for size ${seq} does not match its bytes`,
            };
          if (frames.type[i] === FrameType.entry) {
            if (seq !== expected) return { offset, reason: `entry ${seq} where entry ${expected} belongs` };
            offsets.push(offset);
            tailDigests.push(digest);
            expected++;
          } else {
            if (seq !== expected)
              return { offset, reason: `checkpoint for size ${seq} after ${expected} entries` };
            checkpoint = payload.toString('utf8');
            checkpointSize = seq;
            checkpointEnd = offset + FRAME_HEADER + frames.length[i]!;
          }
        }
        return undefined;
      });
      const problem = stop;
      if (problem !== undefined) {
        const torn = await isTornTail(log, problem, fileSize);
        if (!torn || headSize > expected) {
          throw new OpdbusError(
            'OPDBUS_ERR_LEDGER_TAMPERED',
            `The ledger ${logPath} is damaged at entry ${expected} (byte ${problem.offset}: ${problem.reason}) and ${torn ? `the head checkpoint signed ${headSize} entries` : 'it is a complete record (or not a record), not an incomplete one a crash leaves'}, so it is not a torn write. Run \`opdbus ledger verify\` for the full report; nothing was changed.`,
            { data: { file: logPath, index: expected, offset: problem.offset, reason: problem.reason } },
          );
        }
        report.tornTail = {
          offset: problem.offset,
          bytes: fileSize - problem.offset,
          reason: problem.reason,
        };
        if (!readOnly) {
          await log.truncate(problem.offset);
          await log.sync();
          logger.warn(
            { file: logPath, ...report.tornTail },
            'ledger: cut a torn tail back to the last whole record',
          );
          fileSize = problem.offset;
        }
      }
      if (readOnly && checkpointSize >= entriesBefore && checkpointSize < offsets.count) {
        // Entries after the last checkpoint record: a batch another process is writing (or one a
        // crash cut off before its checkpoint, which the next writer re-signs). Not in this view.
        tailDigests.length = checkpointSize - entriesBefore;
        offsets.truncate(checkpointSize);
        fileSize = checkpointEnd;
      }
      const size = offsets.count;
      if (headSize > size) {
        throw new OpdbusError(
          'OPDBUS_ERR_LEDGER_TAMPERED',
          `The ledger ${logPath} has ${size} entries but its head checkpoint signed ${headSize}: entries from index ${size} on were removed.`,
          { data: { file: logPath, index: size, headSize } },
        );
      }
      // The tree: stored levels, completed from the log where they are behind. A root that does
      // not match the last checkpoint is retried from the leaf hashes alone before it counts as damage.
      const covered =
        checkpointSize === size && checkpoint !== undefined
          ? openCheckpoint(checkpoint, [verifier]).checkpoint
          : undefined;
      let loaded = await loadTree(dir, log, offsets, entriesBefore, tailDigests, false);
      if (covered !== undefined && !covered.root.equals(loaded.tree.root(size))) {
        loaded = await loadTree(dir, log, offsets, entriesBefore, tailDigests, true);
        loaded.derivedGood = 0;
        if (!covered.root.equals(loaded.tree.root(size))) {
          throw new OpdbusError(
            'OPDBUS_ERR_LEDGER_TAMPERED',
            `The ledger ${logPath}: the entries do not hash to the root its last checkpoint signed at size ${size}. Run \`opdbus ledger verify\` to locate the change.`,
            { data: { file: logPath, index: entriesBefore, size } },
          );
        }
      }
      report.rebuilt = loaded.rebuilt;
      const ledger = new Ledger({
        dir,
        origin,
        verifier,
        signer,
        readOnly,
        log,
        lock,
        tree: loaded.tree,
        offsets,
        fileSize,
        checkpoint: covered !== undefined ? checkpoint : undefined,
        checkpointSize: covered !== undefined ? size : -1,
        headSize,
        derivedSize: Math.min(derivedSize, loaded.derivedGood),
        report,
        logger,
        maxPending: options.maxPendingBytes ?? 64 * 1024 * 1024,
      });
      if (!readOnly) {
        if (checkpointSize !== size && size > 0) {
          await ledger.#seal();
          report.resealed = true;
        }
        await ledger.#writeDerived();
      }
      return ledger;
    } catch (err) {
      await log?.close().catch(() => undefined);
      await lock?.release();
      throw err;
    }
  }

  /** The number of durable entries. */
  get size(): number {
    return this.#tree.size;
  }

  #usable(): void {
    if (this.#closed)
      throw new OpdbusError('OPDBUS_ERR_LEDGER_IO', `The ledger ${this.dir} is closed.`, {
        data: { dir: this.dir },
      });
    if (this.#failed !== undefined) throw this.#failed;
  }

  /**
   * Append one entry (any JSON value; stored as RFC 8785 canonical JSON). Resolves once the entry
   * and a signed checkpoint covering it are fsync'd. Concurrent appends share one commit.
   */
  async append(value: unknown): Promise<AppendResult> {
    this.#usable();
    if (this.readOnly)
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_INVALID_ARGUMENT',
        `The ledger ${this.dir} was opened read-only.`,
      );
    let text: string;
    try {
      text = canonicalJson(value);
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_INVALID_ARGUMENT',
        `A ledger entry must be JSON: ${(err as Error).message}.`,
        { cause: err },
      );
    }
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > MAX_PAYLOAD) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_INVALID_ARGUMENT',
        `A ledger entry is at most ${MAX_PAYLOAD} bytes; this one has ${bytes.length}.`,
      );
    }
    while (this.#pendingBytes > this.#maxPending && this.#flushing !== undefined) await this.#flushing;
    return new Promise<AppendResult>((resolve, reject) => {
      this.#pending.push({ bytes, resolve, reject });
      this.#pendingBytes += bytes.length;
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#flushing !== undefined) return;
    this.#flushing = (async () => {
      // Let appends made in the same tick join the first group.
      await Promise.resolve();
      try {
        while (this.#pending.length > 0) {
          const batch = this.#pending;
          this.#pending = [];
          this.#pendingBytes = 0;
          await this.#commit(batch);
        }
      } finally {
        this.#flushing = undefined;
      }
    })();
  }

  async #commit(batch: Pending[]): Promise<void> {
    if (this.#failed !== undefined) {
      for (const p of batch) p.reject(this.#failed);
      return;
    }
    const first = this.#tree.size;
    const n = batch.length;
    let total = 0;
    for (const p of batch) total += FRAME_HEADER + p.bytes.length;
    const frames = Buffer.allocUnsafe(total);
    const offsets = new Uint32Array(n);
    const lengths = new Uint32Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const bytes = batch[i]!.bytes;
      offsets[i] = at + FRAME_HEADER;
      lengths[i] = bytes.length;
      frames.set(bytes, at + FRAME_HEADER);
      at += FRAME_HEADER + bytes.length;
    }
    const digests = Buffer.allocUnsafe(n * HASH_SIZE);
    leafHashesInto(frames, offsets, lengths, digests);
    for (let i = 0; i < n; i++) {
      writeHeader(
        frames,
        offsets[i]! - FRAME_HEADER,
        FrameType.entry,
        lengths[i]!,
        first + i,
        digests.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE),
      );
    }
    this.#tree.appendLeafHashes(digests);
    const note = this.#signNote();
    const noteBytes = Buffer.from(note, 'utf8');
    const cpFrame = Buffer.allocUnsafe(FRAME_HEADER + noteBytes.length);
    writeHeader(cpFrame, 0, FrameType.checkpoint, noteBytes.length, first + n, leafHash(noteBytes));
    cpFrame.set(noteBytes, FRAME_HEADER);
    const position = this.#fileSize;
    try {
      await writeAt(this.#log, frames, position);
      await writeAt(this.#log, cpFrame, position + frames.length);
      await this.#log.datasync();
    } catch (err) {
      const error = ioError(
        `Appending ${n} entries to the ledger failed; they were not recorded`,
        join(this.dir, ledgerFiles.log),
        err,
      );
      this.#tree.truncate(first);
      try {
        await this.#log.truncate(position);
        await this.#log.datasync();
      } catch (truncErr) {
        this.#failed = ioError(
          'The ledger could not undo a failed append; reopen it',
          join(this.dir, ledgerFiles.log),
          truncErr,
        );
      }
      for (const p of batch) p.reject(error);
      return;
    }
    for (let i = 0; i < n; i++) this.#offsets.push(position + offsets[i]! - FRAME_HEADER);
    this.#fileSize = position + frames.length + cpFrame.length;
    this.#checkpoint = note;
    this.#checkpointSize = first + n;
    for (let i = 0; i < n; i++) {
      batch[i]!.resolve({ index: first + i, leafHash: digests.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE) });
    }
    await this.#writeDerived().catch((err: unknown) =>
      this.#logger.warn(
        { err },
        'ledger: could not update the derived index/tree files; they are rebuilt on the next open',
      ),
    );
  }

  #signNote(): string {
    if (this.#signer === undefined)
      throw new OpdbusError('OPDBUS_ERR_LEDGER_KEY', `The ledger ${this.dir} has no signing key.`);
    const size = this.#tree.size;
    return signCheckpoint({ origin: this.origin, size, root: this.#tree.root(size) }, this.#signer);
  }

  /** Write a checkpoint record for the current size (after a crash lost the last batch's one). */
  async #seal(): Promise<void> {
    const note = this.#signNote();
    const bytes = Buffer.from(note, 'utf8');
    const frame = Buffer.allocUnsafe(FRAME_HEADER + bytes.length);
    writeHeader(frame, 0, FrameType.checkpoint, bytes.length, this.#tree.size, leafHash(bytes));
    frame.set(bytes, FRAME_HEADER);
    await writeAt(this.#log, frame, this.#fileSize);
    await this.#log.datasync();
    this.#fileSize += frame.length;
    this.#checkpoint = note;
    this.#checkpointSize = this.#tree.size;
  }

  /** Bring the derived index and tree-level files up to the current size (not fsync'd: rebuilt from the log if lost). */
  async #writeDerived(): Promise<void> {
    const from = this.#derivedSize;
    const to = this.#tree.size;
    if (from === to) return;
    if (this.#indexHandle === undefined) {
      this.#indexHandle = await open(
        join(this.dir, ledgerFiles.index),
        constants.O_RDWR | constants.O_CREAT,
        0o600,
      );
    }
    if (from === 0) await this.#indexHandle.truncate(0);
    await writeAt(this.#indexHandle, this.#offsets.bytes(from, to), from * 8);
    for (let k = 0; ; k++) {
      const lo = Math.floor(from / 2 ** k);
      const hi = Math.floor(to / 2 ** k);
      if (hi === 0) break;
      let handle = this.#levelHandles.get(k);
      if (handle === undefined) {
        handle = await open(
          join(this.dir, ledgerFiles.treeLevel(k)),
          constants.O_RDWR | constants.O_CREAT,
          0o600,
        );
        this.#levelHandles.set(k, handle);
      }
      if (from === 0) await handle.truncate(0);
      if (hi > lo)
        await writeAt(handle, this.#tree.level(k).subarray(lo * HASH_SIZE, hi * HASH_SIZE), lo * HASH_SIZE);
    }
    this.#derivedSize = to;
  }

  /** Wait until every append made so far is durable (or failed). */
  async flush(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  /** Read entry `index`; its checksum is verified. */
  async get(index: number): Promise<LedgerEntry> {
    this.#usable();
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_NOT_FOUND',
        `The ledger has entries 0 to ${this.size - 1}; there is no entry ${index}.`,
        {
          data: { index, size: this.size },
        },
      );
    }
    const at = this.#offsets.get(index);
    const header = await readAt(this.#log, at, FRAME_HEADER);
    const length = header.readUInt32LE(4);
    const bytes =
      length <= MAX_PAYLOAD ? await readAt(this.#log, at + FRAME_HEADER, length) : Buffer.alloc(0);
    const hash = leafHash(bytes);
    const seq = header.readUInt32LE(8) + header.readUInt32LE(12) * 2 ** 32;
    if (
      bytes.length !== length ||
      seq !== index ||
      !hash.equals(this.#tree.leafHash(index)) ||
      !hash.equals(storedDigest(header, 0))
    ) {
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_TAMPERED',
        `Entry ${index} of the ledger ${this.dir} does not match its recorded hash. Run \`opdbus ledger verify\`.`,
        { data: { index, offset: at } },
      );
    }
    return { index, value: JSON.parse(bytes.toString('utf8')) as JsonValue, bytes, leafHash: hash };
  }

  /** Entries from `from` (default 0) to `to` (exclusive; default the size), each checksum-verified. */
  async *entries(from = 0, to = this.size): AsyncGenerator<LedgerEntry> {
    for (let i = Math.max(0, from); i < Math.min(to, this.size); i++) yield await this.get(i);
  }

  /** The RFC 9162 root hash at `size` (default: the current size). */
  root(size: TreeIndex = this.size): Buffer {
    return this.#tree.root(size);
  }

  /** The leaf hash of entry `index`. */
  leafHash(index: number): Buffer {
    return this.#tree.leafHash(index);
  }

  /** The RFC 9162 inclusion proof of entry `index` in the tree of `size` entries (default: current). */
  inclusionProof(index: TreeIndex, size: TreeIndex = this.size): Buffer[] {
    return this.#tree.inclusionProof(index, size);
  }

  /** The RFC 9162 consistency proof from size `size1` to `size2` (default: current). */
  consistencyProof(size1: TreeIndex, size2: TreeIndex = this.size): Buffer[] {
    return this.#tree.consistencyProof(size1, size2);
  }

  /** The signed checkpoint note for the current size (C2SP tlog-checkpoint). */
  async checkpoint(): Promise<string> {
    this.#usable();
    await this.flush();
    if (this.#checkpoint !== undefined && this.#checkpointSize === this.size) return this.#checkpoint;
    if (this.#signer === undefined) {
      const head = await readHead(this.dir);
      if (head !== undefined && openCheckpoint(head, [this.verifier]).checkpoint.size === this.size)
        return head;
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_KEY',
        `The ledger ${this.dir} is open read-only without its signing key and has no checkpoint for size ${this.size}.`,
      );
    }
    // Only the empty log has no checkpoint record; sign one (not stored: nothing to cover).
    this.#checkpoint = this.#signNote();
    this.#checkpointSize = this.size;
    return this.#checkpoint;
  }

  /** The parsed current checkpoint. */
  async checkpointInfo(): Promise<Checkpoint> {
    return openCheckpoint(await this.checkpoint(), [this.verifier]).checkpoint;
  }

  /** Verify the whole log: every record's checksum, order, every checkpoint's signature and root. */
  async verify(options: Omit<VerifyOptions, 'verifier'> = {}): Promise<VerifyReport> {
    await this.flush();
    return verifyLedgerFiles(this.dir, { ...options, verifier: this.verifier });
  }

  /** Wait for pending appends, write the head checkpoint, release the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
      if (!this.readOnly && this.#failed === undefined && this.size > 0 && this.#headWritten !== this.size) {
        const note = await this.checkpoint();
        await writeFileAtomic(join(this.dir, ledgerFiles.head), note, 0o644);
        this.#headWritten = this.size;
      }
    } finally {
      this.#closed = true;
      await this.#indexHandle?.close().catch(() => undefined);
      for (const handle of this.#levelHandles.values()) await handle.close().catch(() => undefined);
      await this.#log.close().catch(() => undefined);
      await this.#lock?.release();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Take the writer's lock of the ledger in `dir` (see {@link Ledger.open}). */
async function lockLedger(dir: string, options: LedgerOptions): Promise<FileLock> {
  const path = join(dir, ledgerFiles.lock);
  try {
    return await FileLock.acquire(path, {
      waitMs: options.lockWaitMs ?? 30_000,
      ...(options.lockCommand === undefined ? {} : { command: options.lockCommand }),
      busyError: (owner) =>
        new OpdbusError(
          'OPDBUS_ERR_LEDGER_LOCKED',
          `The ledger ${dir} is open for writing by ${describeLockOwner(owner)}; wait for it to finish (readers open it read-only and need not wait).`,
          {
            data: {
              lock: path,
              ...(owner === undefined ? {} : { pid: owner.pid, command: owner.command, since: owner.since }),
            },
          },
        ),
    });
  } catch (err) {
    if (err instanceof OpdbusError) throw err;
    throw ioError('Cannot take the ledger lock', path, err);
  }
}

/** Who holds the writer's lock of the ledger in `dir` now (`held: false` when nobody does); takes nothing. */
export async function ledgerWriter(dir: string): Promise<LockProbe> {
  return FileLock.probe(join(dir, ledgerFiles.lock));
}

async function readHead(dir: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, ledgerFiles.head), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError('Cannot read the head checkpoint', join(dir, ledgerFiles.head), err);
  }
}

async function writeVerifierFile(dir: string, verifier: NoteVerifier): Promise<void> {
  const path = join(dir, ledgerFiles.verifier);
  const text = `${verifier.toString()}\n`;
  const existing = await readFile(path, 'utf8').catch(() => undefined);
  if (existing !== text) await writeFileAtomic(path, text, 0o644);
}

async function readVerifierFile(dir: string): Promise<NoteVerifier> {
  const path = join(dir, ledgerFiles.verifier);
  try {
    return NoteVerifier.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_LEDGER_KEY',
      `Cannot read the ledger's verifier key ${path}: ${(err as Error).message}`,
      {
        data: { file: path },
        cause: err,
      },
    );
  }
}

/**
 * Load the tree: level 0 from its stored file, completed from the log's record checksums where it
 * is behind; upper levels from their files unless `fromLeaves`, recomputed where short.
 */
async function loadTree(
  dir: string,
  log: FileHandle,
  offsets: Offsets,
  indexedBefore: number,
  tailDigests: Buffer[],
  fromLeaves: boolean,
): Promise<{ tree: MerkleTree; derivedGood: number; rebuilt: number }> {
  const size = offsets.count;
  const stored = await readFile(join(dir, ledgerFiles.treeLevel(0))).catch(() => Buffer.alloc(0));
  const have = Math.min(Math.floor(stored.length / HASH_SIZE), indexedBefore);
  const level0 = Buffer.allocUnsafe(size * HASH_SIZE);
  stored.copy(level0, 0, 0, have * HASH_SIZE);
  // Entries indexed before but missing from the stored level 0: take their record checksums.
  for (let i = have; i < indexedBefore; i++) {
    const header = await readAt(log, offsets.get(i), FRAME_HEADER);
    storedDigest(header, 0).copy(level0, i * HASH_SIZE);
  }
  for (let i = 0; i < tailDigests.length; i++) tailDigests[i]!.copy(level0, (indexedBefore + i) * HASH_SIZE);
  const levels: Uint8Array[] = [level0];
  if (!fromLeaves) {
    for (let k = 1; Math.floor(size / 2 ** k) > 0; k++) {
      const want = Math.floor(indexedBefore / 2 ** k) * HASH_SIZE;
      const bytes = await readFile(join(dir, ledgerFiles.treeLevel(k))).catch(() => Buffer.alloc(0));
      if (bytes.length < want) break;
      levels.push(bytes.subarray(0, want));
    }
  }
  // Stored levels cover the indexed entries; the tail is appended on top of them.
  const { tree, complete } = MerkleTree.fromLevels(levels, indexedBefore);
  tree.appendLeafHashes(level0.subarray(indexedBefore * HASH_SIZE, size * HASH_SIZE));
  return {
    tree,
    derivedGood: complete && have === indexedBefore ? indexedBefore : 0,
    rebuilt: indexedBefore - have,
  };
}
