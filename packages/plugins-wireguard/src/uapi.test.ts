import { describe, expect, it } from 'vitest';
import { formatSetRequest, parseGetResponse, uapiErrno } from './uapi.js';

const hex = (h: string): Buffer => Buffer.from(h, 'hex');

describe('UAPI', () => {
  it('formats a set request as the protocol documents it', () => {
    const text = formatSetRequest({
      privateKey: hex('e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a'),
      listenPort: 12912,
      fwmark: 0,
      replacePeers: true,
      peers: [
        {
          publicKey: hex('b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33'),
          presharedKey: hex('188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52'),
          replaceAllowedIPs: true,
          allowedIPs: ['192.168.4.4/32', 'fd00:0::1/128'],
          endpoint: '[abcd:23::33]:51820',
        },
        {
          publicKey: hex('58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376'),
          remove: true,
          endpoint: '182.122.22.19:3233',
        },
        {
          publicKey: hex('662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58'),
          updateOnly: true,
          persistentKeepalive: 25,
          presharedKey: null,
        },
      ],
    });
    expect(text).toBe(
      [
        'set=1',
        'private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a',
        'listen_port=12912',
        'fwmark=0',
        'replace_peers=true',
        'public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33',
        'preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52',
        'endpoint=[abcd:23::33]:51820',
        'replace_allowed_ips=true',
        'allowed_ip=192.168.4.4/32',
        'allowed_ip=fd00::1/128',
        'public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376',
        'remove=true',
        'public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58',
        'update_only=true',
        `preshared_key=${'0'.repeat(64)}`,
        'persistent_keepalive_interval=25',
        '',
        '',
      ].join('\n'),
    );
  });

  it('parses the example get answer of the protocol description', () => {
    const device = parseGetResponse(
      'wg0',
      [
        'private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a',
        'listen_port=12912',
        'public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33',
        'preshared_key=188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52',
        'allowed_ip=192.168.4.4/32',
        'endpoint=[abcd:23::33%2]:51820',
        'public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376',
        'tx_bytes=38333',
        'rx_bytes=2224',
        'allowed_ip=192.168.4.6/32',
        'persistent_keepalive_interval=111',
        'endpoint=182.122.22.19:3233',
        'public_key=662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58',
        'endpoint=5.152.198.39:51820',
        'allowed_ip=192.168.4.10/32',
        'allowed_ip=192.168.4.11/32',
        'tx_bytes=1212111',
        'rx_bytes=1929999999',
        'last_handshake_time_sec=1700000000',
        'last_handshake_time_nsec=500000000',
        'protocol_version=1',
        'errno=0',
        '',
        '',
      ].join('\n'),
    );
    expect(device.listenPort).toBe(12912);
    expect(device.fwmark).toBe(0);
    expect(device.publicKey?.length).toBe(32);
    expect(device.peers.map((p) => p.endpoint)).toEqual([
      '[abcd:23::33]:51820',
      '182.122.22.19:3233',
      '5.152.198.39:51820',
    ]);
    expect(device.peers[0]!.presharedKey?.toString('hex')).toBe(
      '188515093e952f5f22e865cef3012e72f8b5f0b598ac0309d5dacce3b70fcf52',
    );
    expect(device.peers[1]).toMatchObject({ persistentKeepalive: 111, txBytes: 38333n, rxBytes: 2224n });
    expect(device.peers[2]!.allowedIPs).toEqual(['192.168.4.10/32', '192.168.4.11/32']);
    expect(device.peers[2]!.lastHandshakeMs).toBe(1_700_000_000_500);
    expect(device.peers[1]!.presharedKey).toBeUndefined();
  });

  it('keeps the errno of an error answer', () => {
    expect(() => parseGetResponse('wg0', 'errno=-22\n\n')).toThrow(/errno=-22 \(EINVAL/);
    expect(uapiErrno(-98, 'set', 'wg1').data).toMatchObject({ errno: 'EADDRINUSE', errnoNumber: 98 });
  });
});
