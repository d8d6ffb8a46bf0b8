import { accessSync, constants, openSync, readFileSync, readSync, closeSync, realpathSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { OpdbusError, parseStateDocument } from '@opdbus/core';
import { createEngine, pluginsFor, type GlobalOptions, type Output } from '../runtime.js';
import { applyDocument } from './apply.js';

/** Options of `opdbus daemon install`. */
export interface DaemonInstallOptions {
  opdbusd?: string;
  desired: string;
  daemonStateDir: string;
  mode: string;
  listen?: string[];
  tokenFile?: string;
  daemonArg?: string[];
  watchdogSec: string;
  unit: string;
  start: boolean;
  dryRun?: boolean;
}

const usage = (message: string): OpdbusError => new OpdbusError('OPDBUS_ERR_USAGE', message);

/** The opdbusd executable: `--opdbusd`, else the first `opdbusd` on PATH. */
function findOpdbusd(given: string | undefined): string {
  if (given !== undefined) {
    const path = resolve(given);
    try {
      accessSync(path, constants.R_OK);
    } catch {
      throw usage(
        `--opdbusd ${given}: no such file; give the path of opdbusd (@opdbus/daemon's dist/bin.js).`,
      );
    }
    return realpathSync(path);
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'opdbusd');
    try {
      accessSync(candidate, constants.X_OK);
      return realpathSync(candidate);
    } catch {
      // not here
    }
  }
  throw usage(
    'opdbusd is not on PATH: install @opdbus/daemon (npm install -g @opdbus/daemon) or give --opdbusd PATH.',
  );
}

/** The @opdbus/daemon package directory above the executable (its unit file is in systemd/). */
function daemonPackageDir(bin: string): string {
  for (let dir = dirname(bin); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === '@opdbus/daemon') return dir;
    } catch {
      // no package.json here
    }
  }
  throw usage(
    `${bin} is not inside the @opdbus/daemon package (its unit file systemd/opdbusd.service is not found); give --opdbusd PATH/TO/@opdbus/daemon/dist/bin.js.`,
  );
}

/** Whether a file is a script for node (a shebang naming node, or a .js file). */
function isNodeScript(path: string): boolean {
  if (/\.[cm]?js$/.test(path)) return true;
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const n = readSync(fd, head, 0, 64, 0);
    return /^#!.*\bnode\b/.test(head.subarray(0, n).toString('utf8').split('\n')[0] ?? '');
  } finally {
    closeSync(fd);
  }
}

/** One ExecStart= word: quoted for systemd, `%` and `$` escaped; control characters refused. */
function unitWord(word: string, what: string): string {
  if ([...word].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    throw usage(`${what}: "${word}" has a control character, which a unit file cannot hold.`);
  const escaped = word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\;%$]/.test(word) || word === '' ? `"${escaped}"` : escaped;
}

/**
 * The unit file: the one @opdbus/daemon ships (Type=notify, WatchdogSec, hardening), with
 * ExecStart= running this opdbusd (under the node that runs this command, for a node script) with
 * the options given, and WatchdogSec= as asked.
 */
export function daemonUnit(options: DaemonInstallOptions, bin: string, template: string): string {
  const watchdog = Number(options.watchdogSec);
  if (!Number.isInteger(watchdog) || watchdog < 1 || watchdog > 3600)
    throw usage(`--watchdog-sec takes whole seconds between 1 and 3600, got "${options.watchdogSec}".`);
  if (!['observe', 'enforce', 'ignore'].includes(options.mode))
    throw usage(`--mode takes observe, enforce or ignore, got "${options.mode}".`);
  for (const [flag, path] of [
    ['--desired', options.desired],
    ['--daemon-state-dir', options.daemonStateDir],
  ] as const)
    if (!isAbsolute(path))
      throw usage(`${flag} must be an absolute path (the unit runs from /), got "${path}".`);
  const listen = options.listen ?? ['unix:/run/opdbus/api.sock'];
  const argv = [
    ...(isNodeScript(bin) ? [process.execPath] : []),
    bin,
    '--desired',
    options.desired,
    '--state-dir',
    options.daemonStateDir,
    '--mode',
    options.mode,
    ...listen.flatMap((l) => ['--listen', l]),
    ...(options.tokenFile === undefined ? [] : ['--token-file', resolve(options.tokenFile)]),
    ...(options.daemonArg ?? []),
  ];
  const execStart = `ExecStart=${argv.map((w) => unitWord(w, 'ExecStart')).join(' ')}`;
  let sawExec = false;
  let sawWatchdog = false;
  const lines = template.split('\n').map((line) => {
    if (line.startsWith('ExecStart=')) {
      sawExec = true;
      return execStart;
    }
    if (line.startsWith('WatchdogSec=')) {
      sawWatchdog = true;
      return `WatchdogSec=${watchdog}`;
    }
    return line;
  });
  if (!sawExec || !sawWatchdog)
    throw usage(
      'The unit template of @opdbus/daemon lacks ExecStart= or WatchdogSec=; reinstall @opdbus/daemon.',
    );
  return lines.join('\n');
}

/**
 * `opdbus daemon install`: write opdbusd.service, enable and start it, as one op-dbus transaction
 * through the systemd plugin (the unit file under --root, daemon-reload, EnableUnitFiles and
 * StartUnit over D-Bus; verified; rolled back on failure; recorded in the ledger).
 */
export async function daemonInstall(
  global: GlobalOptions,
  options: DaemonInstallOptions,
  output: Output,
): Promise<number> {
  if (!/^[A-Za-z0-9:_.@-]+\.service$/.test(options.unit))
    throw usage(`--unit takes a service unit name such as opdbusd.service, got "${options.unit}".`);
  const bin = findOpdbusd(options.opdbusd);
  const templatePath = join(daemonPackageDir(bin), 'systemd', 'opdbusd.service');
  const content = daemonUnit(options, bin, readFileSync(templatePath, 'utf8'));
  const engine = await createEngine(global, await pluginsFor(global, ['systemd']));
  const document = {
    version: 1,
    plugins: {
      systemd: { units: { [options.unit]: { content, enabled: true, active: options.start } } },
    },
  };
  const doc = parseStateDocument(JSON.stringify(document), {
    source: `opdbus daemon install (${options.unit})`,
    registry: engine.registry,
  });
  if (options.dryRun && !global.json) output.out(`# ${options.unit}\n${content}`);
  return applyDocument(global, engine, doc, { ...(options.dryRun ? { dryRun: true } : {}) }, output);
}
