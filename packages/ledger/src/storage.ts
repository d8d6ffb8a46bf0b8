import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { FRAME_HEADER, findValidFrameAfter, readHeader, storedDigest } from './frame.js';
import { leafHash } from './hash.js';

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
  /** The record there runs past the end of the file (too short for its header or its payload). */
  incomplete?: boolean;
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
            stop = {
              offset: base + at,
              reason: 'incomplete record at the end of the file',
              incomplete: true,
            };
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
 * Decide whether the bytes from a scan's stop to `end` are a torn tail: what a crash in the middle
 * of an append leaves, and the only damage that may be cut back. That is
 * - an incomplete record (the file ends inside its header or its payload) whose bytes could be the
 *   start of a real one: not a complete record with a changed length field (its checksum matches
 *   the bytes up to the end of the file), with no complete valid record inside it; or
 * - zeros up to the end of the file (a file extended by a crash before its data reached the disk).
 * A complete record that does not verify (checksum, type, order) is never a torn tail: that is
 * tampering, wherever it is, the last record included.
 */
export async function isTornTail(handle: FileHandle, stop: ScanStop, end: number): Promise<boolean> {
  if (await zerosTo(handle, stop.offset, end)) return true;
  if (stop.incomplete !== true) return false;
  // An incomplete record is shorter than header + MAX_PAYLOAD: read it whole.
  const rest = await readAt(handle, stop.offset, end - stop.offset);
  if (rest[0] !== 0x4f || (rest.length > 1 && rest[1] !== 0x4c)) return false;
  if (findValidFrameAfter(rest, 0) !== undefined) return false;
  if (rest.length >= FRAME_HEADER && leafHash(rest.subarray(FRAME_HEADER)).equals(storedDigest(rest, 0)))
    return false;
  return true;
}

/** Whether every byte from `from` to `end` is zero (read in 1 MiB pieces, stopping early). */
async function zerosTo(handle: FileHandle, from: number, end: number): Promise<boolean> {
  for (let at = from; at < end;) {
    const piece = await readAt(handle, at, Math.min(1024 * 1024, end - at));
    if (piece.length === 0) break;
    for (let i = 0; i < piece.length; i++) if (piece[i] !== 0) return false;
    at += piece.length;
  }
  return true;
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
