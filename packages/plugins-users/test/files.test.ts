import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine, OpdbusError, PluginRegistry, parseStateDocument } from '@opdbus/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databases, lockPasswordFiles } from '../src/db.js';
import { createUsersPlugin, usersPlugin, type UsersSection } from '../src/plugin.js';
import { HASH, fixtureFiles, makeRoot } from './fixture.js';

let root: string;
let remove: () => Promise<void>;
beforeEach(async () => {
  ({ root, remove } = await makeRoot());
});
afterEach(async () => {
  await remove();
});

const files = async (): Promise<Record<string, string>> =>
  Object.fromEntries(
    await Promise.all(databases.map(async (name) => [name, await readFile(join(root, 'etc', name), 'utf8')])),
  ) as Record<string, string>;

function engine(plugin = usersPlugin): { engine: Engine; registry: PluginRegistry } {
  const registry = new PluginRegistry([plugin]);
  return {
    registry,
    engine: new Engine({ registry, stateDir: join(root, 'state'), target: { root } }),
  };
}

function doc(registry: PluginRegistry, users: UsersSection) {
  return parseStateDocument(JSON.stringify({ version: 1, plugins: { users } }), {
    source: 'users.yaml',
    registry,
  });
}

describe('users: edits keep every other line byte for byte', () => {
  it('creates, updates and rolls back with the exact original bytes, modes and owners', async () => {
    const before = await files();
    const shadowStat = await stat(join(root, 'etc', 'shadow'));
    const { engine: e, registry } = engine();
    const result = await e.apply(
      doc(registry, {
        groups: { ops: {} },
        users: {
          alice: { groups: ['ops', 'adm'], password: HASH, createHome: true, shell: '/bin/bash' },
          daemon: { comment: 'Daemon user' },
        },
      }),
    );
    expect(result.status).toBe('committed');
    const after = await files();
    // Every line of the original that is not alice's, daemon's or a group alice joined is still there, unchanged.
    const touched = /^(alice|daemon|ops|adm|alice):/;
    for (const name of databases) {
      const kept = fixtureFiles[name].split('\n').filter((l) => l !== '' && !touched.test(l));
      for (const line of kept) expect(after[name]!.split('\n')).toContain(line);
    }
    expect(after.group).toMatch(/^adm:x:4:odd,alice$/m);
    expect(after.group!.endsWith('\n')).toBe(false); // the group file had no final newline; it still has none
    expect(after.passwd).toMatch(/^alice:x:2000:2001::\/home\/alice:\/bin\/bash$/m);
    expect(after.passwd).toMatch(/^daemon:x:1:1:Daemon user:\/usr\/sbin:\/usr\/sbin\/nologin$/m);
    expect(after.shadow).toContain(`alice:${HASH}:`);
    const home = await stat(join(root, 'home', 'alice'));
    expect([home.uid, home.gid, home.mode & 0o777]).toEqual([2000, 2001, 0o750]);
    expect(await readFile(join(root, 'home', 'alice', '.config', 'app.conf'), 'utf8')).toBe('x=1\n');
    const st = await stat(join(root, 'etc', 'shadow'));
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([shadowStat.mode & 0o7777, 0, 42]);

    expect((await e.rollback()).status).toBe('rolled-back');
    expect(await files()).toEqual(before);
    await expect(stat(join(root, 'home', 'alice'))).rejects.toThrow(/ENOENT/);
  });
});

describe('users: the shadow-utils lock', () => {
  it('waits for a lckpwdf holder (fcntl on /etc/.pwd.lock) and says who to wait for when it runs out', async () => {
    const python = spawnSync('python3', ['-c', 'import fcntl']);
    if (python.status !== 0) throw new Error('python3 is needed to hold an fcntl lock as lckpwdf does');
    const holder = spawn(
      'python3',
      [
        '-c',
        'import fcntl,sys\nf=open(sys.argv[1],"w")\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint("locked",flush=True)\nsys.stdin.read()',
        join(root, 'etc', '.pwd.lock'),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await once(holder.stdout, 'data');
    const plugin = createUsersPlugin({ lockWaitMs: 200 });
    const { engine: e, registry } = engine(plugin);
    const err = await e.apply(doc(registry, { users: { carol: {} } })).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpdbusError);
    expect((err as OpdbusError).code).toBe('OPDBUS_ERR_APPLY_FAILED');
    expect((err as OpdbusError).message).toMatch(/\.pwd\.lock is held by another program/);
    expect(await readFile(join(root, 'etc', 'passwd'), 'utf8')).toBe(fixtureFiles.passwd);
    holder.stdin.end();
    await once(holder, 'exit');
    expect((await e.apply(doc(registry, { users: { carol: {} } }))).status).toBe('committed');
  });

  it('a real `useradd --root` waits while op-dbus holds the lock, then goes on', async () => {
    const lock = await lockPasswordFiles(root);
    let useradd: ChildProcess | undefined;
    try {
      useradd = spawn('useradd', ['--root', root, 'dave'], { stdio: 'ignore' });
      // useradd blocks in fcntl(F_SETLKW) on our lock: the kernel lists it as a waiter in /proc/locks.
      const lockInode = (await stat(join(root, 'etc', '.pwd.lock'))).ino;
      for (;;) {
        const locks = await readFile('/proc/locks', 'utf8');
        if (locks.split('\n').some((l) => l.includes('->') && l.includes(`:${lockInode} `))) break;
        if (useradd.exitCode !== null) throw new Error(`useradd exited ${useradd.exitCode} before waiting`);
        await new Promise((r) => setImmediate(r));
      }
      expect(await readFile(join(root, 'etc', 'passwd'), 'utf8')).not.toContain('dave:');
    } finally {
      await lock.release();
    }
    const [code] = (await once(useradd, 'exit')) as [number];
    expect(code).toBe(0);
    expect(await readFile(join(root, 'etc', 'passwd'), 'utf8')).toMatch(/^dave:x:2000:/m);
  });
});

describe('users: bad input is a plan-time error naming the path', () => {
  it('refuses a clear-text password, a DES-looking one and a truncated hash', () => {
    const registry = new PluginRegistry([usersPlugin]);
    for (const password of ['hunter2', 'abcdefghij123', HASH.slice(0, -3)]) {
      let err: unknown;
      try {
        doc(registry, { users: { alice: { password } } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OpdbusError);
      expect((err as Error).message).toContain('users.alice.password');
      expect((err as Error).message).toMatch(/crypt|hash/);
    }
  });

  it('refuses bad names, ":" in fields and relative homes', () => {
    const registry = new PluginRegistry([usersPlugin]);
    const cases: Array<[UsersSection, RegExp]> = [
      [{ users: { 'Bad Name': {} } }, /users/],
      [{ users: { alice: { comment: 'a:b' } } }, /comment/],
      [{ users: { alice: { home: 'home/alice' } } }, /home/],
      [{ users: { alice: { shell: '/bin/../bin/sh' } } }, /shell/],
    ];
    for (const [section, path] of cases) expect(() => doc(registry, section)).toThrow(path);
  });
});

describe('users: names and ids are checked against the files at plan time', () => {
  it('a missing group or a taken uid is a plan error naming the path; nothing is written', async () => {
    const { engine: e, registry } = engine();
    const before = await files();
    const cases: Array<[UsersSection, RegExp]> = [
      [{ users: { alice: { groups: ['users', 'nosuch'] } } }, /users\.alice\.groups\[1\]: no group nosuch/],
      [{ users: { alice: { group: 'nosuch' } } }, /users\.alice\.group: no group nosuch/],
      [{ users: { alice: { uid: 1 } } }, /users\.alice\.uid: uid 1 belongs to user daemon/],
      [{ groups: { ops: { gid: 100 } } }, /groups\.ops\.gid: gid 100 belongs to group users/],
    ];
    for (const [section, message] of cases) {
      const err = await e.plan(doc(registry, section)).catch((x: unknown) => x);
      expect(err, JSON.stringify(section)).toBeInstanceOf(OpdbusError);
      expect((err as Error).message).toMatch(message);
    }
    // A group the same document creates is fine.
    expect(
      (await e.plan(doc(registry, { groups: { ops: {} }, users: { alice: { groups: ['ops'] } } }))).plan
        .changes,
    ).toHaveLength(2);
    expect(await files()).toEqual(before);
  });
});

describe('users: removal', () => {
  it('refuses to remove a user with running processes unless forced', async () => {
    const { engine: e, registry } = engine();
    await e.apply(doc(registry, { users: { erin: { uid: 2777 } } }));
    const sleeper = spawn('setpriv', ['--reuid=2777', '--regid=2777', '--clear-groups', 'sleep', '600'], {
      stdio: 'ignore',
    });
    try {
      await new Promise<void>((resolve, reject) => {
        sleeper.once('spawn', resolve);
        sleeper.once('error', reject);
      });
      // setpriv changes its uid before exec: wait until the process runs as 2777.
      for (;;) {
        const status = await readFile(`/proc/${sleeper.pid}/status`, 'utf8');
        if (/^Uid:\s+2777\s/m.test(status)) break;
        await new Promise((r) => setImmediate(r));
      }
      const err = await e
        .apply(doc(registry, { users: { erin: { state: 'absent' } } }))
        .catch((x: unknown) => x);
      expect((err as OpdbusError).code).toBe('OPDBUS_ERR_APPLY_FAILED');
      expect((err as OpdbusError).message).toMatch(/erin.*running process/);
      expect(await readFile(join(root, 'etc', 'passwd'), 'utf8')).toContain('erin:');
      expect(
        (await e.apply(doc(registry, { users: { erin: { state: 'absent', force: true } } }))).status,
      ).toBe('committed');
      expect(await readFile(join(root, 'etc', 'passwd'), 'utf8')).not.toContain('erin:');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
