/**
 * Password hashes as crypt(3) writes them into /etc/shadow. Only hashes are accepted: a clear-text
 * password never belongs in a state document, and the traditional 13-character DES form is
 * refused too (it cannot be told apart from a clear-text password, and it is broken).
 */

const B64 = '[./0-9A-Za-z]';

/** The crypt(3) hash methods accepted, with the pattern of a full hash of each. */
export const cryptMethods: ReadonlyArray<{ name: string; prefix: string; pattern: RegExp }> = [
  { name: 'yescrypt', prefix: '$y$', pattern: new RegExp(`^\\$y\\$${B64}+\\$${B64}*\\$${B64}{43}$`) },
  { name: 'gost-yescrypt', prefix: '$gy$', pattern: new RegExp(`^\\$gy\\$${B64}+\\$${B64}*\\$${B64}{43}$`) },
  { name: 'scrypt', prefix: '$7$', pattern: new RegExp(`^\\$7\\$${B64}{11,}\\$${B64}{43}$`) },
  { name: 'bcrypt', prefix: '$2b$', pattern: new RegExp(`^\\$2[abxy]\\$\\d{2}\\$${B64}{53}$`) },
  {
    name: 'sha512crypt',
    prefix: '$6$',
    pattern: new RegExp(`^\\$6\\$(rounds=\\d{1,9}\\$)?${B64}{0,16}\\$${B64}{86}$`),
  },
  {
    name: 'sha256crypt',
    prefix: '$5$',
    pattern: new RegExp(`^\\$5\\$(rounds=\\d{1,9}\\$)?${B64}{0,16}\\$${B64}{43}$`),
  },
  { name: 'md5crypt', prefix: '$1$', pattern: new RegExp(`^\\$1\\$${B64}{0,8}\\$${B64}{22}$`) },
];

/** Whether `value` is a complete crypt(3) hash of an accepted method. */
export function isCryptHash(value: string): boolean {
  return cryptMethods.some((m) => m.pattern.test(value));
}

/** Why `value` is not an accepted password hash, or undefined when it is one. */
export function cryptHashProblem(value: string): string | undefined {
  if (isCryptHash(value)) return undefined;
  const method = cryptMethods.find((m) => value.startsWith(m.prefix.slice(0, 3)));
  if (method !== undefined)
    return `not a complete ${method.name} hash (wrong length or characters); copy the whole hash that \`mkpasswd -m ${method.name === 'sha512crypt' ? 'sha-512' : method.name}\` or \`openssl passwd -6\` prints`;
  return 'a crypt(3) hash such as "$y$j9T$…" or "$6$…" is expected, never a clear-text password; make one with `mkpasswd -m yescrypt` or `openssl passwd -6`';
}
