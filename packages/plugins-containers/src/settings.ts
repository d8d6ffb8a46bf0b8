/**
 * The machine's systemd-nspawn settings file (`/etc/systemd/nspawn/NAME.nspawn`, see
 * systemd.nspawn(5)): how it boots, what it runs, its bind mounts and its network. The unit
 * `systemd-nspawn@.service` starts nspawn with `--settings=override`, so what the file says wins
 * over the unit's command line.
 */
import type { MachineEntry } from './schema.js';

/** The host end of a machine's veth on an Open vSwitch bridge. */
export function hostInterfaceOf(m: Pick<MachineEntry, 'name' | 'network'>): string | undefined {
  const net = m.network;
  if (net === undefined || !('ovsBridge' in net)) return undefined;
  return net.hostInterface ?? `ve-${m.name}`;
}

/** The comment line of a settings file that names the machine's Open vSwitch bridge. */
const OVS_BRIDGE_COMMENT = '# op-dbus ovs-bridge=';

/** The first line of files this plugin writes. */
export const SETTINGS_MARKER =
  '# Managed by op-dbus (@opdbus/plugins-containers); local changes are overwritten.';

/** Quote one argument the way systemd splits `Parameters=`. */
export function quoteArg(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `"${arg.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Split a `Parameters=` value (whitespace-separated words, "…" and '…' quoting, backslash escapes). */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) current += text[++i];
      else current += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      current += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) out.push(current);
  return out;
}

/** The settings file of a machine entry. */
export function renderSettings(m: MachineEntry): string {
  const lines = [SETTINGS_MARKER, '', '[Exec]', `Boot=${m.boot === false ? 'no' : 'yes'}`];
  if (m.boot === false && m.command !== undefined)
    lines.push(`Parameters=${m.command.map(quoteArg).join(' ')}`);
  // User namespacing (-U) would chown the whole image on first start; machines run as root here.
  lines.push('PrivateUsers=no');
  const ro = m.bind?.readOnly ?? [];
  const rw = m.bind?.readWrite ?? [];
  if (ro.length + rw.length > 0) {
    lines.push('', '[Files]');
    for (const b of ro) lines.push(`BindReadOnly=${b}`);
    for (const b of rw) lines.push(`Bind=${b}`);
  }
  lines.push('', '[Network]');
  const net = m.network;
  if (net !== undefined && 'bridge' in net) lines.push(`Bridge=${net.bridge}`);
  else if (net !== undefined && 'ovsBridge' in net)
    // nspawn names the host end of VirtualEthernetExtra= as told (its own veth, ve-NAME, is
    // shortened with a hash past 15 characters); the bridge is op-dbus's, kept in OVSDB.
    lines.push(
      `${OVS_BRIDGE_COMMENT}${net.ovsBridge ?? ''}`,
      'Private=yes',
      'VirtualEthernet=no',
      `VirtualEthernetExtra=${hostInterfaceOf(m)}:host0`,
    );
  else if (net !== undefined && 'host' in net) lines.push('Private=no', 'VirtualEthernet=no');
  else lines.push('Private=yes', 'VirtualEthernet=no');
  return `${lines.join('\n')}\n`;
}

/** What a settings file says, as machine fields (unknown keys ignored). */
export function parseSettings(text: string): Pick<MachineEntry, 'boot' | 'command' | 'bind' | 'network'> {
  let section = '';
  const values = new Map<string, string[]>();
  let ovsBridge: string | null | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith(OVS_BRIDGE_COMMENT)) ovsBridge = line.slice(OVS_BRIDGE_COMMENT.length) || null;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = `${section}.${line.slice(0, eq).trim()}`;
    const list = values.get(key) ?? [];
    list.push(line.slice(eq + 1).trim());
    values.set(key, list);
  }
  const last = (key: string): string | undefined => values.get(key)?.at(-1);
  const yes = (v: string | undefined): boolean | undefined =>
    v === undefined ? undefined : /^(1|yes|true|on)$/i.test(v);
  const out: Pick<MachineEntry, 'boot' | 'command' | 'bind' | 'network'> = {};
  const boot = yes(last('Exec.Boot'));
  out.boot = boot ?? true;
  const params = last('Exec.Parameters');
  if (params !== undefined && params !== '') out.command = splitArgs(params);
  const ro = values.get('Files.BindReadOnly') ?? [];
  const rw = values.get('Files.Bind') ?? [];
  if (ro.length + rw.length > 0) {
    out.bind = {};
    if (ro.length > 0) out.bind.readOnly = ro;
    if (rw.length > 0) out.bind.readWrite = rw;
  }
  const bridge = last('Network.Bridge');
  const extra = /^([^:]+):host0$/.exec(last('Network.VirtualEthernetExtra') ?? '');
  if (bridge !== undefined && bridge !== '') out.network = { bridge };
  else if (ovsBridge !== undefined && extra !== null) out.network = { ovsBridge, hostInterface: extra[1]! };
  else if (yes(last('Network.Private')) === false && yes(last('Network.VirtualEthernet')) !== true)
    out.network = { host: true };
  else out.network = { private: true };
  return out;
}
