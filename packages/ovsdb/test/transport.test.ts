// TCP and TLS transports against ovsdb-server's own remotes, configured the way operators do it:
// a Manager row (ptcp:/pssl:) and, for TLS, the SSL table (ovs-vsctl set-ssl).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeSandbox, startOvs, type OvsSandbox } from '@opdbus/sandbox';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OvsdbClient } from '../src/client.js';
import type { OpenVSwitchTables } from '../src/schemas/openVSwitch.js';
import { describeIf, vsctl } from './helpers.js';
import { itIf, requirement } from '@opdbus/sandbox/testing';

const probe = probeSandbox();
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
})();

/** A CA, and a server and a client certificate it signed (for 127.0.0.1). */
function makeCertificates(dir: string): void {
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=opdbus test CA',
  );
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${who}.key`,
      '-out',
      `${who}.csr`,
      '-subj',
      `/CN=${who}`,
    );
    ssl(
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${who}.pem`,
      '-days',
      '2',
      '-extfile',
      'san.cnf',
    );
  }
}

/** Add a manager (a passive remote of ovsdb-server) and wait until it is bound; returns its port. */
async function listen(ovs: OvsSandbox, client: OvsdbClient, target: string): Promise<number> {
  await vsctl(ovs, '--no-wait', 'set-manager', target);
  const replica = await client
    .database<OpenVSwitchTables>('Open_vSwitch')
    .replica({ Manager: { columns: ['target', 'status'] } });
  try {
    const port = await replica.waitFor(
      () => {
        const manager = replica.rows('Manager').find((m) => m.target === target);
        const bound = manager?.status.get('bound_port');
        return bound === undefined ? undefined : Number(bound);
      },
      { what: `${target} to be bound` },
    );
    return port;
  } finally {
    await replica.close();
  }
}

describeIf(probe.ovsdb, 'transports', () => {
  let ovs: OvsSandbox;
  let local: OvsdbClient;
  let dir: string;

  beforeAll(async () => {
    ovs = await startOvs();
    local = await OvsdbClient.connect(ovs.address);
    dir = mkdtempSync(join(tmpdir(), 'opdbus-ovsdb-tls-'));
  });
  afterAll(async () => {
    await local?.close();
    await ovs?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tcp: talks to ovsdb-server over TCP (a ptcp: manager on loopback), and answers its echo probes', async () => {
    const port = await listen(ovs, local, 'ptcp:0:127.0.0.1');
    // The server probes an idle TCP client every second and drops it after two unanswered probes.
    await vsctl(ovs, '--no-wait', 'set', 'Manager', 'ptcp:0:127.0.0.1', 'inactivity_probe=1000');
    await using tcp = await OvsdbClient.connect({ address: `tcp:127.0.0.1:${port}`, probeIntervalMs: 0 });
    expect(await tcp.listDbs()).toContain('Open_vSwitch');
    expect(await tcp.echo('over tcp')).toEqual(['over tcp']);
    let drops = 0;
    tcp.on('disconnect', () => drops++);
    let probes = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the server sent fewer than 2 probes within 30 s')),
        30_000,
      );
      tcp.on('echo', () => {
        if (++probes === 2) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(drops).toBe(0);
    expect(await tcp.listDbs()).toContain('Open_vSwitch');
  });

  itIf(
    requirement('openssl', hasOpenssl, 'openssl is missing; apt-get install openssl'),
    'ssl: mutual TLS with certificates from the SSL table; a wrong CA is refused',
    async () => {
      makeCertificates(dir);
      await vsctl(
        ovs,
        '--no-wait',
        'set-ssl',
        join(dir, 'server.key'),
        join(dir, 'server.pem'),
        join(dir, 'ca.pem'),
      );
      const port = await listen(ovs, local, 'pssl:0:127.0.0.1');
      const tls = {
        key: readFileSync(join(dir, 'client.key')),
        cert: readFileSync(join(dir, 'client.pem')),
        ca: readFileSync(join(dir, 'ca.pem')),
      };
      await using secure = await OvsdbClient.connect({ address: `ssl:127.0.0.1:${port}`, tls });
      expect(await secure.listDbs()).toContain('Open_vSwitch');
      const schema = await secure.getSchema('Open_vSwitch');
      expect(schema.name).toBe('Open_vSwitch');

      // A client that trusts another CA does not accept the server's certificate.
      const other = mkdtempSync(join(tmpdir(), 'opdbus-ovsdb-tls-other-'));
      try {
        makeCertificates(other);
        await expect(
          OvsdbClient.connect({
            address: `ssl:127.0.0.1:${port}`,
            tls: { ...tls, ca: readFileSync(join(other, 'ca.pem')) },
          }),
        ).rejects.toMatchObject({
          code: 'OPDBUS_ERR_OVSDB_CONNECT',
          message: expect.stringContaining(`ssl:127.0.0.1:${port}`),
        });
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    },
  );
});
