/** IFNAMSIZ: a Linux interface name fits 16 bytes with its terminating NUL. */
export const IFNAMSIZ = 16;

/**
 * Why the kernel would refuse `name` as a network interface name (its `dev_valid_name`), or
 * undefined when it is valid: 1 to 15 bytes of UTF-8 (bytes, not characters), not `.` or `..`,
 * no `/`, `:`, NUL or whitespace as the kernel's isspace() sees it (which includes the byte 0xA0,
 * so some accented letters are refused inside their UTF-8 encoding).
 */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'an interface name cannot be empty';
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length >= IFNAMSIZ)
    return `an interface name has at most ${IFNAMSIZ - 1} bytes; this one has ${bytes.length}${bytes.length !== name.length ? ` (${name.length} characters in UTF-8)` : ''}`;
  if (name === '.' || name === '..') return `"${name}" is not an interface name (it names a directory)`;
  for (const byte of bytes) {
    if (byte === 0x2f) return 'an interface name cannot contain "/"';
    if (byte === 0x3a) return 'an interface name cannot contain ":" (the old alias syntax)';
    if (byte === 0) return 'an interface name cannot contain NUL';
    if (byte === 0x20 || (byte >= 0x09 && byte <= 0x0d) || byte === 0xa0)
      return 'an interface name cannot contain whitespace (the kernel also counts the byte 0xA0 of some UTF-8 letters as whitespace)';
  }
  return undefined;
}

/** Whether the kernel accepts `name` as an interface name (see {@link interfaceNameProblem}). */
export function isValidInterfaceName(name: string): boolean {
  return interfaceNameProblem(name) === undefined;
}
