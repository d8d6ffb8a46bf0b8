import { exitCodeFor } from '@opdbus/runtime';
import { errorCodes, type ErrorCodeInfo } from '@opdbus/core';
import { ledgerErrors } from '@opdbus/ledger';
import { dbusErrors } from '@opdbus/dbus';
import { hostnameErrors } from '@opdbus/plugins-hostname';
import { sessionsErrors } from '@opdbus/plugins-sessions';
import { pciErrors } from '@opdbus/plugins-pci';
import { dnsErrors } from '@opdbus/plugins-dns';
import { packagesErrors } from '@opdbus/plugins-packages';
import { usersErrors } from '@opdbus/plugins-users';
import { sshErrors } from '@opdbus/plugins-ssh';
import { ovsdbErrors } from '@opdbus/ovsdb';
import { ovsErrors } from '@opdbus/plugins-ovs';
import { numaErrors } from '@opdbus/numa';
import { mlErrors } from '@opdbus/ml';
import { netlinkErrors } from '@opdbus/netlink';
import { networkErrors } from '@opdbus/plugins-network';
import { nftablesErrors } from '@opdbus/nftables';
import { firewallErrors } from '@opdbus/plugins-firewall';
import { sysctlErrors } from '@opdbus/plugins-sysctl';
import { systemdErrors } from '@opdbus/plugins-systemd';
import { timedateErrors } from '@opdbus/plugins-timedate';
import { sandboxErrors } from '@opdbus/sandbox';
import { wireguardErrors } from '@opdbus/plugins-wireguard';
import { meshErrors } from '@opdbus/mesh';
import { containersErrors } from '@opdbus/plugins-containers';
import { runtimeErrors } from '@opdbus/runtime';
import { complianceErrors } from '@opdbus/compliance';
import { daemonErrors } from '@opdbus/daemon';
import { mcpErrors } from '@opdbus/mcp';

/** Every package's error map, by package name. Add a package's map here when it defines codes. */
export const errorMaps: Record<string, Record<string, ErrorCodeInfo>> = {
  '@opdbus/core': errorCodes,
  '@opdbus/ledger': ledgerErrors,
  '@opdbus/dbus': dbusErrors,
  '@opdbus/ovsdb': ovsdbErrors,
  '@opdbus/plugins-ovs': ovsErrors,
  '@opdbus/numa': numaErrors,
  '@opdbus/ml': mlErrors,
  '@opdbus/netlink': netlinkErrors,
  '@opdbus/plugins-network': networkErrors,
  '@opdbus/nftables': nftablesErrors,
  '@opdbus/plugins-firewall': firewallErrors,
  '@opdbus/plugins-sysctl': sysctlErrors,
  '@opdbus/plugins-systemd': systemdErrors,
  '@opdbus/plugins-hostname': hostnameErrors,
  '@opdbus/plugins-timedate': timedateErrors,
  '@opdbus/plugins-sessions': sessionsErrors,
  '@opdbus/plugins-pci': pciErrors,
  '@opdbus/plugins-dns': dnsErrors,
  '@opdbus/plugins-packages': packagesErrors,
  '@opdbus/plugins-users': usersErrors,
  '@opdbus/plugins-ssh': sshErrors,
  '@opdbus/sandbox': sandboxErrors,
  '@opdbus/plugins-wireguard': wireguardErrors,
  '@opdbus/mesh': meshErrors,
  '@opdbus/plugins-containers': containersErrors,
  '@opdbus/runtime': runtimeErrors,
  '@opdbus/compliance': complianceErrors,
  '@opdbus/daemon': daemonErrors,
  '@opdbus/mcp': mcpErrors,
};

/** One row per code, checked for duplicates across packages. */
export function allCodes(): { code: string; pkg: string; info: ErrorCodeInfo; exit: number }[] {
  const seen = new Map<string, string>();
  const rows: { code: string; pkg: string; info: ErrorCodeInfo; exit: number }[] = [];
  for (const [pkg, map] of Object.entries(errorMaps)) {
    for (const [code, info] of Object.entries(map)) {
      const other = seen.get(code);
      if (other !== undefined) throw new Error(`error code ${code} is defined by both ${other} and ${pkg}`);
      seen.set(code, pkg);
      rows.push({
        code,
        pkg,
        info,
        exit: exitCodeFor(
          code as `OPDBUS_ERR_${string}`,
          info.remedy.includes('state document') ? { path: '' } : undefined,
        ),
      });
    }
  }
  return rows;
}
