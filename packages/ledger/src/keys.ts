import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { OpdbusError } from '@opdbus/core';
import { NoteSigner } from './note.js';

function keyError(message: string, file: string, cause?: unknown): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_LEDGER_KEY', message, {
    data: { file },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Refuse a secret key file that others can read or write. */
async function checkSecretMode(file: string): Promise<void> {
  const info = await stat(file);
  if ((info.mode & 0o077) !== 0) {
    throw keyError(
      `The key file ${file} has mode ${(info.mode & 0o777).toString(8)}; it must be readable by its owner only. Run \`chmod 600 ${file}\`.`,
      file,
    );
  }
}

/**
 * Write a new secret file exactly once, even with concurrent creators: written and fsync'd under
 * a temporary name, then hard-linked into place (which fails if another process won the race).
 * Returns false when the file already existed.
 */
export async function createSecretFile(file: string, data: string | Uint8Array): Promise<boolean> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const dir = await open(dirname(file), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return true;
}

/** Read a secret file, refusing one whose mode lets others read it. */
export async function readSecretFile(file: string): Promise<Buffer> {
  await checkSecretMode(file);
  return readFile(file);
}

/**
 * The log's signing key from `file` (a signed-note private key, mode 0600), created with a new
 * random Ed25519 key named `name` on first use. An existing key keeps its own name.
 */
export async function loadOrCreateSigner(
  file: string,
  name: string,
): Promise<{ signer: NoteSigner; created: boolean }> {
  let text: string;
  try {
    text = (await readSecretFile(file)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof OpdbusError) throw err;
      throw keyError(`Cannot read the ledger key ${file}: ${(err as Error).message}.`, file, err);
    }
    const signer = NoteSigner.generate(name);
    if (await createSecretFile(file, `${signer.toString()}\n`)) return { signer, created: true };
    text = (await readSecretFile(file)).toString('utf8');
  }
  try {
    return { signer: NoteSigner.parse(text), created: false };
  } catch (err) {
    throw keyError(
      `The ledger key ${file} is not a signed-note Ed25519 private key: ${(err as Error).message}`,
      file,
      err,
    );
  }
}
