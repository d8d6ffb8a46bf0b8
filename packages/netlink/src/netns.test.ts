import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { isOpdbusError } from '@opdbus/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  NETNS_RUN_DIR,
  Netns,
  createNamedNetns,
  deleteNamedNetns,
  listNamedNetns,
  netnsPath,
  openNetns,
} from './index.js';
import { describeAsRoot } from '../test/helpers.js';

const created: string[] = [];

/** A unique, recognisable namespace name; deleted after each test. */
function freshName(): string {
  const name = `opdbus-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  created.push(name);
  return name;
}

afterEach(() => {
  for (const name of created.splice(0)) deleteNamedNetns(name);
});

/** The thrown value of `fn`, to check its code and message. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

const here = (): string => readlinkSync('/proc/thread-self/ns/net');

describe('netnsPath', () => {
  it('resolves names, paths and pid:N', () => {
    expect(netnsPath('blue')).toBe(`${NETNS_RUN_DIR}/blue`);
    expect(netnsPath('/proc/1/ns/net')).toBe('/proc/1/ns/net');
    expect(netnsPath('pid:42')).toBe('/proc/42/ns/net');
  });

  it('refuses names that are not namespace names', () => {
    for (const bad of ['', '.', '..', 'a/b', 'x'.repeat(65), 'sp ace', 'pid:abc']) {
      const err = thrown(() => netnsPath(bad));
      expect(isOpdbusError(err, 'OPDBUS_ERR_NETNS'), bad).toBe(true);
      expect((err as Error).message).toContain('is not a network namespace name');
    }
  });
});

describeAsRoot('named namespaces (root)', () => {
  it('createNamedNetns makes a separate namespace, mounted under /run/netns, loopback up', () => {
    const name = freshName();
    const ns = createNamedNetns(name);
    try {
      expect(ns.name).toBe(name);
      expect(ns.path).toBe(`${NETNS_RUN_DIR}/${name}`);
      expect(listNamedNetns()).toContain(name);
      const inode = statSync(ns.path).ino;
      expect(here()).not.toBe(`net:[${inode}]`);
      // Inside run(), the calling thread is in the namespace; afterwards it is back home.
      const home = here();
      expect(ns.run(() => here())).toBe(`net:[${inode}]`);
      expect(here()).toBe(home);
      // A child spawned inside run() lives in the namespace.
      const links = ns.run(() => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }));
      expect(links.trim().split('\n')).toHaveLength(1);
      expect(links).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
    } finally {
      ns.close();
    }
  });

  it('loopbackUp: false leaves loopback down', () => {
    const ns = createNamedNetns(freshName(), { loopbackUp: false });
    try {
      expect(ns.run(() => execFileSync('ip', ['-o', 'link', 'show', 'lo'], { encoding: 'utf8' }))).toMatch(
        /<LOOPBACK>/,
      );
    } finally {
      ns.close();
    }
  });

  it('a /proc/sys/net value written inside run() changes only the namespace', () => {
    const ns = createNamedNetns(freshName());
    try {
      const file = '/proc/sys/net/ipv4/ip_default_ttl';
      const host = readFileSync(file, 'utf8').trim();
      const value = host === '77' ? '78' : '77';
      ns.run(() => writeFileSync(file, value));
      expect(ns.run(() => readFileSync(file, 'utf8').trim())).toBe(value);
      expect(readFileSync(file, 'utf8').trim()).toBe(host);
    } finally {
      ns.close();
    }
  });

  it('Netns.open finds a namespace by name, path and pid:N', () => {
    const name = freshName();
    createNamedNetns(name).close();
    const inode = statSync(`${NETNS_RUN_DIR}/${name}`).ino;
    for (const spec of [name, `${NETNS_RUN_DIR}/${name}`]) {
      using ns = Netns.open(spec);
      expect(ns.run(() => here())).toBe(`net:[${inode}]`);
    }
    using self = openNetns(`pid:${process.pid}`);
    expect(self.path).toBe(`/proc/${process.pid}/ns/net`);
    expect(self.run(() => here())).toBe(readlinkSync('/proc/self/ns/net'));
  });

  it('run returns the value, propagates errors and always returns home', () => {
    using ns = createNamedNetns(freshName());
    const home = here();
    expect(ns.run(() => 42)).toBe(42);
    expect(() =>
      ns.run(() => {
        throw new RangeError('inside');
      }),
    ).toThrow(RangeError);
    expect(here()).toBe(home);
  });

  it('run rejects an async function, and the thread is back home', () => {
    using ns = createNamedNetns(freshName());
    const home = here();
    const err = thrown(() => ns.run(async () => Promise.resolve(1)));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain('synchronous function');
    expect(here()).toBe(home);
  });

  it('run after close fails with OPDBUS_ERR_NETNS', () => {
    const ns = createNamedNetns(freshName());
    ns.close();
    ns.close(); // closing twice is fine
    const err = thrown(() => ns.run(() => 1));
    expect(isOpdbusError(err, 'OPDBUS_ERR_NETNS')).toBe(true);
    expect((err as Error).message).toContain('was closed');
  });

  it('deleteNamedNetns removes the namespace; deleting a missing one is a no-op', () => {
    const name = freshName();
    createNamedNetns(name).close();
    deleteNamedNetns(name);
    expect(existsSync(`${NETNS_RUN_DIR}/${name}`)).toBe(false);
    expect(listNamedNetns()).not.toContain(name);
    expect(() => deleteNamedNetns(name)).not.toThrow();
  });

  it('a missing namespace is OPDBUS_ERR_NETNS, saying it does not exist', () => {
    const name = freshName();
    const err = thrown(() => Netns.open(name));
    expect(isOpdbusError(err, 'OPDBUS_ERR_NETNS')).toBe(true);
    expect((err as Error).message).toContain('does not exist');
    expect(
      isOpdbusError(
        thrown(() => Netns.open('pid:999999999')),
        'OPDBUS_ERR_NETNS',
      ),
    ).toBe(true);
  });

  it('a duplicate name is OPDBUS_ERR_NETNS and leaves the existing namespace intact', () => {
    const name = freshName();
    createNamedNetns(name).close();
    const inode = statSync(`${NETNS_RUN_DIR}/${name}`).ino;
    const err = thrown(() => createNamedNetns(name));
    expect(isOpdbusError(err, 'OPDBUS_ERR_NETNS')).toBe(true);
    expect((err as Error).message).toContain('already exists');
    expect(statSync(`${NETNS_RUN_DIR}/${name}`).ino).toBe(inode);
  });

  it('an invalid name or a path outside /run/netns is OPDBUS_ERR_NETNS and creates nothing', () => {
    for (const bad of ['a/b', '..', '', 'x'.repeat(65)]) {
      const err = thrown(() => createNamedNetns(bad));
      expect(isOpdbusError(err, 'OPDBUS_ERR_NETNS'), bad).toBe(true);
      expect((err as Error).message).toContain('is not a network namespace name');
    }
    for (const path of [
      `/tmp/opdbus-test-${process.pid}-netns`,
      `${NETNS_RUN_DIR}/opdbus-test-${process.pid}`,
      `${NETNS_RUN_DIR}/../../tmp/opdbus-test-${process.pid}`,
    ]) {
      const err = thrown(() => createNamedNetns(path));
      expect(isOpdbusError(err, 'OPDBUS_ERR_NETNS'), path).toBe(true);
      expect((err as Error).message).toContain('takes a name');
      expect(existsSync(path)).toBe(false);
      expect(
        isOpdbusError(
          thrown(() => deleteNamedNetns(path)),
          'OPDBUS_ERR_NETNS',
        ),
      ).toBe(true);
    }
  });
});

describe('Netns.open of a path that is not a namespace', () => {
  it('refuses a regular file or a FIFO (without hanging), naming it', () => {
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    try {
      writeFileSync(`${dir}/file`, 'x');
      execFileSync('mkfifo', [`${dir}/fifo`]);
      for (const path of [`${dir}/file`, `${dir}/fifo`]) {
        const err = thrown(() => Netns.open(path));
        expect(isOpdbusError(err, 'OPDBUS_ERR_NETNS'), String(err)).toBe(true);
        expect((err as Error).message).toContain('is not a network namespace file');
      }
    } finally {
      execFileSync('rm', ['-rf', dir]);
    }
  });
});
