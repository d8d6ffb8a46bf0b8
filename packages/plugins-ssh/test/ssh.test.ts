import { lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine, OpdbusError, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { usersPlugin } from '@opdbus/plugins-users';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint, parseKeyLine } from '../src/keys.js';
import { sshPlugin, type SshSection } from '../src/plugin.js';
import { SSHD_DROPIN } from '../src/sshd.js';
import { keygenFingerprint, makeKey, makeRoot } from './fixture.js';

let env: Awaited<ReturnType<typeof makeRoot>>;
beforeEach(async () => {
  env = await makeRoot();
});
afterEach(async () => {
  await env.remove();
});

const keyFile = (): string => join(env.root, 'home', 'alice', '.ssh', 'authorized_keys');

function setup(plugins = [sshPlugin] as const): { engine: Engine; registry: PluginRegistry } {
  const registry = new PluginRegistry([...plugins]);
  return {
    registry,
    engine: new Engine({ registry, stateDir: join(env.root, 'state'), target: { root: env.root } }),
  };
}
const doc = (registry: PluginRegistry, plugins: Record<string, unknown>) =>
  parseStateDocument(JSON.stringify({ version: 1, plugins }), { source: 'ssh.yaml', registry });

describe('ssh: authorized keys', () => {
  it('identifies keys by the fingerprint ssh-keygen prints', async () => {
    const pub = await makeKey(env.keys, 'fp', 'ecdsa');
    expect(fingerprint(parseKeyLine(pub)!.blob)).toBe(keygenFingerprint(env.keys, pub));
  });

  it('adds and changes managed keys, leaves other lines alone, with the modes StrictModes wants; rollback gives the bytes back', async () => {
    const laptop = await makeKey(env.keys, 'laptop');
    const { engine, registry } = setup();
    const desired: SshSection = {
      authorizedKeys: { alice: [{ key: laptop, options: ['from="10.1.0.0/16"'] }] },
    };
    expect((await engine.apply(doc(registry, { ssh: desired }))).status).toBe('committed');
    const text = await readFile(keyFile(), 'utf8');
    expect(text.startsWith(env.unmanaged)).toBe(true);
    expect(text.slice(env.unmanaged.length)).toBe(`from="10.1.0.0/16" ${laptop}\n`);
    const [file, dir] = await Promise.all([stat(keyFile()), stat(join(env.root, 'home', 'alice', '.ssh'))]);
    expect([file.mode & 0o777, file.uid, file.gid, dir.mode & 0o777, dir.uid]).toEqual([
      0o600, 2100, 2100, 0o700, 2100,
    ]);
    // Options change in place.
    await engine.apply(
      doc(registry, { ssh: { authorizedKeys: { alice: [{ key: laptop, options: ['restrict'] }] } } }),
    );
    expect(await readFile(keyFile(), 'utf8')).toBe(`${env.unmanaged}restrict ${laptop}\n`);
    await engine.rollback();
    await engine.rollback();
    expect(await readFile(keyFile(), 'utf8')).toBe(env.unmanaged);
  });

  it('refuses to write through a symbolic link', async () => {
    const laptop = await makeKey(env.keys, 'laptop');
    await rm(keyFile());
    await symlink('/etc/shadow', keyFile());
    const { engine, registry } = setup();
    const err = await engine
      .apply(doc(registry, { ssh: { authorizedKeys: { alice: [{ key: laptop }] } } }))
      .catch((e: unknown) => e);
    expect((err as OpdbusError).message).toMatch(/symbolic link/);
    expect((await lstat(keyFile())).isSymbolicLink()).toBe(true);
  });

  it('resolves a home that is an absolute link inside the target root, never on the host', async () => {
    const key = await makeKey(env.keys, 'eve');
    await writeFile(join(env.root, 'etc', 'passwd'), 'eve:x:0:0::/home/eve:/bin/sh\n', { flag: 'a' });
    await mkdir(join(env.root, 'root'), { mode: 0o700 });
    await symlink('/root', join(env.root, 'home', 'eve'));
    const { engine, registry } = setup();
    expect((await engine.apply(doc(registry, { ssh: { authorizedKeys: { eve: [{ key }] } } }))).status).toBe(
      'committed',
    );
    expect(await readFile(join(env.root, 'root', '.ssh', 'authorized_keys'), 'utf8')).toBe(`${key}\n`);
    const host = await readFile('/root/.ssh/authorized_keys', 'utf8').catch(() => '');
    expect(host).not.toContain(key);
  });

  it('refuses bad input at plan time, naming the path', async () => {
    const { registry } = setup();
    const cases: Array<[unknown, RegExp]> = [
      [
        { authorizedKeys: { alice: [{ key: 'ssh-ed25519 not-base64!' }] } },
        /authorizedKeys\.alice\[0\]\.key.*not a public key/s,
      ],
      [{ authorizedKeys: { alice: [{ key: 'hello' }] } }, /TYPE BASE64/],
      [
        { authorizedKeys: { alice: [{ key: await makeKey(env.keys, 'o'), options: ['evil'] }] } },
        /unknown key option/,
      ],
      [{ sshd: { PermitRootLogin: 'maybe' } }, /sshd\.PermitRootLogin/],
      [{ sshd: { Subsystem: 'sftp /bin/sh' } }, /Subsystem/],
      [{ sshd: { AllowUsers: ['alice\nMatch all'] } }, /AllowUsers/],
    ];
    for (const [ssh, pattern] of cases) {
      let err: unknown;
      try {
        doc(registry, { ssh });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(ssh)).toBeInstanceOf(OpdbusError);
      expect((err as Error).message).toMatch(pattern);
    }
  });
});

describe('ssh: sshd drop-in', () => {
  it('writes only known keywords, removes a setting with null and the file when empty', async () => {
    const { engine, registry } = setup();
    await engine.apply(
      doc(registry, { ssh: { sshd: { PasswordAuthentication: false, X11Forwarding: false } } }),
    );
    const file = join(env.root, SSHD_DROPIN);
    expect(await readFile(file, 'utf8')).toMatch(/^PasswordAuthentication no\nX11Forwarding no\n$/m);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    await engine.apply(doc(registry, { ssh: { sshd: { X11Forwarding: null } } }));
    expect(await readFile(file, 'utf8')).not.toContain('X11Forwarding');
    await engine.apply(doc(registry, { ssh: { sshd: { PasswordAuthentication: null } } }));
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });
});

describe('users + ssh in one transaction', () => {
  it('a failure in ssh rolls the users changes back too', async () => {
    const before = {
      passwd: await readFile(join(env.root, 'etc', 'passwd'), 'utf8'),
      group: await readFile(join(env.root, 'etc', 'group'), 'utf8'),
    };
    // bob's ~/.ssh is a link someone planted before bob exists: ssh refuses it after users created bob.
    await mkdir(join(env.root, 'home', 'bob'), { recursive: true, mode: 0o755 });
    await symlink('/root/.ssh', join(env.root, 'home', 'bob', '.ssh'));
    const key = await makeKey(env.keys, 'bob');
    const { engine, registry } = setup([usersPlugin, sshPlugin] as never);
    const err = await engine
      .apply(
        doc(registry, {
          users: {
            groups: { staff: {} },
            users: { bob: { uid: 2200, groups: ['staff'], shell: '/bin/bash' } },
          },
          ssh: { authorizedKeys: { bob: [{ key }] }, sshd: { AllowGroups: ['staff'] } },
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpdbusError);
    expect((err as OpdbusError).code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect((err as OpdbusError).message).toMatch(/symbolic link/);
    expect(await readFile(join(env.root, 'etc', 'passwd'), 'utf8')).toBe(before.passwd);
    expect(await readFile(join(env.root, 'etc', 'group'), 'utf8')).toBe(before.group);
    await expect(stat(join(env.root, SSHD_DROPIN))).rejects.toThrow(/ENOENT/);
  });

  it('commits both, and rolls both back', async () => {
    const key = await makeKey(env.keys, 'carol');
    const { engine, registry } = setup([usersPlugin, sshPlugin] as never);
    const result = await engine.apply(
      doc(registry, {
        users: { users: { carol: { uid: 2300, createHome: true } } },
        ssh: { authorizedKeys: { carol: [{ key }] } },
      }),
    );
    expect(result.status).toBe('committed');
    expect(await readFile(join(env.root, 'home', 'carol', '.ssh', 'authorized_keys'), 'utf8')).toBe(
      `${key}\n`,
    );
    await engine.rollback();
    await expect(stat(join(env.root, 'home', 'carol'))).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(env.root, 'etc', 'passwd'), 'utf8')).not.toContain('carol');
  });
});
