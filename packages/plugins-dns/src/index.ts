/**
 * @opdbus/plugins-dns: systemd-resolved's per-link and global DNS settings as declared state for
 * op-dbus, over resolve1's D-Bus API.
 *
 * @packageDocumentation
 */
export { dnsErrors } from './errors.js';
export { canonicalServer, formatServer, parseServer, type DnsServer } from './servers.js';
export {
  DNS_DROP_IN,
  createDnsPlugin,
  dnsPlugin,
  dnsSchema,
  type DnsChange,
  type DnsCheckpoint,
  type DnsGlobalSection,
  type DnsLinkSection,
  type DnsPlugin,
  type DnsPluginOptions,
  type DnsSection,
  type DnsValue,
} from './plugin.js';
