import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describePluginConformance } from '@opdbus/sandbox/conformance';
import { createSshPlugin, type SshSection } from '../src/plugin.js';
import { SSHD_DROPIN } from '../src/sshd.js';
import { makeKey, makeRoot } from './fixture.js';

// A throwaway root (--root): alice's authorized_keys and the sshd drop-in.
describePluginConformance<SshSection>(createSshPlugin(), async () => {
  const { root, keys, remove } = await makeRoot();
  const laptop = await makeKey(keys, 'laptop');
  const backup = await makeKey(keys, 'backup', 'rsa');
  const other = await makeKey(keys, 'other');
  const ghost = await makeKey(keys, 'ghost');
  return {
    target: { root },
    desired: {
      authorizedKeys: {
        alice: [
          { key: laptop },
          {
            key: backup,
            options: ['from="10.0.0.0/8,192.168.1.*"', 'command="/usr/bin/backup --serve"', 'no-pty'],
          },
        ],
      },
      sshd: {
        PasswordAuthentication: false,
        PermitRootLogin: 'prohibit-password',
        MaxAuthTries: 3,
        AllowUsers: ['alice', 'backup@10.0.0.*'],
      },
    },
    // alice's key is written, then a key for a user that does not exist fails: rolled back.
    failing: { authorizedKeys: { alice: [{ key: other }], nosuchuser: [{ key: ghost }] } },
    drift: () => writeFile(join(root, SSHD_DROPIN), 'PasswordAuthentication yes\n'),
    teardown: remove,
  };
});
