import { lazySchema } from '@opdbus/core';
import { tryParseCidr } from '@opdbus/netlink';
import { z } from 'zod';
import { canonicalAllowedIp, isAllowedIp, isEndpoint } from './device.js';
import { isBase64Key } from './keys.js';
import { storedKeyIdPattern } from './keyStore.js';

const ifname = lazySchema(() =>
  z
    .string()
    .regex(/^[^\s/:]{1,15}$/, 'an interface name: 1 to 15 characters, no whitespace, "/" or ":"')
    .describe('Interface name.'),
);

const key = lazySchema(() =>
  z.string().refine(isBase64Key, {
    message: 'a WireGuard key: 44 characters of base64 (32 bytes), as `wg pubkey` prints',
  }),
);

/**
 * Where a secret key comes from. Secrets never appear in a state document, a plan, a journal or
 * a query: only these references do.
 */
export const secretRefSchema = lazySchema(() =>
  z.union([
    z
      .strictObject({
        stored: z
          .string()
          .regex(storedKeyIdPattern, 'a key id: letters, digits, ".", "_", "-", "@", at most 128 characters')
          .describe("The id of a key in this node's sealed key store (STATE_DIR/wireguard/keys)."),
      })
      .describe(
        "A key in the node's key store, sealed with AES-256-GCM. A private key that is not there yet is generated on this node by the first apply that names it.",
      ),
    z
      .strictObject({
        file: z
          .string()
          .startsWith('/', 'an absolute path')
          .describe('A file holding the key in base64, as `wg genkey` writes it (mode 0600 expected).'),
      })
      .describe('A key in a file the operator manages, read when it is applied.'),
  ]),
);

/** A reference to a secret key. */
export type SecretRef = z.infer<typeof secretRefSchema>;

/** One peer of an interface. */
export const peerSchema = lazySchema(() =>
  z
    .strictObject({
      publicKey: key.describe("The peer's public key: its identity."),
      state: z.enum(['present', 'absent']).optional().describe('`absent` removes the peer. Default present.'),
      presharedKey: secretRefSchema
        .optional()
        .describe('An additional symmetric key (post-quantum resistance).'),
      endpoint: z
        .string()
        .refine(isEndpoint, {
          message: 'ADDRESS:PORT with an IP address, e.g. 192.0.2.1:51820 or [2001:db8::1]:51820',
        })
        .optional()
        .describe('Where to reach the peer (IP:PORT; IPv6 in brackets). Omitted: learnt from its packets.'),
      allowedIPs: z
        .array(z.string().refine(isAllowedIp, { message: 'a prefix such as 10.0.0.2/32 or fd00::/64' }))
        .optional()
        .describe(
          'Prefixes routed to this peer and accepted from it (cryptokey routing); the complete list when given.',
        ),
      persistentKeepalive: z
        .number()
        .int()
        .min(0)
        .max(65535)
        .optional()
        .describe('Seconds between keepalives (0: off), for peers behind NAT.'),
    })
    .describe('A WireGuard peer, identified by its public key.'),
);

/** One WireGuard interface. */
export const interfaceSchema = lazySchema(() =>
  z
    .strictObject({
      name: ifname,
      state: z
        .enum(['up', 'down', 'absent'])
        .optional()
        .describe('`absent` deletes the interface. Omitted: up when created, else left as it is.'),
      privateKey: secretRefSchema
        .optional()
        .describe("The interface's private key (a reference; the key itself never appears in a document)."),
      publicKey: key
        .optional()
        .describe(
          "The public key the private key must have (a pin: applying a private key with another public key fails). Query reports the device's.",
        ),
      listenPort: z
        .number()
        .int()
        .min(1)
        .max(65535)
        .optional()
        .describe('UDP port. Omitted: chosen at random.'),
      fwmark: z
        .number()
        .int()
        .min(0)
        .max(0xffffffff)
        .optional()
        .describe('Firewall mark of outgoing packets (0: none).'),
      mtu: z.number().int().min(576).max(65535).optional().describe('MTU of the interface (default 1420).'),
      addresses: z
        .array(
          z.string().refine((v) => v.includes('/') && tryParseCidr(v) !== undefined, {
            message: 'an address with its prefix length, e.g. 10.99.0.1/24',
          }),
        )
        .optional()
        .describe(
          "The interface's addresses, the complete list when given (IPv6 link-local addresses the kernel adds are left alone).",
        ),
      peers: z
        .array(peerSchema)
        .optional()
        .describe('Peers, by public key. Only the peers named are managed; `state: absent` removes one.'),
    })
    .describe('A WireGuard interface: its key, port and peers, and the addresses and MTU of its link.'),
);

/** A peer as declared or observed. */
export type PeerEntry = z.infer<typeof peerSchema>;
/** An interface as declared or observed. */
export type InterfaceEntry = z.infer<typeof interfaceSchema>;

/** An interface entry without its peers: what an interface change carries (peers are changes of their own). */
export type InterfaceOwn = Omit<InterfaceEntry, 'peers'>;

/**
 * The values of the wireguard plugin's changes: an interface's own fields (`interface/NAME`) or a
 * peer entry (`peer/IFNAME/KEY`), canonical (see `normalizeInterface`); keys are references
 * (`{ stored: ID }`, a file), never secrets.
 */
export type WireguardValue = InterfaceOwn | PeerEntry;

function checkSection(section: WireguardSection, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void => {
    ctx.addIssue({ code: 'custom', path, message });
  };
  const names = new Map<string, number>();
  for (const [i, iface] of (section.interfaces ?? []).entries()) {
    const first = names.get(iface.name);
    if (first !== undefined)
      issue(
        ['interfaces', i, 'name'],
        `interface "${iface.name}" is already declared at interfaces[${first}]`,
      );
    else names.set(iface.name, i);
    const peers = new Map<string, number>();
    const owners = new Map<string, number>();
    for (const [j, peer] of (iface.peers ?? []).entries()) {
      const path = ['interfaces', i, 'peers', j];
      const dup = peers.get(peer.publicKey);
      if (dup !== undefined) issue([...path, 'publicKey'], `this peer is already declared at peers[${dup}]`);
      else peers.set(peer.publicKey, j);
      if (iface.publicKey !== undefined && peer.publicKey === iface.publicKey)
        issue([...path, 'publicKey'], "a peer cannot have the interface's own public key");
      if (peer.state === 'absent') continue;
      for (const ip of peer.allowedIPs ?? []) {
        const net = canonicalAllowedIp(ip);
        const other = owners.get(net);
        if (other !== undefined && other !== j)
          issue(
            [...path, 'allowedIPs'],
            `${net} is already an allowed IP of peers[${other}]; a prefix routes to one peer only`,
          );
        else owners.set(net, j);
      }
    }
  }
}

const sectionObject = lazySchema(() =>
  z.strictObject({
    interfaces: z
      .array(interfaceSchema)
      .optional()
      .describe('WireGuard interfaces: created, changed (peers in place, no flap) or deleted by name.'),
  }),
);

/** The `wireguard` section. */
export type WireguardSection = z.infer<typeof sectionObject>;

/** The zod schema of the `wireguard` section. */
export const wireguardSchema: z.ZodType<WireguardSection> = lazySchema(() =>
  sectionObject
    .superRefine(checkSection)
    .describe(
      'WireGuard interfaces and peers, over the kernel family or the userspace UAPI (wireguard-go). Private keys are references to sealed keys, never values.',
    ),
);
