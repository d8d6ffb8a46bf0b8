import { constants } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { OpdbusError, isAlive, selfIdentity, type ProcessIdentity } from '@opdbus/core';
import { setTimeout as delay } from 'node:timers/promises';
import { unlink } from 'node:fs/promises';
import { FRAME_HEADER, findValidFrameAfter, readHeader } from './frame.js';

/** The frames of one chunk found by {@link scanFrames}, as parallel arrays (no object per frame). */
export interface FrameBatch {
  count: number;
  /** Offset of each frame in the file. */
  offset: Float64Array;
  /** Offset of each frame in the chunk buffer. */
  at: Uint32Array;
  type: Uint8Array;
  length: Uint32Array;
  seq: Float64Array;
}

function newBatch(capacity: number): FrameBatch {
  return {
    count: 0,
    offset: new Float64Array(capacity),
    at: new Uint32Array(capacity),
    type: new Uint8Array(capacity),
    length: new Uint32Array(capacity),
    seq: new Float64Array(capacity),
  };
}

/** Where and why a scan stopped before the end of the file. */
export interface ScanStop {
  offset: number;
  reason: string;
}

/**
 * Read frames from `start` to `end` in large chunks, calling `onChunk` with each chunk and the
 * whole frames in it (headers checked for plausibility, checksums not: the caller batches them).
 * `onChunk` may return where to stop. Returns where the scan stopped, if it did not reach `end`
 * cleanly (an implausible header or a frame running past `end`).
 */
export async function scanFrames(
  handle: FileHandle,
  start: number,
  end: number,
  onChunk: (buf: Buffer, frames: FrameBatch) => ScanStop | undefined,
  chunkSize = 16 * 1024 * 1024,
): Promise<ScanStop | undefined> {
  let base = start;
  const span = Math.min(chunkSize, Math.max(0, end - start));
  let batch = newBatch(Math.ceil(span / FRAME_HEADER) + 1);
  // One read buffer for every chunk: the callback consumes a chunk before the next read.
  const reusable = Buffer.allocUnsafe(span);
  while (base < end) {
    const want = Math.min(chunkSize, end - base);
    let buf = await readInto(handle, reusable, base, want);
    batch.count = 0;
    let at = 0;
    let stop: ScanStop | undefined;
    for (;;) {
      const header = readHeader(buf, at);
      if (header === null) {
        stop = { offset: base + at, reason: 'not a record header' };
        break;
      }
      const needed = header === undefined ? FRAME_HEADER : FRAME_HEADER + header.length;
      if (at + needed > buf.length) {
        if (base + at + needed > end) {
          if (base + at < end)
            stop = { offset: base + at, reason: 'incomplete record at the end of the file' };
          break;
        }
        if (at === 0) {
          // A frame larger than the chunk: read it whole.
          buf = await readAt(handle, base, needed);
          continue;
        }
        break;
      }
      if (batch.count === batch.at.length) {
        const bigger = newBatch(batch.at.length * 2);
        bigger.offset.set(batch.offset);
        bigger.at.set(batch.at);
        bigger.type.set(batch.type);
        bigger.length.set(batch.length);
        bigger.seq.set(batch.seq);
        bigger.count = batch.count;
        batch = bigger;
      }
      const i = batch.count++;
      batch.offset[i] = base + at;
      batch.at[i] = at;
      batch.type[i] = header!.type;
      batch.length[i] = header!.length;
      batch.seq[i] = header!.seq;
      at += needed;
    }
    const visitorStop = batch.count > 0 ? onChunk(buf, batch) : undefined;
    if (visitorStop !== undefined) return visitorStop;
    if (stop !== undefined) return stop;
    if (at === 0) break;
    base += at;
  }
  return undefined;
}

/** Read exactly `length` bytes at `position` (fewer only at the end of the file). */
export async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** Read up to `length` bytes at `position` into the start of `buf`; returns the part filled. */
async function readInto(handle: FileHandle, buf: Buffer, position: number, length: number): Promise<Buffer> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Write all of `buf` at `position`. */
export async function writeAt(handle: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Decide what a bad record at `offset` is: a torn tail (nothing valid follows it: a crash
 * mid-write) or damage (a valid record follows it). Returns the offset of the next valid record
 * when there is one.
 */
export async function classifyDamage(
  handle: FileHandle,
  offset: number,
  end: number,
): Promise<number | undefined> {
  const rest = await readAt(handle, offset, end - offset);
  const next = findValidFrameAfter(rest, 0);
  return next === undefined ? undefined : offset + next;
}

/** fsync a directory (after creating or renaming files in it). */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** An exclusive lock file naming its owner (pid + start time); a lock whose owner is gone is taken over. */
export class FileLock {
  #released = false;
  private constructor(
    readonly path: string,
    readonly owner: ProcessIdentity,
  ) {}

  /** Take the lock, waiting up to `waitMs` for a live owner. Throws `OPDBUS_ERR_LEDGER_LOCKED`. */
  static async acquire(path: string, waitMs: number): Promise<FileLock> {
    const me = selfIdentity();
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        try {
          await handle.writeFile(JSON.stringify(me));
        } finally {
          await handle.close();
        }
        return new FileLock(path, me);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let holder: ProcessIdentity | undefined;
      try {
        const parsed = JSON.parse(await readFile(path, 'utf8')) as ProcessIdentity;
        holder = typeof parsed.pid === 'number' ? parsed : undefined;
      } catch {
        holder = undefined;
      }
      if (holder !== undefined && holder.pid === me.pid && holder.startTime === me.startTime) {
        throw new OpdbusError(
          'OPDBUS_ERR_LEDGER_LOCKED',
          `This process already has the ledger ${path} open for writing; share that Ledger instance.`,
          {
            data: { lock: path, pid: me.pid },
          },
        );
      }
      if (holder === undefined || !isAlive(holder)) {
        // Stale (owner gone) or a half-written lock from a crash: take it over.
        await unlink(path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
        continue;
      }
      if (Date.now() >= deadline) {
        throw new OpdbusError(
          'OPDBUS_ERR_LEDGER_LOCKED',
          `The ledger ${path} is held by process ${holder.pid}; wait for it to finish.`,
          {
            data: { lock: path, pid: holder.pid },
          },
        );
      }
      await delay(20);
    }
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await unlink(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}
