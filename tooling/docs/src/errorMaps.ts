import { exitCodeFor } from '@opdbus/cli';
import { errorCodes, type ErrorCodeInfo } from '@opdbus/core';
import { netlinkErrors } from '@opdbus/netlink';
import { networkErrors } from '@opdbus/plugins-network';
import { sysctlErrors } from '@opdbus/plugins-sysctl';
import { sandboxErrors } from '@opdbus/sandbox';

/** Every package's error map, by package name. Add a package's map here when it defines codes. */
export const errorMaps: Record<string, Record<string, ErrorCodeInfo>> = {
  '@opdbus/core': errorCodes,
  '@opdbus/netlink': netlinkErrors,
  '@opdbus/plugins-network': networkErrors,
  '@opdbus/plugins-sysctl': sysctlErrors,
  '@opdbus/sandbox': sandboxErrors,
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
