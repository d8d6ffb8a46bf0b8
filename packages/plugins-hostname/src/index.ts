/**
 * @opdbus/plugins-hostname: static and pretty hostname, chassis, deployment and location as
 * declared state for op-dbus, through systemd-hostnamed (org.freedesktop.hostname1).
 *
 * @packageDocumentation
 */
export { hostnameErrors } from './errors.js';
export {
  chassisTypes,
  createHostnamePlugin,
  hostnamePlugin,
  hostnameSchema,
  type HostnameCheckpoint,
  type HostnamePlugin,
  type HostnameSection,
  type HostnameValue,
} from './plugin.js';
