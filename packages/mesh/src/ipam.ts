/** Stable address allocation from a mesh's pool. */
import { OpdbusError } from '@opdbus/core';
import { formatIp, networkBytes, parseCidr, parseIp } from '@opdbus/netlink';

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBigInt(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** The canonical text of an address. */
export function canonicalAddress(text: string): string {
  const ip = parseIp(text);
  return formatIp(ip.bytes, 0, ip.bytes.length);
}

/**
 * The lowest address of `pool` that is neither `taken` nor `retired`; a retired address (one a
 * removed node had) is given out again only when nothing else is left, oldest first. IPv4 pools
 * skip the network and broadcast addresses. Throws `OPDBUS_ERR_MESH_POOL` when the pool is full.
 */
export function allocateAddress(
  pool: string,
  taken: Iterable<string>,
  retired: readonly string[] = [],
): string {
  const c = parseCidr(pool);
  const length = c.bytes.length;
  const bits = BigInt(length * 8 - c.prefixLength);
  const base = toBigInt(networkBytes(c.bytes, c.prefixLength));
  const size = 1n << bits;
  const used = new Set([...taken].map(canonicalAddress));
  const old = new Set(retired.map(canonicalAddress));
  const first = c.family === 4 ? 1n : 1n;
  const last = c.family === 4 ? size - 2n : size - 1n;
  // Linear scan from the bottom: meshes are small; a /16 with thousands of nodes still scans fast.
  const limit = last < 1_000_000n ? last : 1_000_000n;
  for (let i = first; i <= limit; i++) {
    const address = formatIp(fromBigInt(base + i, length), 0, length);
    if (!used.has(address) && !old.has(address)) return address;
  }
  for (const address of retired.map(canonicalAddress)) if (!used.has(address)) return address;
  throw new OpdbusError(
    'OPDBUS_ERR_MESH_POOL',
    `The mesh pool ${pool} has no free address left (${used.size} in use); remove nodes that are gone or use a larger pool.`,
    { data: { pool } },
  );
}
