import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, watch as watchFs, type FSWatcher } from 'node:fs';
import {
  chown,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  OpdbusError,
  definePlugin,
  formatPath,
  lazySchema,
  packageVersion,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
} from '@opdbus/core';
import { ConfinedRoot } from '@opdbus/netlink';
import { z } from 'zod';
import { blobProblem, fingerprint, optionProblem, parseKeyLine, renderKeyLine } from './keys.js';
import {
  SSHD_DROPIN,
  parseDropin,
  renderDropin,
  sshdKeywords,
  sshdSchema,
  type SshdSettings,
  type SshdValue,
} from './sshd.js';

/** One authorized key of a user, identified by its fingerprint. */
export interface AuthorizedKey {
  /** `TYPE BASE64 [COMMENT]`, as in a .pub file. */
  key: string;
  /** sshd key options, e.g. `from="10.0.0.0/8"`, `command="/usr/bin/backup"`, `no-pty`. */
  options?: string[] | undefined;
  state?: 'present' | 'absent' | undefined;
}

/**
 * An authorized key as a change carries it (`key/USER/FINGERPRINT`): the key line (type, base64,
 * comment; normalised) and its sshd options.
 */
export type AuthorizedKeyValue = { key: string; options: string[] };

/**
 * The values of the ssh plugin's changes: an authorized key ({@link AuthorizedKeyValue}) or the
 * value of an sshd setting (`sshd/KEYWORD`, see {@link SshdValue}).
 */
export type SshValue = AuthorizedKeyValue | SshdValue;

/** A change of the ssh plugin. */
export type SshChange = Change<SshValue>;

/** The ssh plugin, typed: its section, checkpoint and change values. */
export type SshPlugin = Plugin<SshSection, SshCheckpoint, SshValue>;

/** The `ssh` section. */
export interface SshSection {
  /** Keys by user; keys of a user that are not listed are left alone. */
  authorizedKeys?: Record<string, AuthorizedKey[]> | undefined;
  /** sshd settings, written to /etc/ssh/sshd_config.d/50-opdbus.conf. */
  sshd?: SshdSettings | undefined;
}

/** The checkpoint: the exact bytes of each authorized_keys file and of the drop-in a plan touches. */
export type SshCheckpoint = {
  keyFiles: Array<{
    user: string;
    sshDir: string;
    content: string | null;
    sshDirExisted: boolean;
    mode: number;
    uid: number;
    gid: number;
  }>;
  dropin?: { content: string | null } | undefined;
} & { [key: string]: JsonValue };

const keySchema = lazySchema(() =>
  z.string().superRefine((value, ctx) => {
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(value.trim());
    if (m === null || /[\n\r]/.test(value)) {
      ctx.addIssue({
        code: 'custom',
        message: 'a public key "TYPE BASE64 [COMMENT]" on one line, as in a .pub file',
      });
      return;
    }
    const problem = blobProblem(m[1]!, m[2]!);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `not a public key: ${problem}` });
  }),
);

const authorizedKeySchema: z.ZodType<AuthorizedKey> = lazySchema(() =>
  z.strictObject({
    key: keySchema.describe('The public key, "TYPE BASE64 [COMMENT]". Identified by its SHA256 fingerprint.'),
    options: z
      .array(
        z.string().superRefine((option, ctx) => {
          const problem = optionProblem(option);
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .optional()
      .describe('Key options (sshd(8)): from="…", command="…", no-pty, restrict, …'),
    state: z.enum(['present', 'absent']).optional().describe('"absent" removes the key (default present).'),
  }),
);

const userKeysSchema = lazySchema(() =>
  z.array(authorizedKeySchema).superRefine((keys, ctx) => {
    const seen = new Map<string, number>();
    for (const [i, k] of keys.entries()) {
      const blob = /^\S+\s+(\S+)/.exec(k.key.trim())?.[1];
      if (blob === undefined) continue;
      const fp = fingerprint(blob);
      const first = seen.get(fp);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: `the same key as entry ${first} (${fp}); list a key once`,
        });
      else seen.set(fp, i);
    }
  }),
);

/** The zod schema of the `ssh` section. */
export const sshSchema: z.ZodType<SshSection> = lazySchema(() =>
  z
    .strictObject({
      authorizedKeys: z
        .record(z.string().regex(/^[a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?$/, 'a user name'), userKeysSchema)
        .optional()
        .describe('Authorized keys by user (~/.ssh/authorized_keys); keys not listed are left alone.'),
      sshd: sshdSchema
        .optional()
        .describe(
          `sshd settings, written to ${SSHD_DROPIN}; unknown keywords are refused; null removes one.`,
        ),
    })
    .describe('SSH: authorized keys per user, and sshd settings through a drop-in file.'),
);

/** Options of {@link createSshPlugin}. */
export interface SshPluginOptions {
  /** Check a new drop-in with the target's `sshd -t` when it has one (default true). */
  sshdCheck?: boolean;
}

interface ResolvedUser {
  home: string;
  uid: number;
  gid: number;
}

/**
 * Where `path` (absolute, inside the target) is on this side, resolved inside `root` as a chroot
 * would (`RESOLVE_IN_ROOT`): a symbolic link planted in the target cannot lead to the host's files.
 */
function pathInRoot(root: string, path: string): string {
  if (root === '/') return path;
  using confined = ConfinedRoot.open(root, { mode: 'in-root' });
  return confined.hostPath(path);
}

async function resolveUser(root: string, user: string): Promise<ResolvedUser | undefined> {
  const text = await readFile(pathInRoot(root, '/etc/passwd'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 7) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  }
  return undefined;
}

function normalizeKey(key: string): string {
  return key.trim().split(/\s+/).join(' ');
}

function entryOf(line: ReturnType<typeof parseKeyLine> & object): AuthorizedKey {
  const entry: AuthorizedKey = { key: renderKeyLine({ ...line, options: [] }) };
  if (line.options.length > 0) entry.options = line.options;
  return entry;
}

function fingerprintOf(key: string): string {
  return fingerprint(/^\S+\s+(\S+)/.exec(key.trim())![1]!);
}

/** Write `text` to `path` atomically (temporary file in the same directory, fsync, rename). */
async function writeAtomic(
  path: string,
  text: string,
  mode: number,
  uid: number,
  gid: number,
): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.opdbus-tmp`);
  try {
    const fh = await open(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      await fh.writeFile(text);
      await fh.chown(uid, gid);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new OpdbusError('OPDBUS_ERR_SSH_WRITE', `Cannot write ${path}: ${(err as Error).message}.`, {
      data: { file: path },
      cause: err,
    });
  }
}

function unsafe(path: string, message: string): OpdbusError {
  return new OpdbusError('OPDBUS_ERR_SSH_UNSAFE_PATH', message, { data: { file: path } });
}

/** Read a user's authorized_keys (refusing links), or null when there is none. */
async function readKeyFile(
  file: string,
): Promise<{ content: string; mode: number; uid: number; gid: number } | null> {
  const st = await lstat(file).catch(() => undefined);
  if (st === undefined) return null;
  if (!st.isFile())
    throw unsafe(
      file,
      `${file} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; op-dbus writes authorized_keys only as a regular file (sshd refuses links with StrictModes). Replace it with a file.`,
    );
  return { content: await readFile(file, 'utf8'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

/**
 * Run the target's `sshd -t` on a temporary configuration holding the drop-in and a throwaway
 * host key (inside a chroot when the target is another root). Undefined when it accepts it, else
 * sshd's message.
 */
async function sshdTest(root: string, dropin: string): Promise<string | undefined> {
  const realRoot = realpathSync(root);
  const tmpBase = pathInRoot(root, '/tmp');
  await mkdir(tmpBase, { recursive: true, mode: 0o1777 });
  const dir = await mkdtemp(join(tmpBase, 'opdbus-sshd-'));
  const inside = (p: string): string =>
    root === '/' ? p : `/${p.slice(realRoot.length).replace(/^\/+/, '')}`;
  const wrap = (cmd: string, args: string[]): [string, string[]] =>
    root === '/' ? [cmd, args] : ['chroot', [root, cmd, ...args]];
  try {
    const key = join(dir, 'hostkey');
    const keygen = await run(
      ...wrap('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', inside(key)]),
    );
    if (keygen.code !== 0) return `ssh-keygen failed: ${keygen.stderr.trim()}`;
    await writeFile(join(dir, 'sshd_config'), `${dropin}HostKey ${inside(key)}\n`);
    await mkdir(pathInRoot(root, '/run/sshd'), { recursive: true, mode: 0o755 });
    const result = await run(...wrap('/usr/sbin/sshd', ['-t', '-f', inside(join(dir, 'sshd_config'))]));
    return result.code === 0 ? undefined : result.stderr.trim() || `sshd -t exited ${result.code}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The pure diff of the `ssh` section. */
export function diffSsh(desired: SshSection, observed: SshSection): ChangeSpec<SshValue>[] {
  const changes: ChangeSpec<SshValue>[] = [];
  for (const [user, keys] of Object.entries(desired.authorizedKeys ?? {})) {
    const have = new Map((observed.authorizedKeys?.[user] ?? []).map((k) => [fingerprintOf(k.key), k]));
    for (const want of keys) {
      const fp = fingerprintOf(want.key);
      const current = have.get(fp);
      const resource = `key/${user}/${fp}`;
      const dependsOn = [{ plugin: 'users', resource: `user/${user}` }];
      const before: AuthorizedKeyValue | null =
        current === undefined ? null : { key: normalizeKey(current.key), options: current.options ?? [] };
      if (want.state === 'absent') {
        if (current !== undefined)
          changes.push({
            resource,
            op: 'delete',
            before,
            after: null,
            summary: `remove key ${fp} of ${user}`,
          });
        continue;
      }
      const after: AuthorizedKeyValue = { key: normalizeKey(want.key), options: want.options ?? [] };
      if (current === undefined)
        changes.push({
          resource,
          op: 'create',
          before,
          after,
          dependsOn,
          summary: `add key ${fp} to ${user}`,
        });
      else if (JSON.stringify(before) !== JSON.stringify(after))
        changes.push({
          resource,
          op: 'update',
          before,
          after,
          dependsOn,
          summary: `change options or comment of key ${fp} of ${user}`,
        });
    }
  }
  for (const [keyword, value] of Object.entries(desired.sshd ?? {})) {
    if (value === undefined) continue;
    const current = observed.sshd?.[keyword as keyof SshdSettings] ?? null;
    const want = value ?? null;
    if (JSON.stringify(current) === JSON.stringify(want)) continue;
    changes.push({
      resource: `sshd/${keyword}`,
      op: current === null ? 'create' : want === null ? 'delete' : 'update',
      before: current,
      after: want,
      summary: `sshd ${keyword} ${JSON.stringify(current)} → ${JSON.stringify(want)}`,
    });
  }
  return changes;
}

/**
 * Create the ssh plugin: authorized keys per user (managed entries identified by SHA256
 * fingerprint; other lines left alone; ~/.ssh 0700 and authorized_keys 0600, owned by the user,
 * as sshd's StrictModes wants), and sshd settings through {@link SSHD_DROPIN}, re-parsed and
 * checked with the target's `sshd -t` (when it has sshd) before it is put in place.
 */
export function createSshPlugin(options: SshPluginOptions = {}): SshPlugin {
  const rootOf = (ctx: PluginContext): string => ctx.target.root ?? '/';
  const dropinPath = (root: string): string => pathInRoot(root, SSHD_DROPIN);

  const readSettings = async (root: string, ctx: PluginContext): Promise<SshdSettings> => {
    const text = await readFile(dropinPath(root), 'utf8').catch(() => '');
    const { settings, problems } = parseDropin(text);
    for (const p of problems)
      ctx.logger.warn({ file: dropinPath(root), ...p }, 'line of the sshd drop-in ignored');
    return settings;
  };

  const keysOf = async (root: string, user: string): Promise<AuthorizedKey[] | undefined> => {
    const u = await resolveUser(root, user);
    if (u === undefined) return undefined;
    const file = await readKeyFile(join(pathInRoot(root, u.home), '.ssh', 'authorized_keys')).catch(
      () => null,
    );
    if (file === null) return undefined;
    const out: AuthorizedKey[] = [];
    for (const line of file.content.split('\n')) {
      const parsed = parseKeyLine(line);
      if (parsed !== undefined) out.push(entryOf(parsed));
    }
    return out;
  };

  const applyKey = async (change: SshChange, ctx: PluginContext): Promise<void> => {
    const [, user, fp] = /^key\/([^/]+)\/(.+)$/.exec(change.resource)!;
    const path = formatPath(['plugins', 'ssh', 'authorizedKeys', user!]);
    const root = rootOf(ctx);
    const u = await resolveUser(root, user!);
    if (u === undefined)
      throw new OpdbusError(
        'OPDBUS_ERR_SSH_UNKNOWN_USER',
        `${path}: no user ${user} in ${join(root, 'etc', 'passwd')}; create it under users.users in the same document.`,
        { data: { path, user: user! } },
      );
    const home = pathInRoot(root, u.home);
    const homeStat = await stat(home).catch(() => undefined);
    if (homeStat === undefined || !homeStat.isDirectory())
      throw unsafe(
        home,
        `${path}: the home directory ${home} of ${user} does not exist; set createHome: true on the user.`,
      );
    if ((homeStat.mode & 0o022) !== 0)
      throw unsafe(
        home,
        `${path}: ${home} is writable by group or others (mode ${(homeStat.mode & 0o777).toString(8)}); sshd (StrictModes) would ignore the keys. Make it writable only by ${user}.`,
      );
    const sshDir = join(home, '.ssh');
    const dirStat = await lstat(sshDir).catch(() => undefined);
    if (dirStat === undefined) {
      await mkdir(sshDir, { mode: 0o700 });
      await chown(sshDir, u.uid, u.gid);
    } else if (!dirStat.isDirectory())
      throw unsafe(
        sshDir,
        `${path}: ${sshDir} is ${dirStat.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; op-dbus writes keys only into a real ~/.ssh directory. Replace it.`,
      );
    const file = join(sshDir, 'authorized_keys');
    const current = await readKeyFile(file);
    const lines =
      current === null || current.content === '' ? [] : current.content.replace(/\n$/, '').split('\n');
    const index = lines.findIndex((l) => parseKeyLine(l)?.fingerprint === fp);
    let next: string[];
    if (change.after === null) next = lines.filter((l) => parseKeyLine(l)?.fingerprint !== fp);
    else {
      const after = change.after as AuthorizedKeyValue;
      const parsed = parseKeyLine(after.key)!;
      const line = renderKeyLine({ ...parsed, options: after.options });
      next = [...lines];
      if (index >= 0) next[index] = line;
      else next.push(line);
    }
    const text = next.length === 0 ? '' : `${next.join('\n')}\n`;
    if (current !== null && text === current.content) return;
    await writeAtomic(file, text, (current?.mode ?? 0o600) & ~0o022, u.uid, u.gid);
  };

  const applySshd = async (changes: readonly SshChange[], ctx: PluginContext): Promise<void> => {
    const root = rootOf(ctx);
    const settings: Record<string, SshdValue> = { ...(await readSettings(root, ctx)) } as Record<
      string,
      SshdValue
    >;
    for (const change of changes) {
      const keyword = change.resource.slice('sshd/'.length);
      if (change.after === null) delete settings[keyword];
      else settings[keyword] = change.after as SshdValue;
    }
    const file = dropinPath(root);
    const path = formatPath(['plugins', 'ssh', 'sshd']);
    if (Object.keys(settings).length === 0) {
      await unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return;
    }
    const text = renderDropin(settings);
    // Read our own output back as sshd would: it must give exactly the settings declared.
    const reparsed = parseDropin(text);
    const sorted = (s: object): string =>
      JSON.stringify(Object.fromEntries(Object.entries(s).sort(([a], [b]) => a.localeCompare(b))));
    if (reparsed.problems.length > 0 || sorted(reparsed.settings) !== sorted(settings))
      throw new OpdbusError(
        'OPDBUS_ERR_SSH_INVALID_CONFIG',
        `${path}: the rendered drop-in does not read back as the declared settings (${reparsed.problems.map((p) => p.reason).join('; ') || 'values differ'}).`,
        { data: { path, file } },
      );
    const sshdBinary = await stat(join(root, 'usr', 'sbin', 'sshd')).catch(() => undefined);
    if (options.sshdCheck !== false && sshdBinary?.isFile() === true) {
      const problem = await sshdTest(root, text);
      if (problem !== undefined)
        throw new OpdbusError(
          'OPDBUS_ERR_SSH_INVALID_CONFIG',
          `${path}: sshd -t refused the drop-in: ${problem}`,
          {
            data: { path, file, sshd: problem },
          },
        );
    }
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeAtomic(file, text, 0o644, 0, 0);
  };

  return definePlugin<SshSection, SshCheckpoint, SshValue>({
    name: 'ssh',
    version: packageVersion(import.meta.url),
    description: `SSH authorized keys per user (by fingerprint) and sshd settings in ${SSHD_DROPIN}.`,
    schema: sshSchema,

    async probe(ctx) {
      const root = rootOf(ctx);
      const passwd = await stat(join(root, 'etc', 'passwd')).catch(() => undefined);
      if (passwd === undefined)
        return { available: false, reason: `no ${join(root, 'etc', 'passwd')} (check --root)` };
      const sshd = await stat(join(root, 'usr', 'sbin', 'sshd')).catch(() => undefined);
      return {
        available: true,
        detail:
          sshd === undefined ? 'no sshd here: drop-in checked by parsing only' : 'sshd -t checks the drop-in',
      };
    },

    async query(ctx, queryOptions) {
      const root = rootOf(ctx);
      const scope = queryOptions?.scope;
      const out: SshSection = {};
      if (scope === undefined) {
        const text = await readFile(pathInRoot(root, '/etc/passwd'), 'utf8').catch(() => '');
        const keys: Record<string, AuthorizedKey[]> = {};
        for (const line of text.split('\n')) {
          const name = line.split(':')[0];
          if (
            name === undefined ||
            name === '' ||
            name.startsWith('#') ||
            name.startsWith('+') ||
            name.startsWith('-')
          )
            continue;
          const list = await keysOf(root, name);
          if (list !== undefined && list.length > 0) keys[name] = list;
        }
        out.authorizedKeys = keys;
        out.sshd = await readSettings(root, ctx);
        return out;
      }
      if (scope.authorizedKeys !== undefined) {
        out.authorizedKeys = {};
        for (const [user, wanted] of Object.entries(scope.authorizedKeys)) {
          const fps = new Set(wanted.map((k) => fingerprintOf(k.key)));
          out.authorizedKeys[user] = ((await keysOf(root, user)) ?? []).filter((k) =>
            fps.has(fingerprintOf(k.key)),
          );
        }
      }
      if (scope.sshd !== undefined) {
        const settings = await readSettings(root, ctx);
        out.sshd = {};
        for (const keyword of Object.keys(scope.sshd)) {
          const k = keyword as keyof SshdSettings;
          out.sshd[k] = settings[k] ?? null;
        }
      }
      return out;
    },

    diff: diffSsh,

    async apply(change, ctx) {
      if (change.resource.startsWith('sshd/')) await applySshd([change], ctx);
      else await applyKey(change, ctx);
    },

    async checkpoint(ctx, changes) {
      const root = rootOf(ctx);
      const users = new Set<string>();
      let dropin: SshCheckpoint['dropin'];
      for (const change of changes) {
        if (change.resource.startsWith('sshd/')) {
          dropin ??= { content: await readFile(dropinPath(root), 'utf8').catch(() => null) };
        } else users.add(/^key\/([^/]+)\//.exec(change.resource)![1]!);
      }
      const keyFiles: SshCheckpoint['keyFiles'] = [];
      for (const user of users) {
        const u = await resolveUser(root, user);
        // A user the same plan creates (users plugin) has nothing to record yet: its home is recorded as it is now.
        const home = u?.home ?? `/home/${user}`;
        const sshDir = join(pathInRoot(root, home), '.ssh');
        const dirStat = await lstat(sshDir).catch(() => undefined);
        const fileStat = await lstat(join(sshDir, 'authorized_keys')).catch(() => undefined);
        // A link or other non-file there is never written through (apply refuses it): nothing to record.
        if (
          (dirStat !== undefined && !dirStat.isDirectory()) ||
          (fileStat !== undefined && !fileStat.isFile())
        )
          continue;
        const file = await readKeyFile(join(sshDir, 'authorized_keys'));
        keyFiles.push({
          user,
          sshDir,
          content: file?.content ?? null,
          sshDirExisted: dirStat !== undefined,
          mode: file?.mode ?? 0o600,
          uid: file?.uid ?? u?.uid ?? 0,
          gid: file?.gid ?? u?.gid ?? 0,
        });
      }
      return dropin === undefined ? { keyFiles } : { keyFiles, dropin };
    },

    async restore(token, ctx) {
      const root = rootOf(ctx);
      for (const k of token.keyFiles) {
        const file = join(k.sshDir, 'authorized_keys');
        const st = await lstat(k.sshDir).catch(() => undefined);
        if (st !== undefined && !st.isDirectory()) continue; // not ours: never written through
        if (k.content === null) {
          await unlink(file).catch(() => undefined);
          if (!k.sshDirExisted) await rmdir(k.sshDir).catch(() => undefined);
        } else {
          if (st === undefined) await mkdir(k.sshDir, { recursive: true, mode: 0o700 });
          await writeAtomic(file, k.content, k.mode, k.uid, k.gid);
        }
      }
      if (token.dropin !== undefined) {
        const file = dropinPath(root);
        if (token.dropin.content === null) await unlink(file).catch(() => undefined);
        else {
          await mkdir(dirname(file), { recursive: true, mode: 0o755 });
          await writeAtomic(file, token.dropin.content, 0o644, 0, 0);
        }
      }
    },

    async watch(ctx, onEvent) {
      const root = rootOf(ctx);
      const watchers: FSWatcher[] = [];
      const add = (dir: string, resource: (file: string) => string | undefined): void => {
        try {
          const w = watchFs(dir, { persistent: false }, (_e, name) => {
            const r = resource(name?.toString() ?? '');
            if (r !== undefined)
              onEvent({ plugin: 'ssh', resource: r, detail: `${join(dir, name?.toString() ?? '')} changed` });
          });
          w.on('error', (err) => ctx.logger.warn({ err, dir }, 'ssh watch failed'));
          watchers.push(w);
        } catch (err) {
          ctx.logger.debug({ err, dir }, 'not watched (missing)');
        }
      };
      // The drop-in's directory, or (nothing is created to watch it) its parent until it exists.
      const dropinDir = dirname(dropinPath(root));
      if ((await stat(dropinDir).catch(() => undefined))?.isDirectory() === true)
        add(dropinDir, (f) => (f === '50-opdbus.conf' ? 'sshd' : undefined));
      else add(dirname(dropinDir), (f) => (f === 'sshd_config.d' ? 'sshd' : undefined));
      const text = await readFile(pathInRoot(root, '/etc/passwd'), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        const f = line.split(':');
        if (f.length < 7 || f[5] === undefined || !f[5].startsWith('/')) continue;
        const sshDir = join(pathInRoot(root, f[5]), '.ssh');
        if ((await lstat(sshDir).catch(() => undefined))?.isDirectory() === true)
          add(sshDir, (name) => (name === 'authorized_keys' ? `key/${f[0]}` : undefined));
      }
      return () => {
        for (const w of watchers) w.close();
      };
    },
  });
}

/** The ssh plugin with default options. */
export const sshPlugin: SshPlugin = createSshPlugin();

/** The keywords the `sshd` settings accept. */
export const sshdKeywordNames: readonly string[] = Object.keys(sshdKeywords);
