import { spawnSync } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createUsersPlugin, type UsersSection } from '../src/plugin.js';
import { HASH, makeRoot } from './fixture.js';

// The files of a throwaway root (--root), edited under the shadow-utils lock.
describePluginConformance<UsersSection>(createUsersPlugin(), async () => {
  const { root, remove } = await makeRoot();
  await mkdir(join(root, 'srv', 'elsewhere'), { recursive: true });
  await symlink('elsewhere', join(root, 'srv', 'link'));
  return {
    target: { root },
    desired: {
      groups: { ops: { gid: 2500 } },
      users: {
        alice: {
          uid: 2100,
          groups: ['ops', 'users'],
          comment: 'Alice Example',
          shell: '/bin/bash',
          createHome: true,
          password: HASH,
          locked: false,
        },
        daemon: { shell: '/bin/false' },
      },
    },
    // The group is created, then mallory's home would be made through a link: refused, rolled back.
    failing: {
      groups: { web: {} },
      users: { mallory: { groups: ['web'], home: '/srv/link/mallory', createHome: true } },
    },
    drift: () => {
      // shadow-utils changes alice's shell behind op-dbus's back.
      const result = spawnSync('usermod', ['--root', root, '--shell', '/bin/sh', 'alice'], {
        encoding: 'utf8',
      });
      if (result.status !== 0) return Promise.reject(new Error(`usermod failed: ${result.stderr}`));
      return Promise.resolve();
    },
    teardown: remove,
  };
});
