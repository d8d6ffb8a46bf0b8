/**
 * sysctl key handling, as procps' sysctl(8) does it.
 *
 * A key is printed with dots (`net.ipv4.ip_forward`). A path component that itself contains a
 * dot (the VLAN interface `eth0.100`) is printed with a slash in its place
 * (`net.ipv4.conf.eth0/100.forwarding`). Input may use either form: if its first separator is a
 * slash, every slash and dot is swapped (sysctl's `slashdot`).
 */

/** Swap `old` and `next` separators unless the first separator is already `next` (sysctl's slashdot). */
function slashdot(key: string, old: '/' | '.', next: '/' | '.'): string {
  const first = /[/.]/.exec(key);
  if (first === null || first[0] === next) return key;
  let out = '';
  for (const ch of key) out += ch === old ? next : ch === next ? old : ch;
  return out;
}

/** The canonical (printed) form of a key given with dots or slashes. */
export function canonicalKey(key: string): string {
  let k = key.trim();
  while (k.startsWith('/') || k.startsWith('.')) k = k.slice(1);
  if (k.startsWith('proc/sys/')) k = k.slice('proc/sys/'.length);
  return slashdot(k, '/', '.');
}

/** The /proc/sys path of a canonical key. */
export function keyPath(key: string, root = '/proc/sys'): string {
  return `${root}/${slashdot(key, '.', '/')}`;
}

/** The canonical key of a path relative to /proc/sys (`net/ipv4/conf/eth0.100/forwarding`). */
export function pathKey(relative: string): string {
  return slashdot(relative, '/', '.');
}

/** Whether a key lives in a network namespace (only `net.*` keys do). */
export function isNamespacedKey(key: string): boolean {
  return key === 'net' || key.startsWith('net.');
}

/**
 * The value as sysctl(8) prints it: the file's content without its final newline. Multi-field
 * values keep the kernel's tabs.
 */
export function printedValue(raw: string): string {
  return raw.endsWith('\n') ? raw.slice(0, -1) : raw;
}

/**
 * The form values are compared in: whitespace-separated fields joined by one tab (the kernel
 * prints vectors with tabs and accepts any whitespace), so `4096 131072 6291456` equals the
 * kernel's `4096\t131072\t6291456`.
 */
export function comparableValue(value: string | number): string {
  return String(value).trim().split(/\s+/).join('\t');
}
