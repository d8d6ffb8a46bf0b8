import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { OpdbusError } from '@opdbus/core';
import { createSecretFile, readSecretFile } from '../keys.js';

const MAGIC = Buffer.from('OPSN1');
const IV = 12;
const TAG = 16;

/** The snapshot encryption key (32 random bytes) from `file`, created with mode 0600 on first use. */
export async function loadOrCreateSnapshotKey(file: string): Promise<Buffer> {
  try {
    return checkKey(await readSecretFile(file), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof OpdbusError) throw err;
      throw new OpdbusError(
        'OPDBUS_ERR_LEDGER_KEY',
        `Cannot read the snapshot key ${file}: ${(err as Error).message}.`,
        {
          data: { file },
          cause: err,
        },
      );
    }
  }
  await createSecretFile(file, randomBytes(32));
  return checkKey(await readSecretFile(file), file);
}

function checkKey(key: Buffer, file: string): Buffer {
  if (key.length !== 32) {
    throw new OpdbusError(
      'OPDBUS_ERR_LEDGER_KEY',
      `The snapshot key ${file} must hold 32 bytes, it has ${key.length}.`,
      { data: { file } },
    );
  }
  return key;
}

/** Encrypt with AES-256-GCM: `OPSN1 ‖ iv(12) ‖ ciphertext ‖ tag(16)`, authenticating `aad` too. */
export function seal(key: Buffer, plaintext: Uint8Array, aad: string): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([MAGIC, iv, body, cipher.getAuthTag()]);
}

/** Decrypt what {@link seal} produced; throws `OPDBUS_ERR_SNAPSHOT_INVALID` when it does not authenticate. */
export function unseal(key: Buffer, blob: Buffer, aad: string, what: string): Buffer {
  if (blob.length < MAGIC.length + IV + TAG || !blob.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new OpdbusError('OPDBUS_ERR_SNAPSHOT_INVALID', `${what} is not an encrypted op-dbus snapshot.`, {
      data: { what },
    });
  }
  const iv = blob.subarray(MAGIC.length, MAGIC.length + IV);
  const tag = blob.subarray(blob.length - TAG);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([
      decipher.update(blob.subarray(MAGIC.length + IV, blob.length - TAG)),
      decipher.final(),
    ]);
  } catch (err) {
    throw new OpdbusError(
      'OPDBUS_ERR_SNAPSHOT_INVALID',
      `${what} does not decrypt with this host's snapshot key: it was altered, moved under another id, or encrypted with another key.`,
      { data: { what }, cause: err },
    );
  }
}
