/**
 * WireGuard keys: Curve25519 key pairs (32 bytes each), written in base64 as `wg` writes them.
 * Generated and derived with node:crypto's X25519, never by a `wg` process.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { OpdbusError } from '@opdbus/core';

/** Length of every WireGuard key (private, public, preshared). */
export const KEY_LENGTH = 32;

// PKCS#8 and SPKI DER prefixes of an X25519 key (RFC 8410): the raw key follows.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_LENGTH = 44;

const base64Key = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/;

/** Whether `text` is a key in WireGuard's base64 form (44 characters, 32 bytes). */
export function isBase64Key(text: string): boolean {
  return base64Key.test(text);
}

/** A base64 key as bytes; throws `OPDBUS_ERR_WIREGUARD_INVALID` when it is not one. */
export function decodeKey(text: string, what = 'key'): Buffer {
  if (!isBase64Key(text)) {
    throw new OpdbusError(
      'OPDBUS_ERR_WIREGUARD_INVALID',
      `The ${what} "${text.length > 60 ? `${text.slice(0, 60)}…` : text}" is not a WireGuard key: 44 characters of base64 (32 bytes), as \`wg pubkey\` prints.`,
      { data: { what } },
    );
  }
  return Buffer.from(text, 'base64');
}

/** Bytes as a base64 key. */
export function encodeKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/** A key in the base64url alphabet without padding (43 characters), for resource names and file names. */
export function keyId(publicKey: string): string {
  return publicKey.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/** The reverse of {@link keyId}. */
export function keyFromId(id: string): string {
  return `${id.replace(/-/g, '+').replace(/_/g, '/')}=`;
}

/** Clamp a Curve25519 scalar the way `wg genkey` does (RFC 7748 §5). */
export function clampPrivateKey(key: Buffer): Buffer {
  const out = Buffer.from(key);
  out[0]! &= 248;
  out[31] = (out[31]! & 127) | 64;
  return out;
}

/** A new random private key (clamped), as `wg genkey`. */
export function generatePrivateKey(): Buffer {
  return clampPrivateKey(randomBytes(KEY_LENGTH));
}

/** A new random preshared key, as `wg genpsk`. */
export function generatePresharedKey(): Buffer {
  return randomBytes(KEY_LENGTH);
}

/** The public key of a private key, as `wg pubkey`. */
export function publicKeyOf(privateKey: Uint8Array): Buffer {
  if (privateKey.length !== KEY_LENGTH) {
    throw new OpdbusError(
      'OPDBUS_ERR_WIREGUARD_INVALID',
      `A WireGuard private key has ${KEY_LENGTH} bytes, this one ${privateKey.length}.`,
    );
  }
  const der = Buffer.concat([PKCS8_X25519, privateKey]);
  const spki = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({
    format: 'der',
    type: 'spki',
  });
  return Buffer.from(spki.subarray(SPKI_X25519_LENGTH - KEY_LENGTH));
}

/** Whether all 32 bytes are zero (WireGuard's "no key"). */
export function isZeroKey(key: Uint8Array): boolean {
  for (const b of key) if (b !== 0) return false;
  return true;
}
