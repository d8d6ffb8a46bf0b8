import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as fsc, closeSync, readSync } from 'node:fs';
import { isOpdbusError } from '@opdbus/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfinedRoot, hasOpenat2 } from './index.js';

let base: string;
let root: string;
let outside: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'opdbus-confined-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(join(root, 'etc', 'systemd', 'system'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'SECRET');
  writeFileSync(join(root, 'etc', 'hostname'), 'inside\n');
  writeFileSync(join(root, 'etc', 'secret'), 'IN-ROOT SECRET');
  // Links a hostile tree can plant: absolute and relative, to a file and to a directory.
  symlinkSync(join(outside, 'secret'), join(root, 'abs-file'));
  symlinkSync('../outside/secret', join(root, 'rel-file'));
  symlinkSync(outside, join(root, 'abs-dir'));
  symlinkSync('/etc/secret', join(root, 'rooted'));
  symlinkSync('hostname', join(root, 'etc', 'name'));
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

function unsafe(fn: () => unknown): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isOpdbusError(err, 'OPDBUS_ERR_PATH_UNSAFE'), String(err)).toBe(true);
}

async function unsafeAsync(promise: Promise<unknown>): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code: 'OPDBUS_ERR_PATH_UNSAFE' });
}

function readFd(fd: number): string {
  const buf = Buffer.alloc(256);
  const n = readSync(fd, buf, 0, buf.length, 0);
  closeSync(fd);
  return buf.subarray(0, n).toString('utf8');
}

for (const forceFallback of [false, true]) {
  describe(`ConfinedRoot (${forceFallback ? 'portable fallback' : hasOpenat2() ? 'openat2' : 'fallback: no openat2 here'})`, () => {
    it('beneath: refuses .., absolute paths and links that lead out; reads what is inside', async () => {
      using r = ConfinedRoot.open(root, { forceFallback });
      expect(readFd(r.openSync('etc/hostname', fsc.O_RDONLY))).toBe('inside\n');
      expect(readFd(r.openSync('etc/name', fsc.O_RDONLY))).toBe('inside\n');
      for (const path of [
        '../outside/secret',
        'etc/../../outside/secret',
        '/etc/hostname',
        'abs-file',
        'rel-file',
        'abs-dir/secret',
        'rooted',
      ])
        unsafe(() => r.openSync(path, fsc.O_RDONLY));
      await unsafeAsync(r.readFile('etc/../../outside/secret'));
      await unsafeAsync(r.writeFileAtomic('abs-dir/new', 'x'));
      expect(await r.readFile('etc/missing')).toBeNull();
    });

    it('noSymlinks: refuses every link, even one that stays inside', () => {
      using r = ConfinedRoot.open(root, { noSymlinks: true, forceFallback });
      unsafe(() => r.openSync('etc/name', fsc.O_RDONLY));
      expect(readFd(r.openSync('etc/hostname', fsc.O_RDONLY))).toBe('inside\n');
    });

    it('in-root: absolute links and .. resolve inside the root, as under chroot', async () => {
      using r = ConfinedRoot.open(root, { mode: 'in-root', forceFallback });
      expect(await r.readFile('/rooted')).toBe('IN-ROOT SECRET');
      expect(await r.readFile('/../../../etc/hostname')).toBe('inside\n');
      // abs-dir points at the host's ${outside}: inside the root that path does not exist.
      expect(await r.readFile('/abs-dir/secret')).toBeNull();
      expect(r.hostPath('/rooted')).toBe(join(root, 'etc', 'secret'));
      // Names that do not exist yet hang below their nearest existing ancestor, resolved as above.
      expect(r.hostPath('/etc/new/deeper')).toBe(join(root, 'etc', 'new', 'deeper'));
      // A dangling link is followed as the container would: abs-dir's target, inside the root.
      expect(r.hostPath('/abs-dir/new/deeper')).toBe(join(root, outside, 'new', 'deeper'));
    });

    it('writes through the resolved parent: a planted link is replaced, never followed', async () => {
      using r = ConfinedRoot.open(root, { mode: 'in-root', forceFallback });
      symlinkSync(join(outside, 'secret'), join(root, 'etc', 'systemd', 'system', 'x.service'));
      await r.writeFileAtomic('/etc/systemd/system/x.service', '[Unit]\n');
      expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('SECRET');
      expect(lstatSync(join(root, 'etc/systemd/system/x.service')).isFile()).toBe(true);
      // A directory on the way that is an absolute link resolves inside the tree, not on the host.
      symlinkSync('/etc', join(root, 'etc', 'systemd', 'system', 'x.service.d'));
      await r.writeFileAtomic('/etc/systemd/system/x.service.d/opdbus-test-10-a.conf', 'A=1\n');
      expect(readFileSync(join(root, 'etc', 'opdbus-test-10-a.conf'), 'utf8')).toBe('A=1\n');
      expect(() => lstatSync('/etc/opdbus-test-10-a.conf')).toThrow();
      // One that leads to a directory the tree does not have fails; nothing is written outside.
      symlinkSync(outside, join(root, 'etc', 'systemd', 'system', 'y.service.d'));
      await expect(r.writeFileAtomic('/etc/systemd/system/y.service.d/a.conf', 'x')).rejects.toMatchObject({
        code: 'ENOENT',
      });
      expect(() => lstatSync(join(outside, 'a.conf'))).toThrow();
      expect(await r.removeFile('/etc/systemd/system/x.service')).toBe(true);
      expect(await r.removeFile('/etc/systemd/system/x.service')).toBe(false);
      expect(await r.readDir('/etc/systemd/system')).toEqual({
        'x.service.d': 'symlink',
        'y.service.d': 'symlink',
      });
      expect(await r.readDir('/nope')).toBeNull();
    });

    it('refuses names that cannot be created, and NUL bytes', async () => {
      using r = ConfinedRoot.open(root, { mode: 'in-root', forceFallback });
      await unsafeAsync(r.writeFileAtomic('/etc/..', 'x'));
      await unsafeAsync(r.writeFileAtomic('/', 'x'));
      unsafe(() => r.openSync('etc/host\0name', fsc.O_RDONLY));
    });
  });
}
