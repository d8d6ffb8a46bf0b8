import { basename, posix } from 'node:path';
import {
  OpdbusError,
  canonicalJson,
  definePlugin,
  packageVersion,
  type Change,
  type ChangeSpec,
  type JsonValue,
  type Plugin,
  type PluginContext,
  type WatchEvent,
} from '@opdbus/core';
import { Variant, unescapePathElement, type Subscription } from '@opdbus/dbus';
import { MANAGER_PATH, ManagerSession, SYSTEMD_DEST, unitPath, type ManagerOptions } from './manager.js';
import {
  PROPERTIES_DROP_IN,
  canonicalProperty,
  cgroupProperties,
  dbusPropertyName,
  execProperties,
  execPropertyLine,
  execSection,
  fromDbusProperty,
  toSetUnitProperty,
  unitTypeInterface,
  type UnitProperties,
  type UnitPropertyName,
} from './properties.js';
import {
  systemdSchema,
  type ObservedTimer,
  type ObservedUnit,
  type SystemdSection,
  type SystemdValue,
  type TimerTarget,
  type UnitSpec,
  type UnitTarget,
} from './schema.js';
import { MANAGED_MARKER, normalTimer, parseTimer, renderTimer, type TimerSpec } from './timers.js';

/** What `restore` needs for one unit. */
export type UnitCheckpoint = {
  name: string;
  /** Files by path relative to the root: content, or null when absent. */
  files: Record<string, string | null>;
  /** Directories (relative to the root) restored exactly: file → content. */
  dirs: Record<string, Record<string, string>>;
  /** UnitFileState before ('' when the unit had no file). */
  fileState: string;
  active: boolean;
};

/** The systemd plugin's checkpoint. */
export type SystemdCheckpoint = { units: UnitCheckpoint[] };

/** A change of the systemd plugin. */
export type SystemdChange = Change<SystemdValue>;

/** The systemd plugin, typed: its section, checkpoint and change values. */
export type SystemdPlugin = Plugin<SystemdSection, SystemdCheckpoint, SystemdValue>;

/** Options of {@link createSystemdPlugin}. */
export interface SystemdPluginOptions {
  /** Where unit files and drop-ins go, below the target's root (default /etc/systemd/system). */
  unitDir?: string;
  /** How long to wait for a start or stop job (default 90 s). */
  jobTimeoutMs?: number;
}

const ensureNl = (text: string): string => (text.endsWith('\n') ? text : `${text}\n`);
const isActive = (state: string): boolean => state === 'active' || state === 'reloading';

type UnitRow = [string, string, string, string, string, string, string, number, string, string];

/** The unit file of timer NAME's units. */
const timerUnits = (name: string): [string, string] => [`${name}.timer`, `${name}.service`];

/**
 * Create the systemd plugin: units with their unit file content and drop-ins, enabled / masked /
 * active, and resource properties; timers as declared schedules. It talks to the manager over
 * D-Bus (ListUnits, ListUnitFiles, Enable/Disable/Mask/UnmaskUnitFiles, Start/StopUnit waiting on
 * JobRemoved, SetUnitProperties, Reload) and writes files under the target's root (see
 * `ctx.target.root`), after checking that this root belongs to the manager (same machine id).
 */
export function createSystemdPlugin(options: SystemdPluginOptions = {}): SystemdPlugin {
  const managerOptions: ManagerOptions = {
    unitDir: options.unitDir ?? '/etc/systemd/system',
    jobTimeoutMs: options.jobTimeoutMs ?? 90_000,
  };
  const open = (ctx: PluginContext): Promise<ManagerSession> => ManagerSession.open(ctx, managerOptions);

  const fileState = async (s: ManagerSession, name: string): Promise<string> => {
    try {
      return await s.manager.getUnitFileState(name);
    } catch (err) {
      // No unit file (NoSuchUnit, FileNotFound): the unit has no file state.
      if (err instanceof OpdbusError && err.code === 'OPDBUS_ERR_DBUS_CALL') return '';
      throw err;
    }
  };

  const unitRow = async (s: ManagerSession, name: string): Promise<UnitRow> => {
    // A template (foo@.service) is never loaded; ListUnitsByNames refuses it.
    if (/@\.[a-z]+$/.test(name))
      return [name, '', 'template', 'inactive', 'dead', '', unitPath(name), 0, '', '/'];
    const [row] = (await s.manager.listUnitsByNames([name])) as UnitRow[];
    return row ?? [name, '', 'not-found', 'inactive', 'dead', '', unitPath(name), 0, '', '/'];
  };

  const readProperties = async (
    s: ManagerSession,
    name: string,
    declared: UnitProperties,
  ): Promise<Record<string, JsonValue>> => {
    const iface = unitTypeInterface(name);
    const out: Record<string, JsonValue> = {};
    if (iface === undefined) return out;
    const all = await s.bus.getAllProperties(SYSTEMD_DEST, unitPath(name), iface);
    for (const key of Object.keys(declared) as UnitPropertyName[]) {
      const value = all[dbusPropertyName(key)];
      const canonical = value === undefined ? undefined : fromDbusProperty(key, value);
      if (canonical !== undefined) out[key] = canonical;
    }
    return out;
  };

  const observeUnit = async (s: ManagerSession, name: string, spec: UnitSpec): Promise<ObservedUnit> => {
    const row = await unitRow(s, name);
    const state = await fileState(s, name);
    const needFiles = spec.content !== undefined || spec.dropIns !== undefined || spec.state !== undefined;
    if (needFiles) await s.checkRoot();
    const content = needFiles ? await s.readFile(posix.join(s.unitDir, name)) : null;
    if (row[2] === 'not-found' && content === null) return { state: 'absent' };
    const out: ObservedUnit = { state: 'present' };
    out.enabled = state.startsWith('enabled');
    out.masked = state.startsWith('masked');
    out.active = isActive(row[3]);
    if (spec.content !== undefined && content !== null) out.content = content;
    if (spec.dropIns !== undefined) {
      const dropIns: Record<string, string | null> = {};
      for (const file of Object.keys(spec.dropIns))
        dropIns[file] = await s.readFile(posix.join(s.unitDir, `${name}.d`, file));
      out.dropIns = dropIns;
    }
    if (spec.properties !== undefined && row[2] !== 'not-found')
      out.properties = await readProperties(s, name, spec.properties);
    return out;
  };

  const observeTimer = async (s: ManagerSession, name: string): Promise<ObservedTimer> => {
    await s.checkRoot();
    const [timerUnit, serviceUnit] = timerUnits(name);
    const timerText = await s.readFile(posix.join(s.unitDir, timerUnit));
    if (timerText === null) return { state: 'absent' };
    const serviceText = await s.readFile(posix.join(s.unitDir, serviceUnit));
    const row = await unitRow(s, timerUnit);
    return {
      ...parseTimer(timerText, serviceText),
      state: 'present',
      enabled: (await fileState(s, timerUnit)).startsWith('enabled'),
      active: isActive(row[3]),
    };
  };

  const failJob = async (s: ManagerSession, unit: string, what: string, result: string): Promise<never> => {
    let detail = '';
    try {
      const props = await s.bus.getAllProperties(
        SYSTEMD_DEST,
        unitPath(unit),
        'org.freedesktop.systemd1.Unit',
      );
      detail = ` (ActiveState ${String(props.ActiveState)}, SubState ${String(props.SubState)})`;
      if (unitTypeInterface(unit) === 'org.freedesktop.systemd1.Service') {
        detail += `, Result ${String(await s.bus.getProperty(SYSTEMD_DEST, unitPath(unit), 'org.freedesktop.systemd1.Service', 'Result'))}`;
      }
    } catch {
      // The unit is gone: the job result says enough.
    }
    throw new OpdbusError(
      'OPDBUS_ERR_SYSTEMD_JOB_FAILED',
      `Could not ${what} ${unit}: its job ended with "${result}"${detail}. See \`journalctl -u ${unit}\` on the target.`,
      { data: { unit, job: what, result } },
    );
  };

  const setActive = async (s: ManagerSession, unit: string, want: boolean): Promise<void> => {
    const row = await unitRow(s, unit);
    if (isActive(row[3]) === want) return;
    const result = await s.runJob(unit, want ? 'start' : 'stop', () =>
      want ? s.manager.startUnit(unit, 'replace') : s.manager.stopUnit(unit, 'replace'),
    );
    if (result !== 'done') await failJob(s, unit, want ? 'start' : 'stop', result);
  };

  const setEnablement = async (
    s: ManagerSession,
    unit: string,
    spec: { enabled?: boolean | undefined; masked?: boolean | undefined },
  ): Promise<void> => {
    let changed = false;
    let state = await fileState(s, unit);
    if (spec.masked !== undefined && state.startsWith('masked') !== spec.masked) {
      if (spec.masked) await s.manager.maskUnitFiles([unit], false, false);
      else await s.manager.unmaskUnitFiles([unit], false);
      changed = true;
      if (changed) await s.reload();
      state = await fileState(s, unit);
    }
    if (spec.enabled !== undefined && state.startsWith('enabled') !== spec.enabled) {
      if (spec.enabled) {
        const { carriesInstallInfo, changes } = await s.manager.enableUnitFiles([unit], false, false);
        if (!carriesInstallInfo && changes.length === 0) {
          throw new OpdbusError(
            'OPDBUS_ERR_SYSTEMD_NO_INSTALL',
            `${unit} cannot be enabled: it has no [Install] section (its file state is "${state || 'unknown'}"). Add e.g. "[Install]\\nWantedBy=multi-user.target" to its content, or remove \`enabled\`.`,
            { data: { unit, path: `plugins.systemd.units.${unit}.enabled` } },
          );
        }
      } else await s.manager.disableUnitFiles([unit], false);
      await s.reload();
    }
  };

  const checkLoaded = async (s: ManagerSession, unit: string, allowMissing: boolean): Promise<UnitRow> => {
    const row = await unitRow(s, unit);
    if (row[2] === 'not-found' && !allowMissing) {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_NOT_FOUND',
        `plugins.systemd.units.${unit}: there is no unit ${unit} and the document gives no content for it; add \`content\` or correct the name.`,
        { data: { unit, path: `plugins.systemd.units.${unit}` } },
      );
    }
    if (row[2] === 'error' || row[2] === 'bad-setting') {
      const [errorName, errorText] = (await s.bus.getProperty(
        SYSTEMD_DEST,
        unitPath(unit),
        'org.freedesktop.systemd1.Unit',
        'LoadError',
      )) as [string, string];
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_UNIT_INVALID',
        `systemd could not load ${unit} (${row[2]}): ${errorText || errorName}. Fix its content in the state document.`,
        {
          data: {
            unit,
            loadState: row[2],
            dbusError: errorName,
            path: `plugins.systemd.units.${unit}.content`,
          },
        },
      );
    }
    return row;
  };

  const applyUnit = async (s: ManagerSession, name: string, spec: UnitSpec): Promise<void> => {
    let filesChanged = false;
    let execChanged = false;
    if (spec.content !== undefined)
      filesChanged = (await s.writeFile(posix.join(s.unitDir, name), ensureNl(spec.content))) || filesChanged;
    for (const [file, text] of Object.entries(spec.dropIns ?? {}))
      filesChanged =
        (await s.writeFile(
          posix.join(s.unitDir, `${name}.d`, file),
          text === null ? null : ensureNl(text),
        )) || filesChanged;
    const declared = (Object.keys(spec.properties ?? {}) as UnitPropertyName[]).filter(
      (p) => spec.properties?.[p] !== undefined,
    );
    const exec = declared.filter((p) => execProperties.includes(p));
    if (exec.length > 0) {
      const section = execSection(name);
      if (section === undefined) {
        throw new OpdbusError(
          'OPDBUS_ERR_SYSTEMD_PROPERTY',
          `plugins.systemd.units.${name}.properties: ${exec.join(', ')} apply to service, socket, mount and swap units, not to ${name}.`,
          { data: { unit: name, properties: exec, path: `plugins.systemd.units.${name}.properties` } },
        );
      }
      const lines = [
        `${MANAGED_MARKER}: execution properties of ${name}; edits are overwritten.`,
        `[${section}]`,
        ...exec.map((p) => execPropertyLine(p, canonicalProperty(p, spec.properties?.[p]))),
        '',
      ];
      execChanged = await s.writeFile(
        posix.join(s.unitDir, `${name}.d`, PROPERTIES_DROP_IN),
        lines.join('\n'),
      );
      filesChanged = execChanged || filesChanged;
    }
    if (filesChanged) await s.reload();
    await checkLoaded(s, name, spec.masked === true);
    await setEnablement(s, name, spec);
    const live = declared.filter((p) => cgroupProperties.includes(p));
    if (live.length > 0) {
      const current = await readProperties(s, name, spec.properties ?? {});
      const pairs: Array<[string, Variant]> = [];
      for (const p of live) {
        const want = canonicalProperty(p, spec.properties?.[p]);
        if (canonicalJson(want) !== canonicalJson(current[p] ?? null)) pairs.push(toSetUnitProperty(p, want));
      }
      if (pairs.length > 0) await s.manager.setUnitProperties(name, false, pairs);
    }
    // Execution properties (CPUAffinity, NUMAPolicy, NUMAMask, Nice) only act when the process
    // starts: a running unit whose execution properties changed is restarted so that what was
    // declared is what runs (a unit declared inactive is stopped instead, below).
    if (execChanged && spec.active !== false && isActive((await unitRow(s, name))[3])) {
      const result = await s.runJob(name, 'restart', () => s.manager.restartUnit(name, 'replace'));
      if (result !== 'done') await failJob(s, name, 'restart', result);
    }
    if (spec.active !== undefined) await setActive(s, name, spec.active);
  };

  const removeUnit = async (s: ManagerSession, name: string): Promise<void> => {
    const file = posix.join(s.unitDir, name);
    const content = await s.readFile(file);
    const row = await unitRow(s, name);
    if (content === null && row[2] !== 'not-found' && row[2] !== 'masked') {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_VENDOR_UNIT',
        `plugins.systemd.units.${name}: ${name} is not in ${s.options.unitDir} (a package ships it), so it cannot be removed; declare it \`masked: true\` instead.`,
        { data: { unit: name, path: `plugins.systemd.units.${name}.state` } },
      );
    }
    if (isActive(row[3])) await setActive(s, name, false);
    if ((await fileState(s, name)).startsWith('enabled')) await s.manager.disableUnitFiles([name], false);
    await s.writeFile(file, null);
    for (const dropIn of Object.keys(await s.readDir(posix.join(s.unitDir, `${name}.d`))))
      await s.writeFile(posix.join(s.unitDir, `${name}.d`, dropIn), null);
    await s.reload();
  };

  const applyTimer = async (s: ManagerSession, name: string, spec: TimerSpec): Promise<void> => {
    const [timerUnit, serviceUnit] = timerUnits(name);
    if (spec.state === 'absent') {
      await removeUnit(s, timerUnit);
      await removeUnit(s, serviceUnit);
      return;
    }
    const files = renderTimer(name, normalTimer(name, spec));
    const a = await s.writeFile(posix.join(s.unitDir, serviceUnit), files.service);
    const b = await s.writeFile(posix.join(s.unitDir, timerUnit), files.timer);
    if (a || b) await s.reload();
    await checkLoaded(s, serviceUnit, false);
    await checkLoaded(s, timerUnit, false);
    const calendar = (await s.bus.getProperty(
      SYSTEMD_DEST,
      unitPath(timerUnit),
      'org.freedesktop.systemd1.Timer',
      'TimersCalendar',
    )) as unknown[];
    if (calendar.length === 0) {
      throw new OpdbusError(
        'OPDBUS_ERR_SYSTEMD_TIMER_INVALID',
        `plugins.systemd.timers.${name}.onCalendar: systemd accepted none of ${JSON.stringify(spec.onCalendar)}; check them with \`systemd-analyze calendar\`.`,
        { data: { timer: name, path: `plugins.systemd.timers.${name}.onCalendar` } },
      );
    }
    await setEnablement(s, timerUnit, { enabled: spec.enabled ?? true });
    await setActive(s, timerUnit, spec.active ?? true);
  };

  const checkpointUnit = async (s: ManagerSession, name: string): Promise<UnitCheckpoint> => {
    const files: Record<string, string | null> = {};
    files[posix.join(s.unitDir, name)] = await s.readFile(posix.join(s.unitDir, name));
    const dirs: Record<string, Record<string, string>> = {};
    dirs[posix.join(s.unitDir, `${name}.d`)] = await s.readDir(posix.join(s.unitDir, `${name}.d`));
    dirs[s.controlDir(name)] = await s.readDir(s.controlDir(name));
    const row = await unitRow(s, name);
    return { name, files, dirs, fileState: await fileState(s, name), active: isActive(row[3]) };
  };

  const unitsOf = (change: SystemdChange): string[] => {
    const value = change.after ?? change.before;
    const [kind, ...rest] = change.resource.split('/');
    const name = value !== null && 'name' in value ? value.name : rest.join('/');
    return kind === 'timer' ? timerUnits(name) : [name];
  };

  return definePlugin<SystemdSection, SystemdCheckpoint, SystemdValue>({
    name: 'systemd',
    version: packageVersion(import.meta.url),
    description:
      'systemd units (file content, drop-ins, enabled, masked, active, resource properties) and timers, over D-Bus.',
    schema: systemdSchema,

    async probe(ctx) {
      let s: ManagerSession;
      try {
        s = await open(ctx);
      } catch (err) {
        return { available: false, reason: (err as Error).message };
      }
      try {
        const version = await s.manager.get('Version');
        return { available: true, detail: `systemd ${version} at ${s.bus.address}` };
      } catch (err) {
        return {
          available: false,
          reason: `no systemd manager on ${s.bus.address}: ${(err as Error).message}`,
        };
      } finally {
        await s.close();
      }
    },

    async query(ctx, queryOptions) {
      await using s = await open(ctx);
      const scope = queryOptions?.scope;
      if (scope !== undefined) {
        const out: SystemdSection = {};
        if (scope.units !== undefined) {
          out.units = {};
          for (const [name, spec] of Object.entries(scope.units))
            out.units[name] = await observeUnit(s, name, spec);
        }
        if (scope.timers !== undefined) {
          out.timers = {};
          for (const name of Object.keys(scope.timers)) out.timers[name] = await observeTimer(s, name);
        }
        return out;
      }
      const units: Record<string, UnitSpec> = {};
      const [loaded, files] = await Promise.all([s.manager.listUnits(), s.manager.listUnitFiles()]);
      for (const row of loaded as UnitRow[]) units[row[0]] = { active: isActive(row[3]) };
      for (const [path, state] of files) {
        const name = basename(path);
        // An alias is active when the unit it names is: ListUnits lists that one, not the alias.
        if (state === 'alias' && units[name] === undefined) continue;
        const entry = (units[name] ??= { active: false });
        if (state === 'enabled' || state === 'enabled-runtime' || state === 'disabled')
          entry.enabled = state !== 'disabled';
        if (state.startsWith('masked')) entry.masked = true;
      }
      const sorted: Record<string, UnitSpec> = {};
      for (const name of Object.keys(units).sort()) sorted[name] = units[name]!;
      const out: SystemdSection = { units: sorted };
      // Timers op-dbus manages (their files carry the marker), when the root is the manager's.
      try {
        await s.checkRoot();
        const timers: Record<string, TimerSpec> = {};
        for (const [file, text] of Object.entries(await s.readDir(s.unitDir))) {
          if (!file.endsWith('.timer') || !text.startsWith(MANAGED_MARKER)) continue;
          const name = file.slice(0, -'.timer'.length);
          const { state: _state, ...timer } = await observeTimer(s, name);
          timers[name] = timer;
        }
        if (Object.keys(timers).length > 0) out.timers = timers;
      } catch (err) {
        ctx.logger.debug({ err }, "timers not listed: the root is not the target manager's");
      }
      return out;
    },

    diff(desired, observed) {
      const changes: ChangeSpec<SystemdValue>[] = [];
      for (const [name, spec] of Object.entries(desired.units ?? {})) {
        const o: ObservedUnit = observed.units?.[name] ?? { state: 'absent' };
        if (spec.state === 'absent') {
          if (o.state !== 'absent')
            changes.push({
              resource: `unit/${name}`,
              op: 'delete',
              before: o,
              after: null,
              summary: `remove unit ${name}`,
            });
          continue;
        }
        const differs: string[] = [];
        if (spec.state === 'present' && o.state === 'absent') differs.push('state');
        if (spec.content !== undefined && ensureNl(spec.content) !== o.content) differs.push('content');
        for (const [file, text] of Object.entries(spec.dropIns ?? {})) {
          if ((text === null ? null : ensureNl(text)) !== (o.dropIns?.[file] ?? null))
            differs.push(`drop-in ${file}`);
        }
        for (const key of ['masked', 'enabled', 'active'] as const) {
          if (spec[key] !== undefined && spec[key] !== (o[key] ?? false))
            differs.push(`${key} ${String(o[key] ?? false)} → ${String(spec[key])}`);
        }
        for (const [key, value] of Object.entries(spec.properties ?? {}) as Array<
          [UnitPropertyName, unknown]
        >) {
          if (value === undefined) continue;
          const want = canonicalProperty(key, value);
          const have = o.properties?.[key];
          if (canonicalJson(want) !== canonicalJson(have ?? null))
            differs.push(`${key} ${JSON.stringify(have ?? null)} → ${JSON.stringify(want)}`);
        }
        if (differs.length === 0) continue;
        const restarts =
          o.active === true &&
          spec.active !== false &&
          execProperties.some((p) => differs.some((d) => d.startsWith(`${p} `)));
        changes.push({
          resource: `unit/${name}`,
          op: o.state === 'absent' ? 'create' : 'update',
          before: o,
          after: { kind: 'unit', name, spec },
          summary: `${o.state === 'absent' ? 'create' : 'update'} unit ${name}: ${differs.join(', ')}${restarts ? ' (restarts it: execution properties act at start)' : ''}`,
        });
      }
      for (const [name, spec] of Object.entries(desired.timers ?? {})) {
        const o: ObservedTimer = observed.timers?.[name] ?? { state: 'absent' };
        const present = o.state !== 'absent';
        if (spec.state === 'absent') {
          if (present)
            changes.push({
              resource: `timer/${name}`,
              op: 'delete',
              before: o,
              after: null,
              summary: `remove timer ${name}`,
            });
          continue;
        }
        const differs: string[] = [];
        if (!present) differs.push('new');
        else {
          const want = normalTimer(name, spec);
          const have = normalTimer(name, o);
          for (const key of Object.keys(want) as Array<keyof typeof want>)
            if (canonicalJson(want[key] ?? null) !== canonicalJson(have[key] ?? null)) differs.push(key);
          if ((spec.enabled ?? true) !== (o.enabled ?? false))
            differs.push(`enabled → ${String(spec.enabled ?? true)}`);
          if ((spec.active ?? true) !== (o.active ?? false))
            differs.push(`active → ${String(spec.active ?? true)}`);
        }
        if (differs.length === 0) continue;
        changes.push({
          resource: `timer/${name}`,
          op: present ? 'update' : 'create',
          before: o,
          after: { kind: 'timer', name, spec },
          summary: `${present ? 'update' : 'create'} timer ${name} (${[spec.onCalendar].flat().join(', ')}): ${differs.join(', ')}`,
        });
      }
      return changes;
    },

    async apply(change, ctx) {
      await using s = await open(ctx);
      const [kind, ...rest] = change.resource.split('/');
      const name = rest.join('/');
      if (change.op === 'delete') {
        if (kind === 'timer') await applyTimer(s, name, { state: 'absent' });
        else await removeUnit(s, name);
        return;
      }
      // A create or update carries the declaration of its resource's kind (see diff).
      const after = change.after as UnitTarget | TimerTarget;
      if (after.kind === 'timer') await applyTimer(s, name, after.spec);
      else await applyUnit(s, name, after.spec);
    },

    async checkpoint(ctx, changes) {
      await using s = await open(ctx);
      await s.checkRoot();
      const units: SystemdCheckpoint['units'] = [];
      for (const change of changes)
        for (const unit of unitsOf(change))
          if (!units.some((u) => u.name === unit)) units.push(await checkpointUnit(s, unit));
      return { units };
    },

    async restore(token, ctx) {
      await using s = await open(ctx);
      await s.checkRoot();
      const units = [...token.units].reverse();
      const failures: string[] = [];
      const step = async (what: string, fn: () => Promise<void>): Promise<void> => {
        try {
          await fn();
        } catch (err) {
          failures.push(`${what}: ${(err as Error).message}`);
        }
      };
      // Stop what was not running; take back enablement the checkpoint did not have.
      for (const u of units) {
        await step(`stop ${u.name}`, async () => {
          if (!u.active) await setActive(s, u.name, false);
        });
        await step(`enablement of ${u.name}`, async () => {
          const now = await fileState(s, u.name);
          if (now.startsWith('enabled') && !u.fileState.startsWith('enabled'))
            await s.manager.disableUnitFiles([u.name], false);
          if (now.startsWith('masked') && !u.fileState.startsWith('masked'))
            await s.manager.unmaskUnitFiles([u.name], false);
        });
      }
      // Files and directories exactly as they were: only where the plugin writes (a journal is
      // trusted, but a token naming other paths is refused rather than followed).
      const managed = (path: string): boolean =>
        [s.unitDir, '/etc/systemd/system.control'].some((dir) => path.startsWith(`${dir}/`)) &&
        !path.split('/').includes('..');
      for (const u of units) {
        await step(`files of ${u.name}`, async () => {
          const foreign = [...Object.keys(u.dirs), ...Object.keys(u.files)].filter((p) => !managed(p));
          if (foreign.length > 0)
            throw new Error(
              `the checkpoint names paths outside the unit directories: ${foreign.slice(0, 5).join(', ')}`,
            );
          for (const [dir, files] of Object.entries(u.dirs)) {
            for (const file of Object.keys(await s.readDir(dir)))
              if (!(file in files)) await s.writeFile(posix.join(dir, file), null);
            for (const [file, text] of Object.entries(files)) await s.writeFile(posix.join(dir, file), text);
          }
          for (const [file, text] of Object.entries(u.files)) await s.writeFile(file, text);
        });
      }
      await step('daemon-reload', () => s.reload());
      // Enablement and activity the checkpoint had.
      for (const u of [...units].reverse()) {
        await step(`enablement of ${u.name}`, async () => {
          const now = await fileState(s, u.name);
          if (u.fileState.startsWith('masked') && !now.startsWith('masked'))
            await s.manager.maskUnitFiles([u.name], u.fileState === 'masked-runtime', false);
          if (u.fileState.startsWith('enabled') && !now.startsWith('enabled'))
            await s.manager.enableUnitFiles([u.name], u.fileState === 'enabled-runtime', false);
        });
      }
      await step('daemon-reload', () => s.reload());
      for (const u of [...units].reverse()) {
        await step(`start ${u.name}`, async () => {
          if (u.active) await setActive(s, u.name, true);
        });
      }
      if (failures.length > 0) {
        throw new OpdbusError(
          'OPDBUS_ERR_SYSTEMD_JOB_FAILED',
          `Restoring systemd units failed: ${failures.join('; ')}.`,
          { data: { failures } },
        );
      }
    },

    async watch(ctx, onEvent: (event: WatchEvent) => void) {
      const s = await open(ctx);
      await s.manager.subscribe();
      const subscriptions: Subscription[] = [];
      const emit = (resource: string, detail: string, raw: JsonValue): void =>
        onEvent({ plugin: 'systemd', resource, detail, raw });
      subscriptions.push(
        await s.manager.onJobRemoved((id, job, unit, result) =>
          emit(`unit/${unit}`, `job ${id} of ${unit} finished: ${result}`, {
            signal: 'JobRemoved',
            id,
            job,
            unit,
            result,
          }),
        ),
        await s.manager.onUnitNew((unit) =>
          emit(`unit/${unit}`, `unit ${unit} loaded`, { signal: 'UnitNew', unit }),
        ),
        await s.manager.onUnitRemoved((unit) =>
          emit(`unit/${unit}`, `unit ${unit} unloaded`, { signal: 'UnitRemoved', unit }),
        ),
        await s.manager.onUnitFilesChanged(() =>
          emit('unit-files', 'unit files changed (enable, disable, mask, link)', {
            signal: 'UnitFilesChanged',
          }),
        ),
        await s.bus.subscribe(
          {
            sender: SYSTEMD_DEST,
            interface: 'org.freedesktop.DBus.Properties',
            member: 'PropertiesChanged',
            pathNamespace: `${MANAGER_PATH}/unit`,
            args: { 0: 'org.freedesktop.systemd1.Unit' },
          },
          (message) => {
            const changed = message.body[1] as Record<string, unknown>;
            const state = changed.ActiveState;
            if (state === undefined) return;
            const unit = unescapePathElement(message.path.slice(`${MANAGER_PATH}/unit/`.length));
            const raw: unknown = state instanceof Variant ? state.value : state;
            const value = typeof raw === 'string' ? raw : '';
            emit(`unit/${unit}`, `${unit} is ${value}`, {
              signal: 'PropertiesChanged',
              unit,
              activeState: value,
            });
          },
        ),
      );
      return async () => {
        for (const sub of subscriptions) await sub.unsubscribe();
        await s.close();
      };
    },
  });
}

/** The systemd plugin with default options. */
export const systemdPlugin: SystemdPlugin = createSystemdPlugin();
