import type { AnyPlugin } from '@opdbus/core';
import { networkPlugin } from '@opdbus/plugins-network';
import { sysctlPlugin } from '@opdbus/plugins-sysctl';

/** The plugins the `opdbus` CLI registers, in the order their sections are listed. */
export function defaultPlugins(): AnyPlugin[] {
  return [sysctlPlugin, networkPlugin];
}
