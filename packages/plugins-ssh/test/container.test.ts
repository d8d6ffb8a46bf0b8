import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine, OpdbusError, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { usersPlugin } from '@opdbus/plugins-users';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sshPlugin } from '../src/plugin.js';
import { SSHD_DROPIN } from '../src/sshd.js';
import { makeKey } from './fixture.js';

/** The image shared with the other issue-21 plugins: one debootstrap for all of them. */
const ISSUE_21_PACKAGES = ['accountsservice', 'openssh-server', 'systemd-resolved', 'packagekit', 'polkitd'];

// A booted Debian with openssh-server: the drop-in is checked with its sshd -t before it is put in
// place, and its sshd -T (the effective configuration) shows the settings.
describeIf(probeSandbox().container, 'ssh in a systemd-nspawn container with openssh-server', () => {
  let ct: SystemdContainer;
  let engine: Engine;
  let registry: PluginRegistry;
  const doc = (plugins: Record<string, unknown>) =>
    parseStateDocument(JSON.stringify({ version: 1, plugins }), { source: 'ssh.yaml', registry });

  beforeAll(async () => {
    ct = await startSystemdContainer({ packages: ISSUE_21_PACKAGES });
    registry = new PluginRegistry([usersPlugin, sshPlugin]);
    engine = new Engine({
      registry,
      stateDir: join(ct.rootDir, '..', 'opdbus-state'),
      target: { root: ct.rootDir, busAddress: ct.busAddress },
    });
  }, 600_000);
  afterAll(async () => {
    await ct?.stop();
  });

  it("creates a user with keys and sshd settings that the container's sshd takes", async () => {
    const key = await makeKey(join(ct.rootDir, 'tmp'), 'alice');
    const result = await engine.apply(
      doc({
        users: {
          groups: { staff: {} },
          users: { alice: { uid: 2100, groups: ['staff'], createHome: true, shell: '/bin/bash' } },
        },
        ssh: {
          authorizedKeys: { alice: [{ key, options: ['from="10.0.0.0/8"'] }] },
          sshd: {
            PasswordAuthentication: false,
            PermitRootLogin: 'no',
            MaxAuthTries: 2,
            AllowGroups: ['staff'],
          },
        },
      }),
    );
    expect(result.status).toBe('committed');
    const effective = (await ct.exec('sshd', ['-T'], { check: true })).stdout;
    expect(effective).toMatch(/^passwordauthentication no$/m);
    expect(effective).toMatch(/^permitrootlogin no$/m);
    expect(effective).toMatch(/^maxauthtries 2$/m);
    expect(effective).toMatch(/^allowgroups staff$/m);
    // sshd's own view of the key: ssh-keygen inside the container reads the file alice owns.
    expect(
      (
        await ct.exec('stat', ['-c', '%U %a', '/home/alice/.ssh', '/home/alice/.ssh/authorized_keys'], {
          check: true,
        })
      ).stdout,
    ).toBe('alice 700\nalice 600\n');
    expect(
      (await ct.exec('ssh-keygen', ['-lf', '/home/alice/.ssh/authorized_keys'], { check: true })).stdout,
    ).toContain('alice@test');
  });

  it('a value sshd -t refuses is not put in place, and the whole transaction is rolled back', async () => {
    const before = await readFile(join(ct.rootDir, SSHD_DROPIN), 'utf8');
    const err = await engine
      .apply(
        doc({
          users: { users: { mallory: { uid: 2666 } } },
          ssh: { sshd: { AuthenticationMethods: ['publickey,bogus-method'] } },
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdbusError);
    expect((err as OpdbusError).message).toMatch(/sshd -t refused the drop-in/);
    expect(await readFile(join(ct.rootDir, SSHD_DROPIN), 'utf8')).toBe(before);
    expect((await ct.exec('getent', ['passwd', 'mallory'])).code).toBe(2);
  });
});
