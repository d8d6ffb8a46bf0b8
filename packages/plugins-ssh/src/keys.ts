/**
 * authorized_keys lines as sshd(8) reads them (AUTHORIZED_KEYS FILE FORMAT): optional options,
 * the key type, the base64 key blob, an optional comment.
 */
import { createHash } from 'node:crypto';

/** Public key types sshd accepts in authorized_keys (plain and certificate authorities). */
export const keyTypes: readonly string[] = [
  'ssh-ed25519',
  'ssh-rsa',
  'ssh-dss',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
];

/** The key options of sshd(8), with whether each takes a quoted value. */
export const keyOptions: ReadonlyMap<string, boolean> = new Map([
  ['agent-forwarding', false],
  ['cert-authority', false],
  ['command', true],
  ['environment', true],
  ['expiry-time', true],
  ['from', true],
  ['no-agent-forwarding', false],
  ['no-port-forwarding', false],
  ['no-pty', false],
  ['no-user-rc', false],
  ['no-x11-forwarding', false],
  ['permitlisten', true],
  ['permitopen', true],
  ['port-forwarding', false],
  ['principals', true],
  ['pty', false],
  ['no-touch-required', false],
  ['verify-required', false],
  ['restrict', false],
  ['tunnel', true],
  ['user-rc', false],
  ['x11-forwarding', false],
]);

/** One parsed key line. */
export interface KeyLine {
  options: string[];
  type: string;
  blob: string;
  comment: string;
  /** `SHA256:…`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** The SHA256 fingerprint of a base64 key blob, as ssh-keygen prints it. */
export function fingerprint(blob: string): string {
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/** Why `blob` is not a well-formed key of `type`, or undefined. */
export function blobProblem(type: string, blob: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return 'the key is not base64';
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.length < 4) return 'the key is too short';
  const len = bytes.readUInt32BE(0);
  if (len + 4 > bytes.length || bytes.subarray(4, 4 + len).toString('latin1') !== type)
    return `the key data is not a ${type} key (its encoded type differs or it is truncated)`;
  return undefined;
}

/** Split an options string at commas outside double quotes. Undefined when a quote is unbalanced. */
export function splitOptions(text: string): string[] | undefined {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && quoted && text[i + 1] === '"') {
      current += '\\"';
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
      current += ch;
    } else if (ch === ',' && !quoted) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  if (quoted) return undefined;
  out.push(current);
  return out;
}

/** Why `option` is not a key option sshd accepts, or undefined. */
export function optionProblem(option: string): string | undefined {
  const m = /^([A-Za-z0-9-]+)(?:="((?:[^"\\\n\r]|\\")*)")?$/.exec(option);
  if (m === null)
    return `"${option}" is not NAME or NAME="VALUE" (a value in double quotes, inner quotes as \\")`;
  const takesValue = keyOptions.get(m[1]!.toLowerCase());
  if (takesValue === undefined)
    return `unknown key option "${m[1]}" (see sshd(8), AUTHORIZED_KEYS FILE FORMAT)`;
  if (takesValue !== (m[2] !== undefined))
    return takesValue ? `option ${m[1]} needs a value: ${m[1]}="…"` : `option ${m[1]} takes no value`;
  return undefined;
}

/** Parse one line; undefined for comments, blank lines and lines sshd would not use. */
export function parseKeyLine(line: string): KeyLine | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  let options: string[] = [];
  let rest = text;
  const first = /^\S+/.exec(text)![0];
  if (!keyTypes.includes(first) && !first.endsWith('-cert-v01@openssh.com')) {
    // Options end at the first whitespace outside quotes.
    let quoted = false;
    let end = 0;
    for (; end < text.length; end++) {
      const ch = text[end]!;
      if (ch === '\\' && quoted) end++;
      else if (ch === '"') quoted = !quoted;
      else if (!quoted && (ch === ' ' || ch === '\t')) break;
    }
    const split = splitOptions(text.slice(0, end));
    if (split === undefined) return undefined;
    options = split;
    rest = text.slice(end).trim();
  }
  const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(rest);
  if (m === null) return undefined;
  const [, type, blob, comment] = m;
  if (blobProblem(type!, blob!) !== undefined) return undefined;
  return {
    options,
    type: type!,
    blob: blob!,
    comment: comment?.trim() ?? '',
    fingerprint: fingerprint(blob!),
  };
}

/** The line for a key: options, type, blob, comment. */
export function renderKeyLine(key: {
  options: readonly string[];
  type: string;
  blob: string;
  comment: string;
}): string {
  const body = `${key.type} ${key.blob}${key.comment === '' ? '' : ` ${key.comment}`}`;
  return key.options.length === 0 ? body : `${key.options.join(',')} ${body}`;
}
