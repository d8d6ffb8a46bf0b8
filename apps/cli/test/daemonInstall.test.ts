// `opdbus daemon install` against systemd booted in a container: the CLI (on the host, with --bus
// and --root pointing into the container) writes opdbusd.service, enables and starts it through
// the systemd plugin; the unit, hardening included, runs opdbusd inside the container (the checkout
// and node are bound in read-only), reaches active only after READY=1 (Type=notify), and when its
// watchdog pings stop (SIGSTOP) systemd restarts it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeSandbox, startSystemdContainer, type SystemdContainer } from '@opdbus/sandbox';
import { describeIf } from '@opdbus/sandbox/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from './helpers.js';

const probe = probeSandbox();
const checkout = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const daemonBin = join(checkout, 'apps/daemon/dist/bin.js');
const desired =
  'version: 1\nplugins:\n  network:\n    links:\n      - { name: br-unit, kind: bridge, state: up }\n';

describeIf(probe.container, 'opdbus daemon install: opdbusd.service under systemd in a container', () => {
  let ct: SystemdContainer;
  let stateDir: string;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'opdbus-daemon-install-'));
    ct = await startSystemdContainer({
      bindReadOnly: [checkout, process.execPath],
      files: { '/etc/opdbus/desired.yaml': desired },
    });
  }, 600_000);
  afterAll(async () => {
    await ct?.destroy();
    await rm(stateDir, { recursive: true, force: true });
  });

  /** Unit properties, from the container's systemd. */
  async function show(): Promise<Record<string, string>> {
    const r = await ct.exec(
      'systemctl',
      [
        'show',
        'opdbusd.service',
        '-p',
        'ActiveState,SubState,MainPID,NRestarts,Type,StatusText,WatchdogUSec',
      ],
      { check: true },
    );
    return Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
  }

  it('installs and starts the unit (active after READY=1), and systemd restarts it when its watchdog stops', async () => {
    const installed = await runCli([
      '--state-dir',
      stateDir,
      '--bus',
      ct.busAddress,
      '--root',
      ct.rootDir,
      'daemon',
      'install',
      '--opdbusd',
      daemonBin,
      '--mode',
      'enforce',
      '--watchdog-sec',
      '5',
    ]);
    expect(installed.code, installed.stderr + installed.stdout).toBe(0);

    // StartUnit's job ended `done`: for Type=notify that is after READY=1, i.e. after the first sync.
    const first = await show();
    expect(first).toMatchObject({
      ActiveState: 'active',
      SubState: 'running',
      Type: 'notify',
      WatchdogUSec: '5s',
    });
    expect(first.StatusText).toMatch(/^watching; 0 drifted, 0 on hold/);
    // Under the unit's hardening it does its job: the bridge of the desired state is there and up.
    const link = await ct.exec('ip', ['-br', 'link', 'show', 'br-unit'], { check: true });
    expect(link.stdout).toMatch(/^br-unit\s+(UP|UNKNOWN)/);
    expect((await ct.exec('systemctl', ['is-enabled', 'opdbusd.service'])).stdout.trim()).toBe('enabled');

    // Its event loop stops (SIGSTOP): no more WATCHDOG=1, and systemd restarts it.
    const pid = first.MainPID!;
    await ct.exec('systemctl', ['kill', '--kill-whom=main', '--signal=SIGSTOP', 'opdbusd.service'], {
      check: true,
    });
    let now = await show();
    while (!(
      now.NRestarts !== '0' &&
      now.ActiveState === 'active' &&
      now.MainPID !== pid &&
      now.MainPID !== '0'
    )) {
      expect(['active', 'activating', 'deactivating', 'failed']).toContain(now.ActiveState);
      await new Promise((resolve) => setTimeout(resolve, 250));
      now = await show();
    }
    expect(Number(now.NRestarts)).toBeGreaterThanOrEqual(1);
    const journal = await ct.exec('journalctl', ['-u', 'opdbusd.service', '--no-pager', '-o', 'cat']);
    expect(journal.stdout).toMatch(/[Ww]atchdog timeout/);
  }, 300_000);
});
