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
  return `${root}/${keyRelativePath(key)}`;
}

/** The path of a canonical key relative to /proc/sys (`net/ipv4/conf/eth0.100/forwarding`). */
export function keyRelativePath(key: string): string {
  return slashdot(key, '.', '/');
}

/** The longest key accepted, in bytes (the longest real key is about 60). */
export const MAX_KEY_BYTES = 255;

/**
 * The longest value accepted, in bytes: a sysctl value is written in one write(2) that the kernel
 * reads into one page (PAGE_SIZE 4096, with its terminating NUL).
 */
export const MAX_VALUE_BYTES = 4095;

const keyCharacters = /^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]*$/;

/**
 * Why `key` is not a sysctl key a document may name, or undefined. A key names a file below
 * /proc/sys and nothing else: it is relative (no leading "/" or "."), has no empty component and
 * no "." or ".." component in either spelling (`net/../x` or `net.//.x`), and uses the characters
 * of sysctl names and interface names.
 */
export function sysctlKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'the key is empty';
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) return `the key has ${bytes} bytes; sysctl keys have at most ${MAX_KEY_BYTES}`;
  if (key.startsWith('/') || key.startsWith('.'))
    return 'the key starts with "/" or "."; name it relative to /proc/sys, e.g. net.ipv4.ip_forward';
  if (!keyCharacters.test(key)) return 'letters, digits, "_", "-", ":", "@", "+", dots or slashes only';
  for (const component of keyRelativePath(canonicalKey(key)).split('/')) {
    if (component === '')
      return 'the key has an empty component (two separators in a row, or one at the end)';
    if (component === '.' || component === '..')
      return `the key has a "${component}" component, which would walk out of /proc/sys`;
  }
  return undefined;
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

/**
 * The keys the kernel rewrites when `trigger` is written, as a test on a key, or undefined when a
 * write of `trigger` changes nothing else. A write of net.ipv4.ip_forward (or conf.all.forwarding)
 * sets conf.all.accept_redirects to its opposite and every conf.*.forwarding to its value; a write
 * of net.ipv4.conf.default.X copies X to every interface that has not set X itself; a write of
 * net.ipv6.conf.all.forwarding or .disable_ipv6 sets it on default and every interface
 * (net/ipv4/devinet.c inet_forward_change and devinet_copy_dflt_conf, net/ipv6/addrconf.c
 * addrconf_fixup_forwarding and addrconf_disable_ipv6).
 */
export function keysResetBy(trigger: string): ((key: string) => boolean) | undefined {
  if (trigger === 'net.ipv4.ip_forward' || trigger === 'net.ipv4.conf.all.forwarding') {
    return (key) =>
      key === 'net.ipv4.conf.all.accept_redirects' ||
      key === 'net.ipv4.ip_forward' ||
      /^net\.ipv4\.conf\.[^.]+\.forwarding$/.test(key);
  }
  const dflt = /^net\.ipv4\.conf\.default\.([^.]+)$/.exec(trigger);
  if (dflt !== null) {
    const name = dflt[1]!;
    return (key) => {
      const m = /^net\.ipv4\.conf\.([^.]+)\.([^.]+)$/.exec(key);
      return m !== null && m[2] === name && m[1] !== 'all' && m[1] !== 'default';
    };
  }
  const v6 = /^net\.ipv6\.conf\.all\.(forwarding|disable_ipv6)$/.exec(trigger);
  if (v6 !== null) {
    const name = v6[1]!;
    return (key) => {
      const m = /^net\.ipv6\.conf\.([^.]+)\.([^.]+)$/.exec(key);
      return m !== null && m[2] === name && m[1] !== 'all';
    };
  }
  return undefined;
}

/**
 * The interface a per-interface key belongs to (`net.ipv4.conf.IF.*`, `net.ipv6.conf.IF.*`,
 * `net.ipv4.neigh.IF.*`, `net.ipv6.neigh.IF.*`), or undefined (also for `all` and `default`).
 * These keys exist only while the interface does.
 */
export function interfaceOfKey(key: string): { name: string; directory: string } | undefined {
  const parts = keyRelativePath(key).split('/');
  if (parts.length !== 5 || parts[0] !== 'net') return undefined;
  const [, family, kind, name] = parts as [string, string, string, string, string];
  if ((family !== 'ipv4' && family !== 'ipv6') || (kind !== 'conf' && kind !== 'neigh')) return undefined;
  if (name === 'all' || name === 'default') return undefined;
  return { name, directory: `net.${family}.${kind}` };
}
