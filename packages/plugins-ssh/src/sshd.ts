/**
 * The sshd settings op-dbus manages, rendered into one drop-in file: a known-keyword allow-list
 * with typed, validated values, and a parser for the rendered file (which must read back as the
 * settings it came from before it is put in place).
 */
import { lazySchema } from '@opdbus/core';
import { z } from 'zod';

/** Where the drop-in goes (read by Debian's and Fedora's `Include /etc/ssh/sshd_config.d/*.conf`). */
export const SSHD_DROPIN = '/etc/ssh/sshd_config.d/50-opdbus.conf';

const yesNo = lazySchema(() => z.boolean());
const count = lazySchema(() => z.number().int().min(0).max(1_000_000));
const word = lazySchema(() =>
  z.string().regex(/^[^\s"#\\]+$/, 'one word: no spaces, quotes, "#" or backslashes'),
);
const patterns = lazySchema(() => z.array(word).min(1));

/** Keywords and their value schemas: `true`/`false` are written as yes/no. */
export const sshdKeywords = {
  PasswordAuthentication: yesNo,
  PubkeyAuthentication: yesNo,
  KbdInteractiveAuthentication: yesNo,
  ChallengeResponseAuthentication: yesNo,
  PermitEmptyPasswords: yesNo,
  HostbasedAuthentication: yesNo,
  GSSAPIAuthentication: yesNo,
  UsePAM: yesNo,
  X11Forwarding: yesNo,
  AllowAgentForwarding: yesNo,
  PermitUserEnvironment: yesNo,
  DisableForwarding: yesNo,
  PrintMotd: yesNo,
  TCPKeepAlive: yesNo,
  UseDNS: yesNo,
  StrictModes: yesNo,
  IgnoreRhosts: yesNo,
  PermitRootLogin: lazySchema(() =>
    z.enum(['yes', 'no', 'prohibit-password', 'without-password', 'forced-commands-only']),
  ),
  AllowTcpForwarding: lazySchema(() => z.enum(['yes', 'no', 'all', 'local', 'remote'])),
  PermitTunnel: lazySchema(() => z.enum(['yes', 'no', 'point-to-point', 'ethernet'])),
  LogLevel: lazySchema(() =>
    z.enum(['QUIET', 'FATAL', 'ERROR', 'INFO', 'VERBOSE', 'DEBUG', 'DEBUG1', 'DEBUG2', 'DEBUG3']),
  ),
  MaxAuthTries: count,
  MaxSessions: count,
  LoginGraceTime: count,
  ClientAliveInterval: count,
  ClientAliveCountMax: count,
  MaxStartups: lazySchema(() =>
    z.string().regex(/^\d+(:\d+:\d+)?$/, 'start, or start:rate:full, e.g. 10:30:100'),
  ),
  Port: lazySchema(() => z.array(z.number().int().min(1).max(65535)).min(1)),
  ListenAddress: lazySchema(() => z.array(word).min(1)),
  AllowUsers: patterns,
  AllowGroups: patterns,
  DenyUsers: patterns,
  DenyGroups: patterns,
  AuthenticationMethods: lazySchema(() =>
    z
      .array(
        z.string().regex(/^[a-z-]+(:[a-z]+)?(,[a-z-]+(:[a-z]+)?)*$/, 'methods such as publickey,password'),
      )
      .min(1),
  ),
  Banner: lazySchema(() => z.string().regex(/^(none|\/[^\s"#\\]*)$/, 'an absolute path, or none')),
} as const;

/** A keyword of the allow-list. */
export type SshdKeyword = keyof typeof sshdKeywords;
/** A value: yes/no as a boolean, a number, a word, or a list written space-separated (or one line each for Port and ListenAddress). */
export type SshdValue = boolean | number | string | string[] | number[];
/** The `sshd` part of the section: keyword → value, null for "not set by op-dbus". */
export type SshdSettings = Partial<Record<SshdKeyword, SshdValue | null>>;

const repeated: ReadonlySet<string> = new Set(['Port', 'ListenAddress']);
const lists: ReadonlySet<string> = new Set([
  'AllowUsers',
  'AllowGroups',
  'DenyUsers',
  'DenyGroups',
  'AuthenticationMethods',
]);

/** The zod schema of the `sshd` settings: only known keywords, each value checked. */
export const sshdSchema: z.ZodType<SshdSettings> = lazySchema(
  () =>
    z.strictObject(
      Object.fromEntries(
        Object.entries(sshdKeywords).map(([k, schema]) => [k, (schema as z.ZodType).nullable().optional()]),
      ) as Record<SshdKeyword, z.ZodOptional<z.ZodNullable<z.ZodType<SshdValue>>>>,
    ) as z.ZodType<SshdSettings>,
);

/** The lines of one setting. */
function renderSetting(keyword: string, value: SshdValue): string[] {
  if (typeof value === 'boolean') return [`${keyword} ${value ? 'yes' : 'no'}`];
  if (Array.isArray(value)) {
    if (repeated.has(keyword)) return value.map((v) => `${keyword} ${v}`);
    return [`${keyword} ${value.join(' ')}`];
  }
  return [`${keyword} ${value}`];
}

/** The drop-in for `settings` (null and undefined values left out), keywords in allow-list order. */
export function renderDropin(settings: SshdSettings): string {
  const lines = ['# Managed by op-dbus (plugin ssh); changes here are reported as drift and undone.'];
  for (const keyword of Object.keys(sshdKeywords)) {
    const value = settings[keyword as SshdKeyword];
    if (value !== undefined && value !== null) lines.push(...renderSetting(keyword, value));
  }
  return `${lines.join('\n')}\n`;
}

/** A line of a drop-in that is not a known `Keyword value` line. */
export interface DropinProblem {
  line: number;
  text: string;
  reason: string;
}

/**
 * Parse a drop-in as sshd reads it (keywords case-insensitive, `#` comments, `=` or whitespace
 * between keyword and value), into typed settings. Lines it cannot read are returned as problems.
 */
export function parseDropin(text: string): { settings: SshdSettings; problems: DropinProblem[] } {
  const settings: Record<string, SshdValue> = {};
  const problems: DropinProblem[] = [];
  const canonical = new Map(Object.keys(sshdKeywords).map((k) => [k.toLowerCase(), k as SshdKeyword]));
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.+)$/.exec(line);
    const keyword = m === null ? undefined : canonical.get(m[1]!.toLowerCase());
    if (m === null || keyword === undefined) {
      problems.push({
        line: i + 1,
        text: raw,
        reason: m === null ? 'no value' : `keyword ${m[1]} is not managed by op-dbus`,
      });
      continue;
    }
    const words = m[2]!.trim().split(/\s+/);
    const schema = sshdKeywords[keyword] as z.ZodType;
    let value: unknown;
    if (repeated.has(keyword)) {
      const previous = (settings[keyword] as Array<string | number> | undefined) ?? [];
      const item = keyword === 'Port' ? Number(words[0]) : words[0];
      value = [...previous, item];
    } else if (lists.has(keyword)) value = words;
    else if (schema === yesNo) value = words[0] === 'yes' ? true : words[0] === 'no' ? false : words[0];
    else if (schema === count) value = Number(words[0]);
    else value = words[0];
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      problems.push({ line: i + 1, text: raw, reason: parsed.error.issues[0]?.message ?? 'invalid value' });
      continue;
    }
    if (!repeated.has(keyword) && keyword in settings) continue; // sshd: the first value wins
    settings[keyword] = parsed.data as SshdValue;
  }
  return { settings: settings, problems };
}
