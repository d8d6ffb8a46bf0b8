import type { AnyPlugin } from '@opdbus/core';
import { hostnamePlugin } from '@opdbus/plugins-hostname';
import { networkPlugin } from '@opdbus/plugins-network';
import { numaPlugin } from '@opdbus/plugins-numa';
import { ovsPlugin } from '@opdbus/plugins-ovs';
import { sessionsPlugin } from '@opdbus/plugins-sessions';
import { sysctlPlugin } from '@opdbus/plugins-sysctl';
import { systemdPlugin } from '@opdbus/plugins-systemd';
import { timedatePlugin } from '@opdbus/plugins-timedate';

/** The plugins the `opdbus` CLI registers, in the order their sections are listed. */
export function defaultPlugins(): AnyPlugin[] {
  return [sysctlPlugin, networkPlugin, ovsPlugin, systemdPlugin, numaPlugin, hostnamePlugin, timedatePlugin, sessionsPlugin];
}
