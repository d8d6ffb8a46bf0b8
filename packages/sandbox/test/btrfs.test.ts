import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { createBtrfsLoop, listSandboxRecords, parseSize, probeSandbox } from '../src/index.js';
import { describeIf, loopsBackedBy, mountPoints, settle } from './helpers.js';

const run = promisify(execFile);
const probe = probeSandbox();

it('parseSize reads bytes and binary units, and refuses nonsense', () => {
  expect(parseSize(4096)).toBe(4096);
  expect(parseSize('512M')).toBe(512 * 2 ** 20);
  expect(parseSize('1G')).toBe(2 ** 30);
  expect(parseSize('1.5GiB')).toBe(1.5 * 2 ** 30);
  expect(parseSize('2k')).toBe(2048);
  for (const bad of ['', 'lots', '-1M', '1X', 0, -5, 1.5])
    expect(() => parseSize(bad)).toThrow(
      expect.objectContaining({ code: 'OPDBUS_ERR_SANDBOX_INVALID_OPTION' }),
    );
});

it('createBtrfsLoop refuses a size btrfs cannot use, before touching anything', async () => {
  await expect(createBtrfsLoop({ size: '16M' })).rejects.toMatchObject({
    code: 'OPDBUS_ERR_SANDBOX_INVALID_OPTION',
  });
});

describeIf(probe.btrfs, 'createBtrfsLoop', () => {
  it('mounts a real btrfs on a loop device; destroy unmounts, frees the loop device and removes the files', async () => {
    const fs = await createBtrfsLoop({ size: '256M', label: 'sbxtest' });
    expect(fs.sizeBytes).toBe(256 * 2 ** 20);
    expect(statSync(fs.image).size).toBe(fs.sizeBytes);
    expect(mountPoints()).toContain(fs.mountPoint);
    expect(fs.loopDevice).toMatch(/^\/dev\/loop\d+$/);
    expect(loopsBackedBy(fs.image)).toEqual([basename(fs.loopDevice)]);
    // It is btrfs: subvolumes work, and the label was applied.
    await run('btrfs', ['subvolume', 'create', `${fs.mountPoint}/data`]);
    expect((await run('btrfs', ['subvolume', 'list', fs.mountPoint])).stdout).toMatch(/path data$/m);
    expect(statSync(`${fs.mountPoint}/data`).ino).toBe(256);
    expect((await run('btrfs', ['filesystem', 'label', fs.mountPoint])).stdout.trim()).toBe('sbxtest');

    await fs.destroy();
    expect(mountPoints()).not.toContain(fs.mountPoint);
    expect(loopsBackedBy(fs.image)).toEqual([]);
    expect(existsSync(fs.dir)).toBe(false);
    expect(listSandboxRecords().some((r) => r.record.id === fs.id)).toBe(false);
    await fs.destroy(); // idempotent
  });

  it('destroys a busy filesystem (a file held open on it) without leaving it mounted', async () => {
    const fs = await createBtrfsLoop({ size: '128M' });
    const handle = await open(`${fs.mountPoint}/held`, 'w');
    try {
      await fs.destroy();
      // Detached lazily: gone from the mount table and the directory is removed ...
      expect(mountPoints()).not.toContain(fs.mountPoint);
      expect(existsSync(fs.dir)).toBe(false);
    } finally {
      await handle.close();
    }
    // ... and the loop device is released once the last user closed its file.
    expect(await settle(() => loopsBackedBy(fs.image).length === 0)).toBe(true);
  });
});
