import { tmpdir } from 'node:os';
import { isAbsolute, join, normalize } from 'node:path';
import { OpdbusError } from '@opdbus/core';

/** Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL). */
export const maxSocketPath = 107;

/**
 * The directory of sandbox resource `id`: `<baseDir or tmpdir>/<id>`. Throws
 * `OPDBUS_ERR_SANDBOX_INVALID_OPTION` when the base is relative or so long that the sockets
 * inside would not fit a unix socket address.
 */
export function sandboxDir(id: string, baseDir?: string): string {
  const base = normalize(baseDir ?? tmpdir());
  if (!isAbsolute(base)) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_INVALID_OPTION',
      `The sandbox base directory must be absolute, not "${base}".`,
      { data: { baseDir: base } },
    );
  }
  const dir = join(base, id);
  // The longest socket inside is ovs-vswitchd.<pid>.ctl (pid up to 7 digits): 29 bytes plus the slash.
  if (Buffer.byteLength(dir) + 30 > maxSocketPath) {
    throw new OpdbusError(
      'OPDBUS_ERR_SANDBOX_INVALID_OPTION',
      `The sandbox directory ${dir} is too long for unix socket paths (${maxSocketPath} bytes); pass a shorter \`baseDir\` or set TMPDIR=/tmp.`,
      { data: { dir } },
    );
  }
  return dir;
}
