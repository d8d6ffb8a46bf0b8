import { HASH_SIZE, leafHash } from './hash.js';

/**
 * The record framing of the ledger file. Every record is
 *
 *   magic "OL" (2) | type (1) | flags (1) | payload length u32 LE (4) | seq u64 LE (8) |
 *   checksum (32) | payload
 *
 * The checksum is SHA-256(0x00 ‖ payload): for an entry it is exactly its RFC 9162 leaf hash, so
 * verifying the framing and recomputing the tree need one hash per entry. `seq` is the entry's
 * index (entry records) or the tree size a checkpoint record signs.
 */
export const FRAME_HEADER = 48;
/** Largest payload accepted (16 MiB). */
export const MAX_PAYLOAD = 16 * 1024 * 1024;

/** Record types. */
export const FrameType = { entry: 1, checkpoint: 2 } as const;
/** A record type. */
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

const MAGIC0 = 0x4f; // 'O'
const MAGIC1 = 0x4c; // 'L'

/** Write a frame header into `buf` at `at` (the payload must follow it). */
export function writeHeader(
  buf: Buffer,
  at: number,
  type: FrameTypeValue,
  length: number,
  seq: number,
  digest: Uint8Array,
): void {
  buf[at] = MAGIC0;
  buf[at + 1] = MAGIC1;
  buf[at + 2] = type;
  buf[at + 3] = 0;
  buf.writeUInt32LE(length, at + 4);
  buf.writeUInt32LE(seq % 2 ** 32, at + 8);
  buf.writeUInt32LE(Math.floor(seq / 2 ** 32), at + 12);
  buf.set(digest, at + 16);
}

/** A whole frame for a payload. */
export function encodeFrame(type: FrameTypeValue, seq: number, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  writeHeader(buf, 0, type, payload.length, seq, leafHash(payload));
  buf.set(payload, FRAME_HEADER);
  return buf;
}

/** A parsed frame header. */
export interface FrameHeader {
  type: number;
  length: number;
  seq: number;
}

/**
 * Parse the header at `at`: `undefined` when fewer than a header's bytes remain, `null` when the
 * bytes are not a plausible header (bad magic, type, flags or length).
 */
export function readHeader(buf: Buffer, at: number): FrameHeader | null | undefined {
  if (at + FRAME_HEADER > buf.length) return undefined;
  if (buf[at] !== MAGIC0 || buf[at + 1] !== MAGIC1 || buf[at + 3] !== 0) return null;
  const type = buf[at + 2]!;
  if (type !== FrameType.entry && type !== FrameType.checkpoint) return null;
  const length = buf.readUInt32LE(at + 4);
  if (length > MAX_PAYLOAD) return null;
  const seq = buf.readUInt32LE(at + 8) + buf.readUInt32LE(at + 12) * 2 ** 32;
  return { type, length, seq };
}

/** The checksum stored in the frame at `at`. */
export function storedDigest(buf: Buffer, at: number): Buffer {
  return buf.subarray(at + 16, at + 16 + HASH_SIZE);
}

/** Whether a complete frame at `at` has a checksum that matches its payload. */
export function frameVerifies(buf: Buffer, at: number): boolean {
  const header = readHeader(buf, at);
  if (header === null || header === undefined) return false;
  const end = at + FRAME_HEADER + header.length;
  if (end > buf.length) return false;
  return leafHash(buf.subarray(at + FRAME_HEADER, end)).equals(storedDigest(buf, at));
}

/**
 * After a bad record at `from`, look for any later complete record that verifies. A torn tail
 * (a crash mid-write) has none; data after a damaged record means the damage is not a torn tail.
 */
export function findValidFrameAfter(buf: Buffer, from: number): number | undefined {
  for (let at = buf.indexOf(MAGIC0, from + 1); at >= 0; at = buf.indexOf(MAGIC0, at + 1)) {
    if (buf[at + 1] === MAGIC1 && frameVerifies(buf, at)) return at;
  }
  return undefined;
}
