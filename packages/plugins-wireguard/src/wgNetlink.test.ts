import { Writer } from '@opdbus/netlink';
import { describe, expect, it } from 'vitest';
import { WGDEVICE_F, WGPEER_F, deviceAttrs, mergeGetDevice, setDeviceMessages } from './wgNetlink.js';

const key = (byte: number): Buffer => Buffer.alloc(32, byte);
const bytes = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p.replace(/\s+/g, ''), 'hex') : p)));

function encode(data: Record<string, unknown>): Buffer {
  const w = new Writer(256);
  deviceAttrs.encode(data, w);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

// The layout of include/uapi/linux/wireguard.h, written out by hand (little-endian host): each
// attribute is { u16 len; u16 type } + payload padded to 4 bytes; nested lists are NLA_F_NESTED
// attributes holding items of type 0.
const documentedSetDevice = bytes(
  '08000200 77673000', // WGDEVICE_A_IFNAME "wg0\0"
  '08000500 01000000', // WGDEVICE_A_FLAGS WGDEVICE_F_REPLACE_PEERS
  '06000600 6cca0000', // WGDEVICE_A_LISTEN_PORT 51820 (u16) + padding
  '70000880', // WGDEVICE_A_PEERS | NLA_F_NESTED, 112 bytes
  '6c000080', //   peer 0 | NLA_F_NESTED, 108 bytes
  '24000100',
  key(0x11), //     WGPEER_A_PUBLIC_KEY
  '08000300 02000000', //     WGPEER_A_FLAGS WGPEER_F_REPLACE_ALLOWEDIPS
  '14000400 0200 ca6c c0000201 0000000000000000', //     WGPEER_A_ENDPOINT sockaddr_in 192.0.2.1:51820
  '06000500 19000000', //     WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL 25
  '20000980', //     WGPEER_A_ALLOWEDIPS | NLA_F_NESTED, 32 bytes
  '1c000080', //       allowed IP 0 | NLA_F_NESTED, 28 bytes
  '06000100 02000000', //         WGALLOWEDIP_A_FAMILY AF_INET
  '08000200 0a000002', //         WGALLOWEDIP_A_IPADDR 10.0.0.2
  '05000300 20000000', //         WGALLOWEDIP_A_CIDR_MASK 32
);

describe('the wireguard generic netlink family', () => {
  it('encodes WG_CMD_SET_DEVICE as wireguard.h documents it', () => {
    const [message, ...rest] = setDeviceMessages('wg0', {
      listenPort: 51820,
      replacePeers: true,
      peers: [
        {
          publicKey: key(0x11),
          endpoint: '192.0.2.1:51820',
          persistentKeepalive: 25,
          replaceAllowedIPs: true,
          allowedIPs: ['10.0.0.2/32'],
        },
      ],
    });
    expect(rest).toEqual([]);
    expect(encode(message!).toString('hex')).toBe(documentedSetDevice.toString('hex'));
  });

  it('encodes an IPv6 endpoint as sockaddr_in6 and a removal as WGPEER_F_REMOVE_ME only', () => {
    const [message] = setDeviceMessages('wg1', {
      peers: [
        { publicKey: key(0x22), endpoint: '[2001:db8::1]:443', allowedIPs: ['fd00::/64'] },
        { publicKey: key(0x33), remove: true, endpoint: '192.0.2.9:1' },
      ],
    });
    const peers = message!.peers as Record<string, unknown>[];
    expect(peers[1]).toEqual({ publicKey: key(0x33), flags: WGPEER_F.REMOVE_ME });
    const encoded = encode(message!);
    const sockaddr6 = bytes('20000400 0a00 01bb 00000000 20010db8000000000000000000000001 00000000');
    expect(encoded.includes(sockaddr6)).toBe(true);
    const decoded = deviceAttrs.decode(encoded, 0, encoded.length, {});
    expect((decoded.peers as Record<string, unknown>[])[0]).toMatchObject({
      endpoint: '[2001:db8::1]:443',
      allowedIPs: [{ family: 10, address: 'fd00::', cidr: 64 }],
    });
  });

  it('decodes a GET_DEVICE reply and merges peers continued in the next message', () => {
    const first = deviceAttrs.decode(documentedSetDevice, 0, documentedSetDevice.length, {});
    const continued = encode({
      ifname: 'wg0',
      peers: [{ publicKey: key(0x11), allowedIPs: [{ family: 2, address: '10.9.0.0', cidr: 16 }] }],
    });
    const second = deviceAttrs.decode(continued, 0, continued.length, {});
    const device = mergeGetDevice('wg0', [
      { ...first, privateKey: Buffer.alloc(32), publicKey: key(0x44) },
      second,
    ]);
    expect(device.listenPort).toBe(51820);
    expect(device.privateKey).toBeUndefined();
    expect(device.publicKey).toEqual(key(0x44));
    expect(device.peers).toHaveLength(1);
    expect(device.peers[0]).toMatchObject({
      endpoint: '192.0.2.1:51820',
      persistentKeepalive: 25,
      allowedIPs: ['10.0.0.2/32', '10.9.0.0/16'],
    });
  });

  it('splits many peers over several messages, each under the attribute size limit', () => {
    const peers = Array.from({ length: 600 }, (_, i) => ({
      publicKey: Buffer.alloc(32, i % 256).fill(i >> 8, 0, 1),
      endpoint: `192.0.2.${i % 250}:51820`,
      replaceAllowedIPs: true,
      allowedIPs: [`10.${i >> 8}.${i & 255}.1/32`],
    }));
    const messages = setDeviceMessages('wg0', { privateKey: key(0x55), replacePeers: true, peers });
    expect(messages.length).toBeGreaterThan(1);
    expect(messages[0]).toMatchObject({ ifname: 'wg0', flags: WGDEVICE_F.REPLACE_PEERS });
    for (const m of messages.slice(1)) expect(Object.keys(m).sort()).toEqual(['ifname', 'peers']);
    expect(messages.flatMap((m) => m.peers as unknown[])).toHaveLength(600);
    for (const m of messages) expect(encode(m).length).toBeLessThan(65_535);
  });

  it("continues a peer's allowed IPs in later messages without its flags", () => {
    const allowedIPs = Array.from({ length: 2000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    const messages = setDeviceMessages('wg0', {
      peers: [{ publicKey: key(0x66), replaceAllowedIPs: true, allowedIPs }],
    });
    expect(messages.length).toBeGreaterThan(1);
    const fragments = messages.flatMap((m) => m.peers as Record<string, unknown>[]);
    expect(fragments[0]!.flags).toBe(WGPEER_F.REPLACE_ALLOWEDIPS);
    for (const f of fragments.slice(1)) expect(Object.keys(f).sort()).toEqual(['allowedIPs', 'publicKey']);
    expect(fragments.flatMap((f) => f.allowedIPs as unknown[])).toHaveLength(2000);
    const merged = mergeGetDevice(
      'wg0',
      messages.map((m) => {
        const b = encode(m);
        return deviceAttrs.decode(b, 0, b.length, {});
      }),
    );
    expect(merged.peers).toHaveLength(1);
    expect(merged.peers[0]!.allowedIPs).toEqual(allowedIPs);
  });
});
