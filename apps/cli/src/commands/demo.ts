import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  OpdbusError,
  isAlive,
  parseStateDocument,
  stringifyStateDocument,
  type Engine,
  type Plan,
  type ProcessIdentity,
  type WatchEvent,
} from '@opdbus/core';
import { verifyLedger } from '@opdbus/ledger';
import { networkPlugin } from '@opdbus/plugins-network';
import { createSysctlPlugin } from '@opdbus/plugins-sysctl';
import { createNetns, type SandboxNetns } from '@opdbus/sandbox';
import { formatEvent, formatPlan } from '../format.js';
import { createEngine, createLogger, ledgerPaths, type GlobalOptions, type Output } from '../runtime.js';

/** The embedded example: what the demo applies inside its namespace. */
export const demoDocument = {
  network: {
    links: [
      { name: 'br0', kind: 'bridge', state: 'up', mtu: 1500 },
      { name: 'veth0', kind: 'veth', peer: 'veth0p', master: 'br0', state: 'up' },
    ],
    addresses: [
      { link: 'br0', address: '10.0.0.1/24' },
      { link: 'br0', address: 'fd00::1/64' },
    ],
    routes: [{ to: '10.9.0.0/16', via: '10.0.0.254', metric: 100 }],
  },
  sysctl: {
    'net.ipv4.ip_forward': 1,
    'net.ipv6.conf.all.forwarding': 1,
    'net.core.somaxconn': 8192,
    'net.ipv4.tcp_rmem': '4096 131072 8388608',
    'net.ipv4.ip_local_port_range': '20000 60999',
  },
} as const;

/** A document whose third change the kernel refuses (ip_local_port_range needs low < high). */
const failingDocument = {
  sysctl: {
    'net.ipv4.ip_default_ttl': 32,
    'net.core.somaxconn': 1024,
    'net.ipv4.ip_local_port_range': '60999 20000',
    'net.ipv4.tcp_fin_timeout': 15,
  },
} as const;

const keys = [...new Set([...Object.keys(demoDocument.sysctl), ...Object.keys(failingDocument.sysctl)])];

/**
 * `opdbus demo`: a tour of op-dbus in a disposable network namespace. It creates the namespace
 * and a temporary state directory, shows query → diff → apply → verify, provokes drift and shows
 * the watch event and the diff, shows a failed apply rolled back and a commit-confirmed apply
 * reverted by its watchdog, then removes everything. The host itself is never changed.
 */
export async function demo(
  global: GlobalOptions,
  options: { keep?: boolean },
  output: Output,
): Promise<number> {
  const say = (text = ''): void => {
    if (!global.json) output.out(text);
  };
  const indent = (text: string): string => text.replace(/^/gm, '    ');
  const results: Record<string, unknown> = {};
  let step = 0;
  const heading = (title: string): void => say(`\n[${++step}/9] ${title}`);

  say('op-dbus demo: everything happens in a disposable network namespace; the host is not changed.');
  heading('Sandbox');
  const stateDir = await mkdtemp(join(tmpdir(), 'opdbus-demo-'));
  let netns: SandboxNetns | undefined;
  try {
    netns = await createNetns();
    say(`    network namespace ${netns.name} (loopback up), state directory ${stateDir}`);
    results.sandbox = { netns: netns.name, stateDir };

    const demoGlobal: GlobalOptions = { ...global, netns: netns.name, stateDir };
    const plugin = createSysctlPlugin({ watchIntervalMs: 100, watchKeys: keys });
    // The CLI's engine (journal, watchdog, ledger), with the plugins the demo uses.
    const engine = await createEngine(demoGlobal, [plugin, networkPlugin], createLogger(global.logLevel));
    const registry = engine.registry;
    let total = 0;
    engine.events.on((event) => {
      if (event.type === 'plan.created') total = event.changes;
      const line = formatEvent(event, total);
      if (line !== undefined) say(indent(line));
    });
    const doc = (plugins: object) =>
      parseStateDocument(JSON.stringify({ version: 1, plugins }), { source: 'demo', registry });
    const showPlan = (plan: Plan): void => say(indent(formatPlan(plan)));

    heading('Query: the namespace as it is now (its links, and the sysctl keys the example names)');
    const before = await engine.query(['network', 'sysctl']);
    const named = Object.fromEntries(keys.map((k) => [k, (before.sysctl as Record<string, string>)[k]]));
    say(indent(stringifyStateDocument({ network: before.network, sysctl: named }).trimEnd()));
    results.before = { network: before.network, sysctl: named };

    heading('Diff: the desired state (embedded example) against the namespace');
    say(indent(stringifyStateDocument(demoDocument).trimEnd()));
    const desired = doc(demoDocument);
    const { plan } = await engine.plan(desired);
    showPlan(plan);
    results.plan = { hash: plan.hash, changes: plan.changes.length };

    heading('Apply: one transaction (checkpoint → journal → apply → verify → commit)');
    const applied = await engine.apply(desired);
    const after = await engine.plan(desired);
    say(
      indent(
        `diff after apply: ${after.plan.changes.length === 0 ? 'no changes' : `${after.plan.changes.length} change(s)!`}`,
      ),
    );
    results.apply = { status: applied.status, txId: applied.txId, residual: after.plan.changes.length };

    heading("Drift: someone sets net.ipv4.ip_forward=0 behind op-dbus's back");
    const event = await new Promise<WatchEvent>((resolve, reject) => {
      let stop: (() => void | Promise<void>) | undefined;
      const timer = setTimeout(
        () => reject(new OpdbusError('OPDBUS_ERR_INTERNAL', 'the drift was not seen within 10 s')),
        10_000,
      );
      engine
        .watch(
          (e) => {
            clearTimeout(timer);
            void Promise.resolve(stop?.()).then(() => resolve(e));
          },
          ['sysctl'],
        )
        .then(async (unsubscribe) => {
          stop = unsubscribe;
          // Out of band: a direct write in the namespace, as an administrator's `sysctl -w` would do.
          const { writeFileSync, openSync, closeSync } = await import('node:fs');
          const fd = netns!.run(() => openSync('/proc/sys/net/ipv4/ip_forward', 'w'));
          writeFileSync(fd, '0');
          closeSync(fd);
        }, reject);
    });
    say(indent(`watch event: ${event.detail ?? event.resource ?? ''}`));
    const drift = await engine.plan(desired);
    say(indent('diff now shows the drift:'));
    showPlan(drift.plan);
    say(indent('apply again corrects it:'));
    await engine.apply(desired);
    results.drift = { event: event.detail, changes: drift.plan.changes.length };

    heading('A failed apply is rolled back: the kernel refuses change 3 of 4');
    say(indent(stringifyStateDocument(failingDocument).trimEnd()));
    const beforeFail = await engine.query(['sysctl']);
    let failure: OpdbusError | undefined;
    try {
      await engine.apply(doc(failingDocument));
    } catch (err) {
      if (!(err instanceof OpdbusError)) throw err;
      failure = err;
    }
    const afterFail = await engine.query(['sysctl']);
    const unchanged = keys.every(
      (k) =>
        (beforeFail.sysctl as Record<string, string>)[k] === (afterFail.sysctl as Record<string, string>)[k],
    );
    say(indent(`result: ${failure?.code ?? 'no error?!'}; every key as before: ${unchanged ? 'yes' : 'NO'}`));
    results.failedApply = { code: failure?.code, restored: unchanged };

    heading('Commit-confirmed: apply with a 2 s confirm timeout and do not confirm');
    const confirmDoc = doc({ sysctl: { 'net.core.somaxconn': 4242 } });
    const pending = await engine.apply(confirmDoc, { confirmTimeoutS: 2 });
    say(
      indent(
        `pending until ${pending.deadline ?? '?'}; watchdog pid ${pending.record?.confirm?.watchdog?.pid ?? '?'} (a separate process)`,
      ),
    );
    const reverted = await waitForStatus(engine, pending.txId!, 20_000);
    // The watchdog still records the rollback in the ledger after the journal says rolled-back:
    // let it finish before the state directory goes away.
    const watchdog = pending.record?.confirm?.watchdog;
    if (watchdog !== undefined) await waitForExit(watchdog, 20_000);
    const somaxconn = ((await engine.query(['sysctl'])).sysctl as Record<string, string>)[
      'net.core.somaxconn'
    ];
    say(indent(`watchdog: transaction ${reverted}; net.core.somaxconn is back to ${somaxconn}`));
    results.commitConfirmed = { status: reverted, somaxconn };

    heading('Ledger: every plan, apply, rollback and confirm, in a signed transparency log');
    const report = await verifyLedger(ledgerPaths(stateDir).ledgerDir);
    say(
      indent(
        `${report.size} entries, root ${report.root.slice(0, 16)}…, ${report.checkpoints} signed checkpoint(s): ${report.ok ? 'verifies' : `DOES NOT VERIFY (${report.tampering?.message ?? ''})`}`,
      ),
    );
    results.ledger = { ok: report.ok, size: report.size };

    heading('Journal');
    for (const r of await engine.transactions())
      say(indent(`${r.txId}  ${r.status.padEnd(12)} ${r.restore ? `(${r.restore.reason})` : ''}`));

    const ok =
      report.ok &&
      applied.status === 'committed' &&
      after.plan.changes.length === 0 &&
      drift.plan.changes.length > 0 &&
      failure?.code === 'OPDBUS_ERR_APPLY_FAILED' &&
      unchanged &&
      reverted === 'rolled-back';
    results.ok = ok;
    if (global.json) output.out(JSON.stringify(results, null, 2));
    else say(`\nDemo ${ok ? 'complete' : 'FAILED'}.`);
    return ok ? 0 : 1;
  } finally {
    if (options.keep) {
      say(
        `\nKept: namespace ${netns?.name ?? '?'} and ${stateDir} (remove with \`ip netns delete ${netns?.name ?? ''}\` and \`rm -r ${stateDir}\`).`,
      );
    } else {
      await netns?.destroy();
      await rm(stateDir, { recursive: true, force: true });
      say('Cleaned up: namespace and state directory removed.');
    }
  }
}

/** Wait for a transaction to leave pending-confirm (the watchdog acts on its own deadline). */
async function waitForStatus(engine: Engine, txId: string, timeoutMs: number): Promise<string> {
  const { watch } = await import('node:fs');
  return new Promise((resolve, reject) => {
    const watcher = watch(engine.state.transactionsDir);
    const timer = setTimeout(() => {
      watcher.close();
      reject(
        new OpdbusError('OPDBUS_ERR_INTERNAL', `transaction ${txId} was not reverted within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const check = (): void => {
      engine.state.read(txId).then((r) => {
        if (r.status === 'rolled-back' || r.status === 'restore-failed' || r.status === 'committed') {
          clearTimeout(timer);
          watcher.close();
          resolve(r.status);
        }
      }, reject);
    };
    watcher.on('change', check);
    check();
  });
}

/** Wait for a process to exit (it has no exit event for non-children), checking every 50 ms. */
async function waitForExit(identity: ProcessIdentity, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(identity)) {
    if (Date.now() > deadline)
      throw new OpdbusError(
        'OPDBUS_ERR_INTERNAL',
        `the watchdog (pid ${identity.pid}) did not exit within ${timeoutMs} ms`,
      );
    await delay(50);
  }
}
