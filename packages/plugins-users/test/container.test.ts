import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createUsersPlugin, usersPlugin, type UsersSection } from '../src/plugin.js';
import { HASH } from './fixture.js';

/** The image shared with the other issue-21 plugins: one debootstrap for all of them. */
export const ISSUE_21_PACKAGES = [
  'accountsservice',
  'openssh-server',
  'systemd-resolved',
  'packagekit',
  'polkitd',
];

// A booted Debian (systemd, glibc NSS, shadow-utils, AccountsService): what op-dbus writes under its
// root is read back by the container's own getent, id and AccountsService.
describeIf(
  probeSandbox().container,
  'users in a systemd-nspawn container, read back by getent and AccountsService',
  () => {
    let ct: SystemdContainer;
    let engine: Engine;
    let registry: PluginRegistry;
    const doc = (users: UsersSection) =>
      parseStateDocument(JSON.stringify({ version: 1, plugins: { users } }), {
        source: 'users.yaml',
        registry,
      });

    beforeAll(async () => {
      ct = await startSystemdContainer({ packages: ISSUE_21_PACKAGES });
      registry = new PluginRegistry([usersPlugin]);
      engine = new Engine({
        registry,
        stateDir: join(ct.rootDir, '..', 'opdbus-state'),
        target: { root: ct.rootDir, busAddress: ct.busAddress },
      });
    }, 600_000);
    afterAll(async () => {
      await ct?.stop();
    });

    it('creates a group and a user that getent, id and AccountsService see; rollback removes them', async () => {
      const result = await engine.apply(
        doc({
          groups: { ops: { gid: 2500 } },
          users: {
            alice: {
              uid: 2100,
              groups: ['ops', 'users'],
              comment: 'Alice',
              shell: '/bin/bash',
              createHome: true,
              password: HASH,
            },
          },
        }),
      );
      expect(result.status).toBe('committed');
      expect((await ct.exec('getent', ['passwd', 'alice'], { check: true })).stdout).toBe(
        'alice:x:2100:2100:Alice:/home/alice:/bin/bash\n',
      );
      expect((await ct.exec('getent', ['group', 'ops'], { check: true })).stdout).toBe('ops:x:2500:alice\n');
      expect((await ct.exec('getent', ['shadow', 'alice'], { check: true })).stdout).toMatch(
        new RegExp(`^alice:${HASH.replace(/[$.]/g, '\\$&')}:\\d+:0:99999:7:::\\n$`),
      );
      expect((await ct.exec('id', ['alice'], { check: true })).stdout).toBe(
        'uid=2100(alice) gid=2100(alice) groups=2100(alice),100(users),2500(ops)\n',
      );
      // The skeleton, owned by alice, as `useradd -m` would leave it.
      expect((await ct.exec('stat', ['-c', '%U:%G %a', '/home/alice/.bashrc'], { check: true })).stdout).toBe(
        'alice:alice 644\n',
      );
      // AccountsService (started on demand over the container's bus) reads the same files.
      const found = await ct.exec(
        'busctl',
        [
          'call',
          'org.freedesktop.Accounts',
          '/org/freedesktop/Accounts',
          'org.freedesktop.Accounts',
          'FindUserByName',
          's',
          'alice',
        ],
        { check: true },
      );
      expect(found.stdout).toBe('o "/org/freedesktop/Accounts/User2100"\n');
      // shadow-utils accepts the files: pwck/grpck in read-only mode find nothing to fix.
      expect((await ct.exec('pwck', ['-r', '-q'])).code).toBe(0);
      expect((await ct.exec('grpck', ['-r'])).code).toBe(0);

      expect((await engine.rollback()).status).toBe('rolled-back');
      expect((await ct.exec('getent', ['passwd', 'alice'])).code).toBe(2);
      expect((await ct.exec('getent', ['group', 'ops'])).code).toBe(2);
      expect((await ct.exec('test', ['-e', '/home/alice'])).code).toBe(1);
    });

    it('a user created by useradd inside the container is seen by query, and removed by op-dbus', async () => {
      await ct.exec('useradd', ['-m', '-u', '2300', 'bob'], { check: true });
      const observed = await usersPlugin.query(engine.context('users'), { scope: { users: { bob: {} } } });
      expect(observed.users?.bob).toMatchObject({
        uid: 2300,
        home: '/home/bob',
        createHome: true,
        locked: true,
      });
      expect((await engine.apply(doc({ users: { bob: { state: 'absent' } } }))).status).toBe('committed');
      expect((await ct.exec('getent', ['passwd', 'bob'])).code).toBe(2);
    });
    it('the accountsservice backend: AccountsService creates, changes and removes; rollback gives the bytes back', async () => {
      const plugin = createUsersPlugin({ backend: 'accountsservice' });
      const reg = new PluginRegistry([plugin]);
      const e = new Engine({
        registry: reg,
        stateDir: join(ct.rootDir, '..', 'opdbus-state-accounts'),
        target: { root: ct.rootDir, busAddress: ct.busAddress },
      });
      const asDoc = (users: UsersSection) =>
        parseStateDocument(JSON.stringify({ version: 1, plugins: { users } }), {
          source: 'users.yaml',
          registry: reg,
        });
      expect(await plugin.probe(e.context('users'))).toMatchObject({
        available: true,
        detail: /AccountsService/,
      });
      const passwdBefore = await readFile(join(ct.rootDir, 'etc', 'passwd'), 'utf8');
      const result = await e.apply(
        asDoc({
          users: {
            carol: {
              comment: 'Carol',
              shell: '/bin/bash',
              createHome: true,
              password: HASH,
              groups: ['users'],
            },
          },
        }),
      );
      expect(result.status).toBe('committed');
      // AccountsService made the user (useradd -m: the home from /etc/skel); the files pass added the group.
      const found = await ct.exec(
        'busctl',
        [
          'call',
          'org.freedesktop.Accounts',
          '/org/freedesktop/Accounts',
          'org.freedesktop.Accounts',
          'FindUserByName',
          's',
          'carol',
        ],
        { check: true },
      );
      const userPath = /"([^"]+)"/.exec(found.stdout)![1]!;
      const shell = await ct.exec(
        'busctl',
        ['get-property', 'org.freedesktop.Accounts', userPath, 'org.freedesktop.Accounts.User', 'Shell'],
        { check: true },
      );
      expect(shell.stdout).toBe('s "/bin/bash"\n');
      expect((await ct.exec('getent', ['passwd', 'carol'], { check: true })).stdout).toMatch(
        /^carol:x:\d+:\d+:Carol:\/home\/carol:\/bin\/bash\n$/,
      );
      expect((await ct.exec('id', ['-nG', 'carol'], { check: true })).stdout).toBe('carol users\n');
      expect((await ct.exec('test', ['-f', '/home/carol/.bashrc'])).code).toBe(0);
      // A change of shell goes through AccountsService too.
      await e.apply(asDoc({ users: { carol: { shell: '/bin/sh' } } }));
      expect((await ct.exec('getent', ['passwd', 'carol'], { check: true })).stdout).toMatch(/:\/bin\/sh\n$/);
      await e.rollback();
      await e.rollback();
      expect(await readFile(join(ct.rootDir, 'etc', 'passwd'), 'utf8')).toBe(passwdBefore);
      expect((await ct.exec('getent', ['passwd', 'carol'])).code).toBe(2);
      // Removal through AccountsService: its userdel also removes the user's own group (the files backend keeps it).
      await e.apply(asDoc({ users: { dave: { createHome: true } } }));
      expect((await ct.exec('getent', ['group', 'dave'])).code).toBe(0);
      await e.apply(asDoc({ users: { dave: { state: 'absent' } } }));
      expect((await ct.exec('getent', ['passwd', 'dave'])).code).toBe(2);
      expect((await ct.exec('getent', ['group', 'dave'])).code).toBe(2);
    });
  },
);
