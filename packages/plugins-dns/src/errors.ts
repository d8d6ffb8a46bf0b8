import { defineErrorCodes } from '@opdbus/core';

/** Error codes of the DNS plugin (documented in docs/errors.md). */
export const dnsErrors = defineErrorCodes({
  OPDBUS_ERR_DNS_UNKNOWN_LINK: {
    summary:
      'The state document names a network interface that does not exist in the target, or the loopback one.',
    remedy:
      'Check the name with `ip link` in the target (or `opdbus query --plugin dns`); resolved keeps no per-link settings for loopback.',
  },
  OPDBUS_ERR_DNS_BAD_SERVER: {
    summary: 'A DNS server is not an IP address in the form ADDRESS[:PORT][#NAME] ([ADDRESS]:PORT for IPv6).',
    remedy:
      'Write servers as resolvectl prints them, e.g. 192.0.2.53, [2001:db8::53]:853 or 1.1.1.1#cloudflare-dns.com.',
  },
  OPDBUS_ERR_DNS_RESOLVED: {
    summary:
      'systemd-resolved refused a setting or could not be reached over D-Bus (the D-Bus error says which).',
    remedy:
      'Check that systemd-resolved runs on the target (`systemctl status systemd-resolved`) and that the link is not managed by systemd-networkd (configure it there instead).',
  },
});
