import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLock, StateDir } from '../src/index.js';

const worker = new URL('./fixtures/lockWorker.mjs', import.meta.url).pathname;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'opdbus-lock-test-'));
  await writeFile(join(root, 'counter'), '0');
  await writeFile(join(root, 'events'), '');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function run(args: string[]): {
  child: ChildProcessByStdio<null, Readable, Readable>;
  output: Promise<string>;
} {
  const child = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code, signal) =>
      code === 0 ? resolve(out) : reject(new Error(`lock worker exited with ${code ?? signal}: ${err}`)),
    );
  });
  return { child, output };
}

/** Start a worker that takes the lock and keeps it until killed; resolves once it holds it. */
async function holder(): Promise<ChildProcess> {
  const { child, output } = run(['hold', root]);
  output.catch(() => undefined); // it ends killed
  let out = '';
  for await (const chunk of child.stdout) {
    out += (chunk as Buffer).toString();
    if (out.includes('LOCKED\n')) return child;
  }
  throw new Error('the holding worker exited before it took the lock');
}

/** Replay the section log: how many sections began while another was open, and the most open at once. */
async function replay(): Promise<{ sections: number; overlaps: number; maxHolders: number }> {
  let open = 0;
  let sections = 0;
  let overlaps = 0;
  let maxHolders = 0;
  for (const line of (await readFile(join(root, 'events'), 'utf8')).split('\n')) {
    if (line.startsWith('enter ')) {
      sections++;
      if (open > 0) overlaps++;
      open++;
      maxHolders = Math.max(maxHolders, open);
    } else if (line.startsWith('exit ')) open--;
  }
  return { sections, overlaps, maxHolders };
}

describe('the state directory lock under real concurrency', () => {
  it('4 processes × 150 locked sections (StateDir.lock and FileLock mixed): never two holders', async () => {
    const workers = ['statedir', 'filelock', 'statedir', 'filelock'].map((api) =>
      run(['race', root, '150', api]),
    );
    await Promise.all(workers.map((w) => w.output));
    expect(await replay()).toEqual({ sections: 600, overlaps: 0, maxHolders: 1 });
    // A second holder would also lose read-modify-write updates of the counter.
    expect(await readFile(join(root, 'counter'), 'utf8')).toBe('600');
  });

  it('names a live holder (pid, command, since), and a holder SIGKILLed mid-section releases it', async () => {
    const state = new StateDir(root);
    const child = await holder();
    const probe = await state.lockHolder();
    expect(probe).toMatchObject({
      held: true,
      owner: { pid: child.pid, command: 'lockWorker hold section 0' },
    });
    expect(Date.parse(probe.owner!.since)).not.toBeNaN();
    const refused = await state.lock(0).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toMatchObject({
      code: 'OPDBUS_ERR_LOCKED',
      data: { stateDir: root, pid: child.pid, command: 'lockWorker hold section 0' },
    });
    expect((refused as Error).message).toMatch(
      new RegExp(`locked by pid ${child.pid} \\(lockWorker hold section 0\\) since \\d{4}-`),
    );
    expect(await FileLock.tryAcquire(state.lockPath)).toBeUndefined();

    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    // The kernel dropped the lock with the process: taken at once, no waiting, nothing deleted.
    const inode = (await stat(state.lockPath)).ino;
    const lock = await state.lock(0, { command: 'the test' });
    expect((await stat(state.lockPath)).ino).toBe(inode);
    expect(await state.lockHolder()).toMatchObject({
      held: true,
      owner: { pid: process.pid, command: 'the test' },
    });
    await lock.release();
    expect(await state.lockHolder()).toEqual({ held: false });
  });

  it('a lock file left by a dead owner, or an empty one, is no obstacle and is not removed', async () => {
    const state = new StateDir(root);
    await state.ensure();
    for (const content of [
      JSON.stringify({ pid: 2 ** 22 + 1, startTime: '1', command: 'gone', since: '2020-01-01T00:00:00Z' }),
      '',
    ]) {
      await writeFile(state.lockPath, content);
      const inode = (await stat(state.lockPath)).ino;
      expect(await state.lockHolder()).toEqual({ held: false });
      const lock = await state.lock(0);
      expect((await stat(state.lockPath)).ino).toBe(inode);
      await lock.release();
    }
  });

  it('within one process, a second lock() waits for the first release', async () => {
    const state = new StateDir(root);
    const first = await state.lock(0, { command: 'first' });
    await expect(state.lock(0)).rejects.toMatchObject({
      code: 'OPDBUS_ERR_LOCKED',
      message: expect.stringContaining(`this process (pid ${process.pid}) (first)`) as unknown,
    });
    let taken = false;
    const second = state.lock(60_000).then((lock) => {
      taken = true;
      return lock;
    });
    expect(taken).toBe(false);
    await first.release();
    const lock = await second;
    expect(lock.owner.pid).toBe(process.pid);
    await lock.release();
  });

  it('an aborted wait stops at once', async () => {
    const state = new StateDir(root);
    const held = await state.lock(0);
    const controller = new AbortController();
    const waiting = state.lock(Number.POSITIVE_INFINITY, { signal: controller.signal });
    controller.abort(new Error('no longer needed'));
    await expect(waiting).rejects.toThrow('no longer needed');
    await held.release();
  });
});
