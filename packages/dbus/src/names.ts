/**
 * Escape a string into one D-Bus object path element the way sd-bus does
 * (`sd_bus_path_encode`): letters and digits stay, every other byte becomes `_XX` (hex), and
 * the empty string becomes `_`. systemd names its unit objects so:
 * `dbus.service` → `dbus_2eservice`.
 */
export function escapePathElement(text: string): string {
  if (text === '') return '_';
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9]/.test(c) ? c : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of {@link escapePathElement}. */
export function unescapePathElement(element: string): string {
  if (element === '_') return '';
  const bytes: number[] = [];
  for (let i = 0; i < element.length; i++) {
    const c = element[i]!;
    if (c === '_' && /^[0-9a-fA-F]{2}$/.test(element.slice(i + 1, i + 3))) {
      bytes.push(parseInt(element.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Whether `path` is a valid D-Bus object path. */
export function isObjectPath(path: string): boolean {
  return /^\/$|^(\/[A-Za-z0-9_]+)+$/.test(path);
}
