import { watch as watchFs } from 'node:fs';
import { join } from 'node:path';
import {
  OpdbusError,
  REDACTED,
  definePlugin,
  formatPath,
  lazySchema,
  packageVersion,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
  type RedactedChangeValues,
  type RedactedValue,
} from '@opdbus/core';
import { connectBus, type DbusConnection } from '@opdbus/dbus';
import { z } from 'zod';
import {
  type DatabaseFile,
  createHome,
  databases,
  exists,
  databasePath,
  lockPasswordFiles,
  pathInRoot,
  processesOf,
  readDatabases,
  readLoginDefs,
  removeHome,
  writeDatabases,
  type DatabaseName,
  type Databases,
} from './db.js';
import { cryptHashProblem, isCryptHash } from './hash.js';

/** A user of the `users` section. Fields left out are not managed. */
export interface UserSpec {
  state?: 'present' | 'absent' | undefined;
  uid?: number | undefined;
  group?: string | undefined;
  groups?: string[] | undefined;
  comment?: string | undefined;
  home?: string | undefined;
  createHome?: boolean | undefined;
  shell?: string | undefined;
  password?: string | RedactedValue | undefined;
  locked?: boolean | undefined;
  expired?: boolean | undefined;
  force?: boolean | undefined;
}

/** A group of the `users` section. */
export interface GroupSpec {
  state?: 'present' | 'absent' | undefined;
  gid?: number | undefined;
}

/** The `users` section. */
export interface UsersSection {
  users?: Record<string, UserSpec> | undefined;
  groups?: Record<string, GroupSpec> | undefined;
}

/** The fields of a user a change carries (null in `before`: the user had none). */
export type UserFields = { [K in keyof UserSpec]?: UserSpec[K] | null };

/** The fields of a group a change carries. */
export interface GroupFields {
  gid?: number | null;
}

/** The values of the users plugin's changes: a user's fields (`user/NAME`) or a group's (`group/NAME`). */
export type UsersValue = UserFields | GroupFields;

/** A change of the users plugin. */
export type UsersChange = Change<UsersValue>;

/**
 * The checkpoint: for each database file, the exact line of every entry the changes touch (null:
 * there was none) and its index, and the home directories that did not exist.
 */
export type UsersCheckpoint = {
  lines: Record<DatabaseName, Array<{ name: string; line: string | null; index: number }>>;
  homes: Array<{ path: string; existed: boolean }>;
} & { [key: string]: JsonValue };

/** User and group names as shadow-utils accepts them by default (`[a-z_][a-z0-9_-]*[$]?`, up to 32). */
const NAME = /^[a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?$/;
const nameSchema = lazySchema(() =>
  z
    .string()
    .regex(
      NAME,
      'a user or group name: lowercase letters, digits, "_", "-" (up to 32, not starting with a digit or "-")',
    ),
);
const idSchema = lazySchema(() => z.number().int().min(0).max(4294967294));
const fieldText = (what: string) =>
  z.string().refine((v) => !/[:\n\r\0]/.test(v), { message: `${what} cannot contain ":", a newline or NUL` });
const absolutePath = (what: string) =>
  fieldText(what).refine((v) => v.startsWith('/') && !v.split('/').includes('..'), {
    message: `${what} must be an absolute path without ".."`,
  });
const redactedSchema = lazySchema(() => z.strictObject({ $redacted: z.literal(true) }));
const passwordSchema = lazySchema(() =>
  z.union([
    z.string().superRefine((value, ctx) => {
      const problem = cryptHashProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }),
    redactedSchema,
  ]),
);

/** The zod schema of a user. */
export const userSchema: z.ZodType<UserSpec> = lazySchema(() =>
  z.strictObject({
    state: z.enum(['present', 'absent']).optional().describe('"absent" removes the user (default present).'),
    uid: idSchema
      .optional()
      .describe('Numeric user id; allocated from UID_MIN..UID_MAX of login.defs when left out.'),
    group: z
      .string()
      .regex(/^([a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?|\d+)$/, 'a group name, or a gid in digits')
      .optional()
      .describe(
        'Primary group, by name (a gid in digits when no group has it). New users without one get a group of their own name, as useradd does.',
      ),
    groups: z
      .array(nameSchema)
      .optional()
      .describe('Supplementary groups, exactly (the user is removed from groups not listed).'),
    comment: fieldText('comment').optional().describe('The GECOS field (full name).'),
    home: absolutePath('home').optional().describe('Home directory (default /home/NAME for a new user).'),
    createHome: z
      .boolean()
      .optional()
      .describe(
        'true: the home directory exists, created from /etc/skel and owned by the user if it did not.',
      ),
    shell: absolutePath('shell').optional().describe('Login shell (default /bin/sh for a new user).'),
    password: passwordSchema
      .optional()
      .describe(
        'The password as a crypt(3) hash ($y$, $6$, $5$, $2b$ …), never clear text. Shown redacted by query.',
      ),
    locked: z.boolean().optional().describe('Password login disabled ("!" before the hash in /etc/shadow).'),
    expired: z.boolean().optional().describe('The account has expired (shadow expire date in the past).'),
    force: z
      .boolean()
      .optional()
      .describe('With state absent: remove the user even when it has running processes.'),
  }),
);

/** The zod schema of a group. */
export const groupSchema: z.ZodType<GroupSpec> = lazySchema(() =>
  z.strictObject({
    state: z.enum(['present', 'absent']).optional().describe('"absent" removes the group (default present).'),
    gid: idSchema.optional().describe('Numeric group id; allocated from GID_MIN..GID_MAX when left out.'),
  }),
);

/** The zod schema of the `users` section. */
export const usersSchema: z.ZodType<UsersSection> = lazySchema(() =>
  z
    .strictObject({
      users: z.record(nameSchema, userSchema).optional().describe('Local users, by name.'),
      groups: z.record(nameSchema, groupSchema).optional().describe('Local groups, by name.'),
    })
    .describe(
      'Local users and groups (/etc/passwd, /etc/group, /etc/shadow, /etc/gshadow under --root), edited in place under the shadow-utils lock; lines not managed are kept byte for byte.',
    ),
);

/** Options of {@link createUsersPlugin}. */
export interface UsersPluginOptions {
  /** How long to wait for /etc/.pwd.lock held by another program (default 15 s, as lckpwdf). */
  lockWaitMs?: number;
  /** Where running processes are looked up before a user is removed (default /proc). */
  proc?: string;
  /**
   * How users are created, changed and removed (default `auto`):
   * - `files`: direct edits of the four files under the shadow-utils lock.
   * - `accountsservice`: AccountsService over D-Bus (the target's bus) for what it can do —
   *   create a user with a home from /etc/skel (no uid or primary group given), remove one, set
   *   the real name, shell, password hash and lock — then the files for the rest (uid, groups,
   *   expiry) and to make the entry exactly as declared. The target's root must be the files that
   *   bus's AccountsService manages.
   * - `auto`: AccountsService when it answers on the system bus and the target is this host
   *   (root `/`, no `--bus`); the files otherwise.
   */
  backend?: 'auto' | 'files' | 'accountsservice';
}

const ACCOUNTS = 'org.freedesktop.Accounts';
const ACCOUNTS_PATH = '/org/freedesktop/Accounts';

const DAY_MS = 86_400_000;
const today = (): number => Math.floor(Date.now() / DAY_MS);

/** The user fields compared by diff, in order. */
const userFields = [
  'uid',
  'group',
  'groups',
  'comment',
  'home',
  'createHome',
  'shell',
  'password',
  'locked',
  'expired',
] as const;

function isRedacted(value: unknown): value is RedactedValue {
  return typeof value === 'object' && value !== null && (value as RedactedValue).$redacted === true;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b))
    return JSON.stringify((a as string[]).toSorted()) === JSON.stringify((b as string[]).toSorted());
  return a === b;
}

/** The observed state of every user and group, from the files. */
async function observe(
  root: string,
  dbs: Databases,
  only: ReadonlySet<string> | 'all',
): Promise<UsersSection> {
  const groupNameByGid = new Map<number, string>();
  const groups: Record<string, GroupSpec> = {};
  const memberships = new Map<string, string[]>();
  for (const f of dbs.group.entries()) {
    const [name, , gidText, members] = f;
    const gid = Number(gidText);
    if (!groupNameByGid.has(gid)) groupNameByGid.set(gid, name!);
    groups[name!] = { gid };
    for (const member of (members ?? '').split(',').filter((m) => m !== '')) {
      const list = memberships.get(member) ?? [];
      list.push(name!);
      memberships.set(member, list);
    }
  }
  const users: Record<string, UserSpec> = {};
  const day = today();
  for (const f of dbs.passwd.entries()) {
    const [name, , uidText, gidText, gecos, home, shell] = f;
    if (only !== 'all' && !only.has(name!)) continue;
    const gid = Number(gidText);
    const user: UserSpec = {
      uid: Number(uidText),
      group: groupNameByGid.get(gid) ?? String(gid),
      groups: [...(memberships.get(name!) ?? [])].sort(),
      comment: gecos ?? '',
      home: home ?? '',
      shell: shell ?? '',
    };
    if (home !== undefined && home.startsWith('/')) {
      if (await exists(join(root, home))) user.createHome = true;
    }
    const shadow = dbs.shadow.fields(name!);
    if (shadow !== undefined) {
      const field = shadow[1] ?? '';
      const locked = field.startsWith('!');
      const rest = locked ? field.slice(1) : field;
      if (isCryptHash(rest)) user.password = rest;
      user.locked = locked;
      const expire = shadow[7] ?? '';
      user.expired = expire !== '' && Number(expire) <= day;
    } else {
      user.locked = false;
      user.expired = false;
    }
    users[name!] = user;
  }
  return { users, groups };
}

function scoped(all: UsersSection, scope: UsersSection): UsersSection {
  const out: UsersSection = {};
  if (scope.users !== undefined) {
    out.users = {};
    for (const name of Object.keys(scope.users)) out.users[name] = all.users?.[name] ?? { state: 'absent' };
  }
  if (scope.groups !== undefined) {
    out.groups = {};
    for (const name of Object.keys(scope.groups))
      out.groups[name] = all.groups?.[name] ?? { state: 'absent' };
  }
  return out;
}

/** The fields of a user a change carries: those desired names (state and force left out). */
function managed(spec: UserSpec, keys: readonly (keyof UserSpec)[]): UserFields {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = spec[key];
    if (value !== undefined) out[key] = Array.isArray(value) ? value.toSorted() : value;
  }
  return out;
}

/** The pure diff of the `users` section. */
export function diffUsers(desired: UsersSection, observed: UsersSection): ChangeSpec<UsersValue>[] {
  const changes: ChangeSpec<UsersValue>[] = [];
  const groupChanges: ChangeSpec<UsersValue>[] = [];
  for (const [name, want] of Object.entries(desired.groups ?? {})) {
    const have = observed.groups?.[name];
    const haveAbsent = have === undefined || have.state === 'absent';
    if (want.state === 'absent') {
      if (!haveAbsent)
        groupChanges.push({
          resource: `group/${name}`,
          op: 'delete',
          before: { gid: have.gid ?? null },
          after: null,
        });
    } else if (haveAbsent) {
      groupChanges.push({
        resource: `group/${name}`,
        op: 'create',
        before: null,
        after: want.gid === undefined ? {} : { gid: want.gid },
        summary: `create group ${name}${want.gid === undefined ? '' : ` (gid ${want.gid})`}`,
      });
    } else if (want.gid !== undefined && want.gid !== have.gid) {
      groupChanges.push({
        resource: `group/${name}`,
        op: 'update',
        before: { gid: have.gid ?? null },
        after: { gid: want.gid },
        summary: `set gid of group ${name} ${have.gid} → ${want.gid}`,
      });
    }
  }
  const userChanges: ChangeSpec<UsersValue>[] = [];
  for (const [name, want] of Object.entries(desired.users ?? {})) {
    const have = observed.users?.[name];
    const haveAbsent = have === undefined || have.state === 'absent';
    const groupDeps = [...(want.group !== undefined ? [want.group] : []), ...(want.groups ?? [])]
      .filter((g) => desired.groups?.[g] !== undefined)
      .map((g) => `group/${g}`);
    if (want.state === 'absent') {
      if (!haveAbsent)
        userChanges.push({
          resource: `user/${name}`,
          op: 'delete',
          before: managed(have, ['uid', 'group', 'home']),
          after: want.force === true ? { force: true } : null,
          summary: `remove user ${name}${want.force === true ? ' (forced)' : ''}`,
        });
      continue;
    }
    if (haveAbsent) {
      userChanges.push({
        resource: `user/${name}`,
        op: 'create',
        before: null,
        after: managed(want, userFields),
        dependsOn: groupDeps,
        summary: `create user ${name}`,
      });
      continue;
    }
    const keys = userFields.filter((key) => {
      const value = want[key];
      if (value === undefined || isRedacted(value)) return false;
      if (key === 'createHome' && value === false) return false;
      return !sameValue(value, have[key]);
    });
    if (keys.length > 0) {
      const before = managed(have, keys);
      for (const key of keys) before[key] ??= null;
      userChanges.push({
        resource: `user/${name}`,
        op: 'update',
        before,
        after: managed(want, keys),
        dependsOn: groupDeps,
        summary: `set ${keys.join(', ')} of user ${name}`,
      });
    }
  }
  // Groups are created before the users that use them, and removed after the users that left them.
  const userResources = userChanges.map((c) => c.resource);
  for (const c of groupChanges) {
    if (c.op === 'delete') changes.push({ ...c, dependsOn: userResources });
    else changes.push(c);
  }
  changes.push(...userChanges);
  return changes;
}

function redactUser(value: UsersValue | null): UsersValue | null {
  if (value === null || !('password' in value) || value.password === undefined) return value;
  return { ...value, password: REDACTED };
}

/** Next free id in [min, max], preferring `preferred` when it is free. */
function freeId(
  taken: ReadonlySet<number>,
  min: number,
  max: number,
  preferred?: number,
): number | undefined {
  if (preferred !== undefined && preferred >= min && preferred <= max && !taken.has(preferred))
    return preferred;
  for (let id = min; id <= max; id++) if (!taken.has(id)) return id;
  return undefined;
}

function ids(file: DatabaseFile): Map<number, string> {
  const out = new Map<number, string>();
  for (const f of file.entries()) out.set(Number(f[2]), f[0]!);
  return out;
}

function setMembership(
  file: DatabaseFile,
  group: string,
  user: string,
  member: boolean,
  field: number,
): void {
  const fields = file.fields(group);
  if (fields === undefined) return;
  while (fields.length <= field) fields.push('');
  const members = fields[field]!.split(',').filter((m) => m !== '');
  const has = members.includes(user);
  if (has === member) return;
  fields[field] = (member ? [...members, user] : members.filter((m) => m !== user)).join(',');
  file.set(group, fields.join(':'));
}

/**
 * Create the users plugin: users and groups edited directly in ROOT/etc/{passwd,group,shadow,gshadow}
 * under the shadow-utils lock (see {@link lockPasswordFiles}), one atomic rename per file, every
 * line it does not manage kept byte for byte. `watch` follows the files with inotify.
 */
export function createUsersPlugin(
  options: UsersPluginOptions = {},
): Plugin<UsersSection, UsersCheckpoint, UsersValue> {
  const rootOf = (ctx: PluginContext): string => ctx.target.root ?? '/';
  const proc = options.proc ?? '/proc';

  const locked = async <T>(ctx: PluginContext, fn: (dbs: Databases) => Promise<T>): Promise<T> => {
    const root = rootOf(ctx);
    const lock = await lockPasswordFiles(root, {
      ...(options.lockWaitMs === undefined ? {} : { waitMs: options.lockWaitMs }),
      signal: ctx.signal,
    });
    try {
      return await fn(await readDatabases(root));
    } finally {
      await lock.release();
    }
  };

  const applyGroup = async (
    change: UsersChange,
    ctx: PluginContext,
    dbs: Databases,
  ): Promise<DatabaseName[]> => {
    const name = change.resource.slice('group/'.length);
    const path = formatPath(['plugins', 'users', 'groups', name]);
    if (change.after === null) {
      const fields = dbs.group.fields(name);
      if (fields === undefined) return [];
      const gid = Number(fields[2]);
      const user = dbs.passwd.entries().find((f) => Number(f[3]) === gid);
      if (user !== undefined)
        throw new OpdbusError(
          'OPDBUS_ERR_USERS_GROUP_IN_USE',
          `${path}: group ${name} (gid ${gid}) is the primary group of user ${user[0]}; remove that user or change its group first.`,
          { data: { path, group: name, user: user[0]! } },
        );
      dbs.group.set(name, null);
      dbs.gshadow.set(name, null);
      return ['group', 'gshadow'];
    }
    const after = change.after as { gid?: number };
    const gids = ids(dbs.group);
    const existing = dbs.group.fields(name);
    if (after.gid !== undefined) {
      const owner = gids.get(after.gid);
      if (owner !== undefined && owner !== name)
        throw new OpdbusError(
          'OPDBUS_ERR_USERS_ID_TAKEN',
          `${path}: gid ${after.gid} belongs to group ${owner} already.`,
          {
            data: { path, gid: after.gid, owner },
          },
        );
    }
    if (existing !== undefined) {
      if (after.gid !== undefined && Number(existing[2]) !== after.gid) {
        existing[2] = String(after.gid);
        dbs.group.set(name, existing.join(':'));
      }
      return ['group'];
    }
    const defs = await readLoginDefs(rootOf(ctx));
    const gid = after.gid ?? freeId(new Set(gids.keys()), defs.gidMin, defs.gidMax);
    if (gid === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_USERS_NO_ID',
        `${path}: no free gid in ${defs.gidMin}..${defs.gidMax}.`,
        {
          data: { path },
        },
      );
    dbs.gshadow.set(name, `${name}:!::`);
    dbs.group.set(name, `${name}:x:${gid}:`);
    return ['gshadow', 'group'];
  };

  const applyUser = async (
    change: UsersChange,
    ctx: PluginContext,
    dbs: Databases,
  ): Promise<DatabaseName[]> => {
    const name = change.resource.slice('user/'.length);
    const path = formatPath(['plugins', 'users', 'users', name]);
    const root = rootOf(ctx);
    if (change.op === 'delete') {
      const fields = dbs.passwd.fields(name);
      if (fields === undefined) return [];
      const force = (change.after as { force?: boolean } | null)?.force === true;
      const uid = Number(fields[2]);
      if (!force) await assertNoProcesses(path, name, uid);
      dbs.passwd.set(name, null);
      dbs.shadow.set(name, null);
      for (const g of dbs.group.entries()) setMembership(dbs.group, g[0]!, name, false, 3);
      for (const g of dbs.gshadow.entries()) setMembership(dbs.gshadow, g[0]!, name, false, 3);
      return ['passwd', 'shadow', 'group', 'gshadow'];
    }
    const want = change.after as UserSpec;
    const defs = await readLoginDefs(root);
    const uids = ids(dbs.passwd);
    const gids = ids(dbs.group);
    const existing = dbs.passwd.fields(name);
    const written: DatabaseName[] = [];
    const gidOf = (group: string): number => {
      if (/^\d+$/.test(group)) return Number(group);
      const f = dbs.group.fields(group);
      if (f === undefined)
        throw new OpdbusError(
          'OPDBUS_ERR_USERS_UNKNOWN_GROUP',
          `${path}.group: no group ${group}; add it under users.groups in the same document.`,
          { data: { path: `${path}.group`, group } },
        );
      return Number(f[2]);
    };
    // uid
    let uid = existing === undefined ? undefined : Number(existing[2]);
    if (want.uid !== undefined) {
      const owner = uids.get(want.uid);
      if (owner !== undefined && owner !== name)
        throw new OpdbusError(
          'OPDBUS_ERR_USERS_ID_TAKEN',
          `${path}.uid: uid ${want.uid} belongs to user ${owner} already.`,
          {
            data: { path: `${path}.uid`, uid: want.uid, owner },
          },
        );
      uid = want.uid;
    }
    uid ??= freeId(new Set(uids.keys()), defs.uidMin, defs.uidMax);
    if (uid === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_USERS_NO_ID',
        `${path}: no free uid in ${defs.uidMin}..${defs.uidMax}.`,
        {
          data: { path },
        },
      );
    // primary group
    let gid: number;
    if (want.group !== undefined) gid = gidOf(want.group);
    else if (existing !== undefined) gid = Number(existing[3]);
    else {
      const own = dbs.group.fields(name);
      if (own !== undefined) gid = Number(own[2]);
      else {
        const free = freeId(new Set(gids.keys()), defs.gidMin, defs.gidMax, uid);
        if (free === undefined)
          throw new OpdbusError(
            'OPDBUS_ERR_USERS_NO_ID',
            `${path}: no free gid in ${defs.gidMin}..${defs.gidMax}.`,
            {
              data: { path },
            },
          );
        gid = free;
        dbs.group.set(name, `${name}:x:${gid}:`);
        dbs.gshadow.set(name, `${name}:!::`);
      }
    }
    // passwd
    const home = want.home ?? existing?.[5] ?? `/home/${name}`;
    const pw = existing ?? [name, 'x', '', '', '', '', ''];
    pw[2] = String(uid);
    pw[3] = String(gid);
    if (want.comment !== undefined || existing === undefined) pw[4] = want.comment ?? pw[4] ?? '';
    pw[5] = home;
    if (want.shell !== undefined || existing === undefined) pw[6] = want.shell ?? '/bin/sh';
    dbs.passwd.set(name, pw.join(':'));
    // shadow
    const shadowFields = dbs.shadow.fields(name);
    const sh = shadowFields ?? [name, '!', String(today()), '0', '99999', '7', '', '', ''];
    if (shadowFields === undefined || typeof want.password === 'string' || want.locked !== undefined) {
      const wasLocked = sh[1]!.startsWith('!');
      let rest = wasLocked ? sh[1]!.slice(1) : sh[1]!;
      if (typeof want.password === 'string') {
        rest = want.password;
        sh[2] = String(today());
      }
      const lock =
        want.locked ?? (shadowFields === undefined ? typeof want.password !== 'string' : wasLocked);
      if (!lock && rest === '') {
        if (want.locked === false)
          throw new OpdbusError(
            'OPDBUS_ERR_USERS_UNSAFE',
            `${path}.locked: unlocking user ${name}, who has no password hash, would allow a login without a password; give a password hash too.`,
            { data: { path: `${path}.locked` } },
          );
        rest = '*';
      }
      sh[1] = lock ? `!${rest}` : rest;
    }
    if (want.expired !== undefined) {
      const expire = sh[7] ?? '';
      const isExpired = expire !== '' && Number(expire) <= today();
      if (want.expired !== isExpired) {
        while (sh.length < 9) sh.push('');
        sh[7] = want.expired ? '1' : '';
      }
    }
    if (shadowFields !== undefined || dbs.shadow.original !== undefined || pw[1] === 'x')
      dbs.shadow.set(name, sh.join(':'));
    // supplementary groups
    if (want.groups !== undefined) {
      for (const g of want.groups)
        if (dbs.group.fields(g) === undefined)
          throw new OpdbusError(
            'OPDBUS_ERR_USERS_UNKNOWN_GROUP',
            `${path}.groups: no group ${g}; add it under users.groups in the same document.`,
            { data: { path: `${path}.groups`, group: g } },
          );
      for (const g of dbs.group.entries())
        setMembership(dbs.group, g[0]!, name, want.groups.includes(g[0]!), 3);
      for (const g of dbs.gshadow.entries())
        setMembership(dbs.gshadow, g[0]!, name, want.groups.includes(g[0]!), 3);
    }
    written.push('gshadow', 'group', 'shadow', 'passwd');
    if (want.createHome === true && !(await exists(join(root, home)))) {
      await writeDatabases(dbs, written);
      try {
        await createHome(root, home, uid, gid, (await readLoginDefs(root)).homeMode);
      } catch (err) {
        if (err instanceof OpdbusError) throw err;
        throw new OpdbusError(
          'OPDBUS_ERR_USERS_WRITE',
          `${path}.home: cannot create ${home}: ${(err as Error).message}.`,
          {
            data: { path: `${path}.home`, home },
            cause: err,
          },
        );
      }
    }
    return written;
  };

  /** A connection to AccountsService when the backend is (or probes as) accountsservice. */
  const accounts = async (ctx: PluginContext): Promise<DbusConnection | undefined> => {
    const mode = options.backend ?? 'auto';
    if (mode === 'files') return undefined;
    if (mode === 'auto' && (rootOf(ctx) !== '/' || ctx.target.busAddress !== undefined)) return undefined;
    let bus: DbusConnection | undefined;
    try {
      bus = await connectBus({
        ...(ctx.target.busAddress === undefined ? {} : { address: ctx.target.busAddress }),
        logger: ctx.logger,
      });
      // Starts it by bus activation if it is installed but not running.
      await bus.call({
        destination: ACCOUNTS,
        path: ACCOUNTS_PATH,
        interface: 'org.freedesktop.DBus.Peer',
        member: 'Ping',
      });
      return bus;
    } catch (err) {
      await bus?.close().catch(() => undefined);
      if (mode === 'accountsservice')
        throw new OpdbusError(
          'OPDBUS_ERR_USERS_ACCOUNTS',
          `AccountsService is not reachable on ${ctx.target.busAddress ?? 'the system bus'}: ${(err as Error).message}`,
          { cause: err },
        );
      return undefined;
    }
  };

  /** Do with AccountsService what it can do of a user change (see {@link UsersPluginOptions.backend}). */
  const applyUserViaAccounts = async (
    change: UsersChange,
    ctx: PluginContext,
    bus: DbusConnection,
  ): Promise<void> => {
    const name = change.resource.slice('user/'.length);
    const path = formatPath(['plugins', 'users', 'users', name]);
    const call = async (
      objectPath: string,
      iface: string,
      member: string,
      signature: string,
      body: unknown[],
    ) => {
      try {
        return await bus.call({
          destination: ACCOUNTS,
          path: objectPath,
          interface: iface,
          member,
          signature,
          body,
        });
      } catch (err) {
        throw new OpdbusError(
          'OPDBUS_ERR_USERS_ACCOUNTS',
          `${path}: AccountsService ${member} failed: ${(err as Error).message}`,
          {
            data: { path, member },
            cause: err,
          },
        );
      }
    };
    const dbs = await readDatabases(rootOf(ctx));
    const fields = dbs.passwd.fields(name);
    if (change.op === 'delete') {
      if (fields === undefined) return;
      const uid = Number(fields[2]);
      const force = (change.after as { force?: boolean } | null)?.force === true;
      if (!force) await assertNoProcesses(path, name, uid);
      await call(ACCOUNTS_PATH, ACCOUNTS, 'DeleteUser', 'xb', [BigInt(uid), false]);
      return;
    }
    const want = change.after as UserSpec;
    let userPath: string;
    if (fields === undefined) {
      // AccountsService picks the uid and a group of the user's name, and always makes the home.
      if (want.uid !== undefined || want.group !== undefined || want.createHome !== true) return;
      [userPath] = (await call(ACCOUNTS_PATH, ACCOUNTS, 'CreateUser', 'ssi', [
        name,
        want.comment ?? '',
        0,
      ])) as [string];
    } else [userPath] = (await call(ACCOUNTS_PATH, ACCOUNTS, 'FindUserByName', 's', [name])) as [string];
    const user = 'org.freedesktop.Accounts.User';
    if (want.comment !== undefined) await call(userPath, user, 'SetRealName', 's', [want.comment]);
    if (want.shell !== undefined) await call(userPath, user, 'SetShell', 's', [want.shell]);
    if (typeof want.password === 'string')
      await call(userPath, user, 'SetPassword', 'ss', [want.password, '']);
    if (want.locked !== undefined) await call(userPath, user, 'SetLocked', 'b', [want.locked]);
  };

  const assertNoProcesses = async (path: string, name: string, uid: number): Promise<void> => {
    const pids = await processesOf(uid, proc);
    if (pids.length > 0)
      throw new OpdbusError(
        'OPDBUS_ERR_USERS_BUSY',
        `${path}: user ${name} (uid ${uid}) has ${pids.length} running process(es) (pid ${pids.slice(0, 5).join(', ')}); stop them, or set force: true to remove the user anyway.`,
        { data: { path, user: name, uid, pids: pids.slice(0, 20) } },
      );
  };

  return definePlugin<UsersSection, UsersCheckpoint, UsersValue>({
    name: 'users',
    version: packageVersion(import.meta.url),
    description:
      'Local users and groups: passwd, group, shadow and gshadow under the shadow-utils lock; password hashes only.',
    schema: usersSchema,

    async probe(ctx) {
      const root = rootOf(ctx);
      try {
        await readDatabases(root);
        const bus = await accounts(ctx).catch(() => undefined);
        await bus?.close();
        return {
          available: true,
          detail: `${bus === undefined ? 'files' : 'AccountsService, then files'} under ${join(root, 'etc')}`,
        };
      } catch (err) {
        return { available: false, reason: (err as Error).message };
      }
    },

    async query(ctx, queryOptions) {
      const root = rootOf(ctx);
      const dbs = await readDatabases(root);
      const scope = queryOptions?.scope;
      const all = await observe(
        root,
        dbs,
        scope === undefined ? 'all' : new Set(Object.keys(scope.users ?? {})),
      );
      return scope === undefined ? all : scoped(all, scope);
    },

    diff: diffUsers,

    // Plan time: names and ids the document refers to are checked against the target's files, so
    // that a missing group or a taken id is an error naming its path before anything changes.
    async expand(desired, ctx) {
      const dbs = await readDatabases(rootOf(ctx));
      const present = (spec: { state?: string | undefined } | undefined): boolean =>
        spec !== undefined && spec.state !== 'absent';
      const groupExists = (g: string): boolean =>
        present(desired.groups?.[g]) ||
        (dbs.group.fields(g) !== undefined && desired.groups?.[g]?.state !== 'absent');
      const uidOwner = ids(dbs.passwd);
      const gidOwner = ids(dbs.group);
      for (const [name, user] of Object.entries(desired.users ?? {})) {
        if (!present(user)) continue;
        const path = formatPath(['plugins', 'users', 'users', name]);
        const named = [
          ...(user.group !== undefined && !/^\d+$/.test(user.group)
            ? [[`${path}.group`, user.group] as const]
            : []),
          ...(user.groups ?? []).map((g, i) => [`${path}.groups[${i}]`, g] as const),
        ];
        for (const [where, g] of named)
          if (!groupExists(g))
            throw new OpdbusError(
              'OPDBUS_ERR_USERS_UNKNOWN_GROUP',
              `${where}: no group ${g} in ${databasePath(rootOf(ctx), 'group')}; add it under users.groups in the same document.`,
              { data: { path: where, group: g } },
            );
        const owner = user.uid === undefined ? undefined : uidOwner.get(user.uid);
        if (owner !== undefined && owner !== name && present(desired.users?.[owner] ?? {}))
          throw new OpdbusError(
            'OPDBUS_ERR_USERS_ID_TAKEN',
            `${path}.uid: uid ${user.uid} belongs to user ${owner} already; pick a free uid or leave it out.`,
            { data: { path: `${path}.uid`, uid: user.uid ?? null, owner } },
          );
      }
      for (const [name, group] of Object.entries(desired.groups ?? {})) {
        const owner = group.gid === undefined ? undefined : gidOwner.get(group.gid);
        if (present(group) && owner !== undefined && owner !== name && present(desired.groups?.[owner] ?? {}))
          throw new OpdbusError(
            'OPDBUS_ERR_USERS_ID_TAKEN',
            `${formatPath(['plugins', 'users', 'groups', name])}.gid: gid ${group.gid} belongs to group ${owner} already.`,
            {
              data: {
                path: formatPath(['plugins', 'users', 'groups', name, 'gid']),
                gid: group.gid ?? null,
                owner,
              },
            },
          );
      }
      return { sections: {} };
    },

    async apply(change, ctx) {
      if (change.resource.startsWith('user/')) {
        const bus = await accounts(ctx);
        if (bus !== undefined) {
          try {
            await applyUserViaAccounts(change, ctx, bus);
          } finally {
            await bus.close();
          }
        }
      }
      // The files: everything for the files backend; after AccountsService, what it cannot do.
      await locked(ctx, async (dbs) => {
        const order = change.resource.startsWith('group/')
          ? await applyGroup(change, ctx, dbs)
          : await applyUser(change, ctx, dbs);
        await writeDatabases(dbs, order);
      });
      ctx.logger.debug({ resource: change.resource, op: change.op }, 'users change applied');
    },

    async checkpoint(ctx, changes) {
      const root = rootOf(ctx);
      const dbs = await readDatabases(root);
      const userNames = new Set<string>();
      const groupNames = new Set<string>();
      const homes: Array<{ path: string; existed: boolean }> = [];
      for (const change of changes) {
        if (change.resource.startsWith('group/')) {
          groupNames.add(change.resource.slice('group/'.length));
          continue;
        }
        const name = change.resource.slice('user/'.length);
        userNames.add(name);
        groupNames.add(name);
        for (const g of dbs.group.entries())
          if ((g[3] ?? '').split(',').includes(name)) groupNames.add(g[0]!);
        for (const g of dbs.gshadow.entries())
          if ((g[3] ?? '').split(',').includes(name)) groupNames.add(g[0]!);
        const after = change.after as UserSpec | null;
        for (const g of after?.groups ?? []) groupNames.add(g);
        if (after?.group !== undefined) groupNames.add(after.group);
        const home = after?.home ?? dbs.passwd.fields(name)?.[5] ?? `/home/${name}`;
        if (after?.createHome === true) homes.push({ path: home, existed: await exists(join(root, home)) });
      }
      const record = (file: DatabaseFile, names: Iterable<string>) =>
        [...names].map((name) => {
          const index = file.indexOf(name);
          return {
            name,
            line: index < 0 ? null : file.lines[index]!,
            index: index < 0 ? file.lines.length : index,
          };
        });
      return {
        lines: {
          passwd: record(dbs.passwd, userNames),
          shadow: record(dbs.shadow, userNames),
          group: record(dbs.group, groupNames),
          gshadow: record(dbs.gshadow, groupNames),
        },
        homes,
      };
    },

    async restore(token, ctx) {
      const root = rootOf(ctx);
      const putBack = (dbs: Databases): boolean => {
        for (const name of databases) {
          const file = dbs[name];
          const entries = token.lines[name] ?? [];
          // Remove every recorded entry, then put back those that existed at their old place.
          for (const e of entries) file.set(e.name, null);
          for (const e of [...entries].sort((a, b) => a.index - b.index))
            if (e.line !== null) file.insertAt(e.index, e.line);
        }
        return databases.some((name) => dbs[name].changed());
      };
      // Already as recorded (an apply that failed before writing, or a restore run twice): no lock needed.
      if (putBack(await readDatabases(root)))
        await locked(ctx, async (dbs) => {
          if (putBack(dbs)) await writeDatabases(dbs, ['passwd', 'shadow', 'group', 'gshadow']);
        });
      for (const home of token.homes) if (!home.existed) await removeHome(root, home.path);
    },

    watch(ctx, onEvent) {
      const etc = pathInRoot(rootOf(ctx), '/etc');
      const names = new Set<string>(databases);
      // inotify on /etc: the files are replaced by rename, so the directory is what is watched.
      const watcher = watchFs(etc, { persistent: false }, (_event, filename) => {
        const file = filename?.toString();
        if (file === undefined || !names.has(file)) return;
        onEvent({ plugin: 'users', resource: `file/${file}`, detail: `${join(etc, file)} changed` });
      });
      watcher.on('error', (err) => ctx.logger.warn({ err }, 'users watch failed'));
      return Promise.resolve(() => watcher.close());
    },

    redact(section) {
      const users: Record<string, UserSpec> = {};
      for (const [name, user] of Object.entries(section.users ?? {}))
        users[name] = user.password === undefined ? user : { ...user, password: REDACTED };
      return section.users === undefined ? section : { ...section, users };
    },

    redactChange(change): RedactedChangeValues<UsersValue> {
      return { before: redactUser(change.before), after: redactUser(change.after), summary: change.summary };
    },
  });
}

/** The users plugin with default options. */
export const usersPlugin: Plugin<UsersSection, UsersCheckpoint, UsersValue> = createUsersPlugin();
