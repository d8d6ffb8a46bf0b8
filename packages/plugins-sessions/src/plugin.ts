import { posix } from 'node:path';
import {
  OpdbusError,
  definePlugin,
  lazySchema,
  quoteInput,
  packageVersion,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import {
  Login1Manager,
  Login1Seat,
  Login1Session,
  Login1User,
  connectTarget,
  probeService,
  type DbusConnection,
  type Subscription,
} from '@opdbus/dbus';
import { ConfinedRoot } from '@opdbus/netlink';
import { z } from 'zod';

const LOGIND = 'org.freedesktop.login1';

/** What selects sessions for the termination policy: every given field must match. */
export const sessionSelectorSchema = lazySchema(() =>
  z
    .strictObject({
      user: z.string().optional().describe('User name.'),
      uid: z.number().int().min(0).optional().describe('User id.'),
      class: z
        .enum(['user', 'greeter', 'lock-screen', 'background', 'manager', 'manager-early'])
        .optional()
        .describe('Session class.'),
      type: z
        .enum(['unspecified', 'tty', 'x11', 'wayland', 'mir', 'web'])
        .optional()
        .describe('Session type.'),
      service: z.string().optional().describe('PAM service that opened it, e.g. sshd.'),
      remote: z.boolean().optional().describe('Remote (e.g. SSH) or local.'),
      remoteHost: z.string().optional().describe('Remote host it comes from.'),
      tty: z.string().optional().describe('Its TTY, e.g. pts/0.'),
      seat: z.string().optional().describe('Its seat, e.g. seat0.'),
    })
    .describe('Sessions to select: every field given must match.'),
);

/** A session selector. */
export type SessionSelector = z.infer<typeof sessionSelectorSchema>;

const sessionInfoSchema = lazySchema(() =>
  z.strictObject({
    user: z.string(),
    uid: z.number(),
    class: z.string(),
    type: z.string(),
    service: z.string(),
    state: z.string(),
    active: z.boolean(),
    remote: z.boolean(),
    remoteHost: z.string().optional(),
    tty: z.string().optional(),
    seat: z.string().optional(),
  }),
);
/** A session as observed. */
export type SessionInfo = z.infer<typeof sessionInfoSchema>;

/** The `sessions` section. */
export interface SessionsSection {
  linger?: Record<string, boolean> | undefined;
  terminate?: { mode?: 'observe' | 'enforce' | undefined; match: SessionSelector[] } | undefined;
  sessions?: Record<string, SessionInfo> | undefined;
  users?: Record<string, { uid: number; state: string; linger: boolean; sessions: string[] }> | undefined;
  seats?: Record<string, { activeSession?: string | undefined; sessions: string[] }> | undefined;
}

const readOnly = 'Read-only: reported by query, ignored when applying.';

/** The zod schema of the `sessions` section. */
export const sessionsSchema: z.ZodType<SessionsSection> = lazySchema(() =>
  z
    .strictObject({
      linger: z
        .record(
          z
            .string()
            .max(256)
            .regex(/^[a-z_][a-z0-9_.-]*\$?$|^\d+$/, 'a user name or a numeric uid'),
          z.boolean(),
        )
        .optional()
        .describe(
          "Lingering by user: the user's service manager runs without a login (loginctl enable-linger).",
        ),
      terminate: z
        .strictObject({
          mode: z
            .enum(['observe', 'enforce'])
            .optional()
            .describe(
              'observe (default): nothing is terminated; enforce: matching sessions are terminated (needs --force: it cannot be undone).',
            ),
          match: z.array(sessionSelectorSchema).min(1).describe('Sessions matching any of these selectors.'),
        })
        .optional()
        .describe('A policy that terminates sessions matching a selector. Observe-only by default.'),
      sessions: z.record(z.string(), sessionInfoSchema).optional().describe(`Sessions by id. ${readOnly}`),
      users: z
        .record(
          z.string(),
          z.strictObject({
            uid: z.number(),
            state: z.string(),
            linger: z.boolean(),
            sessions: z.array(z.string()),
          }),
        )
        .optional()
        .describe(`Logged-in and lingering users by name. ${readOnly}`),
      seats: z
        .record(
          z.string(),
          z.strictObject({ activeSession: z.string().optional(), sessions: z.array(z.string()) }),
        )
        .optional()
        .describe(`Seats by id. ${readOnly}`),
    })
    .describe(
      'Login sessions, users and seats (systemd-logind, org.freedesktop.login1): lingering and a termination policy.',
    ),
);

/** The checkpoint: linger as it was for the users a plan changes (sessions cannot be restored). */
export type SessionsCheckpoint = { linger: Record<string, boolean>; terminated: string[] };

/**
 * The values of the sessions plugin's changes: whether a user lingers (`linger/USER`), or the
 * session a change terminates, as it was observed (`session/ID`, `before` only).
 */
export type SessionsValue = boolean | SessionInfo;

/** A change of the sessions plugin. */
export type SessionsChange = Change<SessionsValue>;

/** The sessions plugin, typed: its section, checkpoint and change values. */
export type SessionsPlugin = Plugin<SessionsSection, SessionsCheckpoint, SessionsValue>;

/** Whether a session matches a selector. */
export function matchesSelector(session: SessionInfo, selector: SessionSelector): boolean {
  return (
    (selector.user === undefined || selector.user === session.user) &&
    (selector.uid === undefined || selector.uid === session.uid) &&
    (selector.class === undefined || selector.class === session.class) &&
    (selector.type === undefined || selector.type === session.type) &&
    (selector.service === undefined || selector.service === session.service) &&
    (selector.remote === undefined || selector.remote === session.remote) &&
    (selector.remoteHost === undefined || selector.remoteHost === session.remoteHost) &&
    (selector.tty === undefined || selector.tty === session.tty) &&
    (selector.seat === undefined || selector.seat === session.seat)
  );
}

async function listSessions(bus: DbusConnection): Promise<Record<string, SessionInfo>> {
  const out: Record<string, SessionInfo> = {};
  for (const [id, , , , path] of await new Login1Manager(bus).listSessions()) {
    try {
      const p = await new Login1Session(bus, { path }).getAll();
      const info: SessionInfo = {
        user: p.Name,
        uid: p.User[0],
        class: p.Class,
        type: p.Type,
        service: p.Service,
        state: p.State,
        active: p.Active,
        remote: p.Remote,
      };
      if (p.RemoteHost !== '') info.remoteHost = p.RemoteHost;
      if (p.TTY !== '') info.tty = p.TTY;
      if (p.Seat[0] !== '') info.seat = p.Seat[0];
      out[id] = info;
    } catch (err) {
      // A session that closed while we listed: gone, not an error.
      if ((err as OpdbusError).code !== 'OPDBUS_ERR_DBUS_CALL') throw err;
    }
  }
  return out;
}

/**
 * The sessions plugin: observes logind's sessions, users and seats; manages lingering per user;
 * and carries a termination policy — sessions matching a selector are terminated when the policy
 * is `enforce` (such a change is flagged risky: it cannot be undone and may cut the operator's
 * own session, so apply needs --force or commit-confirmed). `watch` follows logind's
 * SessionNew/SessionRemoved/UserNew/UserRemoved/SeatNew/SeatRemoved signals.
 *
 * User names in `linger` are resolved with the target root's /etc/passwd (checked to belong to
 * the targeted logind); numeric uids need no lookup.
 */
export function createSessionsPlugin(options: { terminateTimeoutMs?: number } = {}): SessionsPlugin {
  const terminateTimeoutMs = options.terminateTimeoutMs ?? 30_000;
  const uidOf = async (ctx: PluginContext, bus: DbusConnection, user: string): Promise<number> => {
    if (/^\d+$/.test(user)) return Number(user);
    const root = ctx.target.root ?? '/';
    // The target's files are read inside its root, as under chroot(2): a link in a container's
    // tree cannot make op-dbus read the host's files.
    let confined: ConfinedRoot | undefined;
    const read = async (path: string): Promise<string | null> => {
      try {
        confined ??= ConfinedRoot.open(root, { mode: 'in-root', label: `the target root ${root}` });
        return await confined.readFile(path, 16 * 1024 * 1024);
      } catch {
        return null;
      }
    };
    try {
      const [local, remote] = await Promise.all([
        read('/etc/machine-id').then((t) => (t ?? '').trim()),
        bus.peerMachineId(LOGIND, '/org/freedesktop/login1'),
      ]);
      if (local !== remote) {
        throw new OpdbusError(
          'OPDBUS_ERR_SESSIONS_ROOT',
          `Cannot resolve user ${quoteInput(user)}: ${posix.join(root, 'etc/passwd')} belongs to another system than the logind at ${bus.address}. Pass the target's root with --root, or use the uid.`,
          { data: { user: user.slice(0, 256), root } },
        );
      }
      const passwd = (await read('/etc/passwd')) ?? '';
      for (const line of passwd.split('\n')) {
        const [name, , uid] = line.split(':');
        if (name === user && uid !== undefined && /^\d+$/.test(uid)) return Number(uid);
      }
    } finally {
      confined?.close();
    }
    throw new OpdbusError(
      'OPDBUS_ERR_SESSIONS_UNKNOWN_USER',
      `plugins.sessions.linger.${user}: there is no user ${quoteInput(user)} in ${posix.join(root, 'etc/passwd')}.`,
      {
        data: { user: user.slice(0, 256), path: `plugins.sessions.linger.${user}` },
      },
    );
  };

  const lingering = async (
    bus: DbusConnection,
  ): Promise<Map<number, { name: string; linger: boolean; state: string; path: string }>> => {
    const out = new Map<number, { name: string; linger: boolean; state: string; path: string }>();
    for (const [uid, name, path] of await new Login1Manager(bus).listUsers()) {
      try {
        const p = await new Login1User(bus, { path }).getAll();
        out.set(uid, { name, linger: p.Linger, state: p.State, path });
      } catch (err) {
        if ((err as OpdbusError).code !== 'OPDBUS_ERR_DBUS_CALL') throw err;
      }
    }
    return out;
  };

  const setLinger = async (bus: DbusConnection, uid: number, enable: boolean): Promise<void> => {
    try {
      await new Login1Manager(bus).setUserLinger(uid, enable, false);
    } catch (err) {
      throw new OpdbusError(
        'OPDBUS_ERR_SESSIONS_LOGIND',
        `logind refused to ${enable ? 'enable' : 'disable'} lingering for uid ${uid}: ${(err as Error).message}`,
        {
          data: { uid, dbusError: (err as OpdbusError).data?.dbusError },
          cause: err,
        },
      );
    }
  };

  return definePlugin<SessionsSection, SessionsCheckpoint, SessionsValue>({
    name: 'sessions',
    version: packageVersion(import.meta.url),
    description:
      'Login sessions, users and seats (systemd-logind): lingering, and a session termination policy (observe-only by default).',
    schema: sessionsSchema,

    probe: (ctx) => probeService(ctx, 'systemd-logind', (bus) => new Login1Manager(bus).listSeats()),

    async query(ctx, options) {
      await using bus = await connectTarget(ctx);
      const scope = options?.scope;
      const users = await lingering(bus);
      const out: SessionsSection = {};
      if (scope === undefined) {
        const linger: Record<string, boolean> = {};
        for (const u of users.values()) linger[u.name] = u.linger;
        out.linger = linger;
      } else if (scope.linger !== undefined) {
        const linger: Record<string, boolean> = {};
        for (const user of Object.keys(scope.linger)) {
          const uid = await uidOf(ctx, bus, user);
          linger[user] = users.get(uid)?.linger ?? false;
        }
        out.linger = linger;
      }
      if (scope === undefined || scope.terminate !== undefined) {
        out.sessions = await listSessions(bus);
      }
      if (scope === undefined) {
        const byUser: Record<string, { uid: number; state: string; linger: boolean; sessions: string[] }> =
          {};
        for (const [uid, u] of users)
          byUser[u.name] = {
            uid,
            state: u.state,
            linger: u.linger,
            sessions: Object.entries(out.sessions ?? {})
              .filter(([, s]) => s.uid === uid)
              .map(([id]) => id),
          };
        out.users = byUser;
        const seats: Record<string, { activeSession?: string; sessions: string[] }> = {};
        for (const [id, path] of await new Login1Manager(bus).listSeats()) {
          const p = await new Login1Seat(bus, { path }).getAll();
          seats[id] = {
            ...(p.ActiveSession[0] === '' ? {} : { activeSession: p.ActiveSession[0] }),
            sessions: p.Sessions.map(([sid]) => sid),
          };
        }
        out.seats = seats;
      }
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec<SessionsValue>[] = [];
      for (const [user, want] of Object.entries(desired.linger ?? {})) {
        const have = observed.linger?.[user] ?? false;
        if (have === want) continue;
        changes.push({
          resource: `linger/${user}`,
          op: 'update',
          before: have,
          after: want,
          summary: `${want ? 'enable' : 'disable'} lingering for ${user}`,
        });
      }
      if (desired.terminate !== undefined && desired.terminate.mode === 'enforce') {
        for (const [id, session] of Object.entries(observed.sessions ?? {})) {
          // A closing session is already on its way out.
          if (session.state === 'closing') continue;
          if (!desired.terminate.match.some((selector) => matchesSelector(session, selector))) continue;
          changes.push({
            resource: `session/${id}`,
            op: 'delete',
            before: session,
            after: null,
            summary: `terminate session ${id} of ${session.user} (${session.service}${session.remote ? `, from ${session.remoteHost ?? 'remote'}` : ''})`,
            risk: {
              reason: `terminating session ${id} cannot be undone and ends everything ${session.user} runs in it`,
            },
          });
        }
      }
      return changes;
    },

    async apply(change, ctx) {
      await using bus = await connectTarget(ctx);
      const [kind, ...rest] = change.resource.split('/');
      const key = rest.join('/');
      if (kind === 'linger') {
        await setLinger(bus, await uidOf(ctx, bus, key), change.after === true);
        return;
      }
      // TerminateSession returns once logind has asked systemd to stop the session's scope: wait
      // for SessionRemoved (subscribed first), with a deadline, rather than for time to pass.
      const manager = new Login1Manager(bus);
      let removed!: () => void;
      const gone = new Promise<void>((resolve) => (removed = resolve));
      const subscription = await manager.onSessionRemoved((id) => {
        if (id === key) removed();
      });
      try {
        try {
          await manager.terminateSession(key);
        } catch (err) {
          if ((err as OpdbusError).data?.dbusError === 'org.freedesktop.login1.NoSuchSession') return;
          throw new OpdbusError(
            'OPDBUS_ERR_SESSIONS_LOGIND',
            `logind refused to terminate session ${key}: ${(err as Error).message}`,
            { data: { session: key, dbusError: (err as OpdbusError).data?.dbusError }, cause: err },
          );
        }
        if (!(await manager.listSessions()).some(([id]) => id === key)) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          gone,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new OpdbusError(
                    'OPDBUS_ERR_SESSIONS_LOGIND',
                    `Session ${key} was told to terminate but still exists after ${terminateTimeoutMs} ms (processes that ignore SIGTERM?).`,
                    { data: { session: key } },
                  ),
                ),
              terminateTimeoutMs,
            );
          }),
        ]).finally(() => clearTimeout(timer));
      } finally {
        await subscription.unsubscribe();
      }
    },

    async checkpoint(ctx, changes) {
      await using bus = await connectTarget(ctx);
      const users = await lingering(bus);
      const token: SessionsCheckpoint = { linger: {}, terminated: [] };
      for (const change of changes) {
        const [kind, ...rest] = change.resource.split('/');
        const key = rest.join('/');
        if (kind === 'linger') token.linger[key] = users.get(await uidOf(ctx, bus, key))?.linger ?? false;
        else token.terminated.push(key);
      }
      return token;
    },

    async restore(token, ctx) {
      await using bus = await connectTarget(ctx);
      const users = await lingering(bus);
      for (const [user, linger] of Object.entries(token.linger)) {
        const uid = await uidOf(ctx, bus, user);
        if ((users.get(uid)?.linger ?? false) !== linger) await setLinger(bus, uid, linger);
      }
      // A terminated session cannot be brought back; the engine's verification reports it.
      if (token.terminated.length > 0)
        ctx.logger.warn({ sessions: token.terminated }, 'terminated sessions cannot be restored');
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const bus = await connectTarget(ctx);
      const manager = new Login1Manager(bus);
      const emit = (resource: string, detail: string, raw: JsonValue): void =>
        onEvent({ plugin: 'sessions', resource, detail, raw });
      const subscriptions: Subscription[] = [
        await manager.onSessionNew((id, path) =>
          emit(`session/${id}`, `session ${id} opened`, { signal: 'SessionNew', id, path }),
        ),
        await manager.onSessionRemoved((id, path) =>
          emit(`session/${id}`, `session ${id} closed`, { signal: 'SessionRemoved', id, path }),
        ),
        await manager.onUserNew((uid, path) =>
          emit(`user/${uid}`, `user ${uid} appeared (logged in or lingering)`, {
            signal: 'UserNew',
            uid,
            path,
          }),
        ),
        await manager.onUserRemoved((uid, path) =>
          emit(`user/${uid}`, `user ${uid} is gone (no session, not lingering)`, {
            signal: 'UserRemoved',
            uid,
            path,
          }),
        ),
        await manager.onSeatNew((id, path) =>
          emit(`seat/${id}`, `seat ${id} appeared`, { signal: 'SeatNew', id, path }),
        ),
        await manager.onSeatRemoved((id, path) =>
          emit(`seat/${id}`, `seat ${id} removed`, { signal: 'SeatRemoved', id, path }),
        ),
      ];
      return async () => {
        for (const s of subscriptions) await s.unsubscribe();
        await bus.close();
      };
    },
  });
}

/** The sessions plugin. */
export const sessionsPlugin: SessionsPlugin = createSessionsPlugin();
