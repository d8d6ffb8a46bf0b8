import { describe, expect, it } from 'vitest';
import {
  clampPrivateKey,
  decodeKey,
  encodeKey,
  generatePrivateKey,
  isBase64Key,
  keyFromId,
  keyId,
  publicKeyOf,
} from './keys.js';

describe('keys', () => {
  it('derives the X25519 public key of RFC 7748 §6.1', () => {
    const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
    expect(publicKeyOf(alice).toString('hex')).toBe(
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    );
  });

  it('derives what `wg pubkey` prints for a `wg genkey` key', () => {
    // Generated with wireguard-tools: `wg genkey | tee k | wg pubkey`.
    const priv = decodeKey('AEMWQQHUXBtHOz9tJoMJmd0YV9vQrwsUEnxmP74ToG0=');
    expect(encodeKey(publicKeyOf(priv))).toBe('kwy8hNapXX2YY1kkuW5WFFpPLNfC7aRpq33IoRsQiDQ=');
  });

  it('generates clamped keys, as wg genkey', () => {
    const k = generatePrivateKey();
    expect(k[0]! & 7).toBe(0);
    expect(k[31]! & 0xc0).toBe(0x40);
    expect(clampPrivateKey(k).equals(k)).toBe(true);
  });

  it('accepts base64 keys only, and names the problem', () => {
    expect(isBase64Key('kwy8hNapXX2YY1kkuW5WFFpPLNfC7aRpq33IoRsQiDQ=')).toBe(true);
    expect(isBase64Key('kwy8hNapXX2YY1kkuW5WFFpPLNfC7aRpq33IoRsQiDR=')).toBe(false);
    expect(() => decodeKey('not-a-key', 'peer key')).toThrow(/peer key "not-a-key" is not a WireGuard key/);
  });

  it('maps keys to ids without "/" and back', () => {
    const key = 'a+b/cdefghijklmnopqrstuvwxyz0123456789ABCDE=';
    expect(keyId(key)).toBe('a-b_cdefghijklmnopqrstuvwxyz0123456789ABCDE');
    expect(keyFromId(keyId(key))).toBe(key);
  });
});
