import { lstat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { OpdbusError } from './errors.js';
import { writeFileAtomic } from './journal.js';
import { quoteInput } from './limits.js';

/**
 * Check a path op-dbus is asked to write a file to (an export, generated code): refused when it
 * holds a NUL byte, is a symbolic link (never followed: a link planted where an export goes must
 * not redirect it), or exists as anything but a regular file (a device, a FIFO, a directory).
 * Returns the absolute path. Throws `OPDBUS_ERR_PATH_UNSAFE`.
 */
export async function checkOutputPath(path: string): Promise<string> {
  const refuse = (why: string): OpdbusError =>
    new OpdbusError('OPDBUS_ERR_PATH_UNSAFE', `Will not write to ${quoteInput(path)}: ${why}.`, {
      data: { file: path.slice(0, 4096) },
    });
  if (path.includes('\0')) throw refuse('a path cannot contain a NUL byte');
  if (path === '' || basename(path) === '' || basename(path) === '.' || basename(path) === '..')
    throw refuse('it does not end in a file name');
  const absolute = resolve(path);
  try {
    const stat = await lstat(absolute);
    if (stat.isSymbolicLink())
      throw refuse('it is a symbolic link (op-dbus does not write through links; name the file itself)');
    if (!stat.isFile()) throw refuse('it exists and is not a regular file');
  } catch (err) {
    if (err instanceof OpdbusError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return absolute;
}

/**
 * Write an output file the operator (or an API caller) named, safely: {@link checkOutputPath},
 * then a new temporary file beside it (O_EXCL, mode `mode`, default 0600) renamed over it, so a
 * reader never sees half a file and a link planted at the temporary name is never followed.
 * Returns the absolute path written.
 */
export async function writeOutputFile(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
): Promise<string> {
  const absolute = await checkOutputPath(path);
  try {
    await writeFileAtomic(absolute, data, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new OpdbusError(
      'OPDBUS_ERR_OUTPUT_WRITE',
      `Cannot write ${quoteInput(absolute)} (${code}); check that ${dirname(absolute)} exists and is writable.`,
      { data: { file: absolute, errno: code }, cause: err },
    );
  }
  return absolute;
}
