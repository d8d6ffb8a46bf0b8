#!/usr/bin/env node
// Bootstrap and run: `npm run demo`, `npm test`, `npm run bench` on a fresh Debian 12 machine
// where only Node 20 and npm exist. Installs what is missing (Debian packages with apt-get,
// pnpm with npm, the workspace with pnpm), builds, then runs the job.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const job = process.argv[2];
const rest = process.argv.slice(3);
const PNPM_VERSION = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split(
  '@',
)[1];

// What each job needs from Debian: binary → package.
const BUILD = { make: 'make', 'g++': 'g++', python3: 'python3' };
const TEST = {
  ip: 'iproute2',
  sysctl: 'procps',
  nsenter: 'util-linux',
  mount: 'mount',
  'dbus-daemon': 'dbus',
  'dbus-send': 'dbus',
  'ovsdb-server': 'openvswitch-switch',
  'ovs-vswitchd': 'openvswitch-switch',
  'ovsdb-client': 'openvswitch-common',
  ping: 'iputils-ping',
  // nft(8) cross-checks the firewall plugin's native nftables client in its tests.
  nft: 'nftables',
  openssl: 'openssl',
  'mkfs.btrfs': 'btrfs-progs',
  btrfs: 'btrfs-progs',
  truncate: 'coreutils',
  // The D-Bus plugins' tests boot a Debian container (debootstrap once, cached in
  // /var/cache/opdbus-sandbox) with systemd-nspawn; busctl and nsenter drive it from outside.
  'systemd-nspawn': 'systemd-container',
  debootstrap: 'debootstrap',
  busctl: 'systemd',
  // hwloc reads the same generated sysfs trees as @opdbus/numa, as a cross-check (HWLOC_FSROOT).
  'lstopo-no-graphics': 'hwloc',
  // WireGuard in userspace (this kernel has no wireguard module); wg cross-checks the devices.
  // Installed with --no-install-recommends like everything here (else apt pulls a kernel).
  'wireguard-go': 'wireguard-go',
  wg: 'wireguard-tools',
  // tar -xjf of hwloc's sysfs dumps (packages/numa/test/fixtures/hwloc-linux).
  tar: 'tar',
  bzip2: 'bzip2',
  // The compliance HTML report is opened in Chromium (playwright-core drives it) and screenshotted.
  chromium: 'chromium',
  // The pci plugin's read side is cross-checked with lspci on this host's /sys.
  lspci: 'pciutils',
  // The ssh plugin's tests make keys and fingerprints with ssh-keygen.
  'ssh-keygen': 'openssh-client',
  // The containers plugin's Podman backend runs against a private `podman system service`;
  // runc, because crun refuses hybrid cgroup hierarchies.
  podman: 'podman',
  runc: 'runc',
};
// A path (starting with /) is a file the package installs, for packages without a program.
const BENCH = {
  ...TEST,
  sha256sum: 'coreutils',
  'pyroute2-cli': 'python3-pyroute2',
  '/usr/lib/python3/dist-packages/ovsdbapp/__init__.py': 'python3-ovsdbapp',
};

function log(message) {
  process.stderr.write(`[opdbus ${job}] ${message}\n`);
}

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, {
    stdio: 'inherit',
    cwd: root,
    ...options,
    env: { ...process.env, ...options.env },
  });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function must(cmd, args, options) {
  const code = run(cmd, args, options);
  if (code !== 0) {
    log(`\`${cmd} ${args.join(' ')}\` failed with exit code ${code}`);
    process.exit(code);
  }
}

function has(binary) {
  const path = process.env.PATH ?? '/usr/bin:/bin';
  return [...path.split(':'), '/usr/sbin', '/sbin'].some((dir) => existsSync(join(dir, binary)));
}

function ensureDebianPackages(needs) {
  const missing = [
    ...new Set(
      Object.entries(needs)
        .filter(([bin]) => (bin.startsWith('/') ? !existsSync(bin) : !has(bin)))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    log(
      `missing Debian packages: ${missing.join(' ')}; install them (as root: apt-get install ${missing.join(' ')}) and run again`,
    );
    process.exit(1);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  must('apt-get', ['update', '-qq'], { env });
  // --no-install-recommends keeps it small; the OVS service is never started by op-dbus.
  must('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}

function ensurePnpm() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.trim() === PNPM_VERSION) return 'pnpm';
  log(`installing pnpm ${PNPM_VERSION} with npm`);
  must('npm', ['install', '-g', '--no-fund', '--no-audit', `pnpm@${PNPM_VERSION}`]);
  return 'pnpm';
}

function nativeEnv() {
  // Build native addons against the running Node's headers (Debian: /usr/include/node), never a download.
  const env = { TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' };
  for (const dir of [process.env.npm_config_nodedir, dirname(dirname(process.execPath)), '/usr']) {
    if (dir && existsSync(join(dir, 'include', 'node', 'node_api.h'))) {
      env.npm_config_nodedir = dir;
      break;
    }
  }
  return env;
}

function installAndBuild(pnpm) {
  const env = nativeEnv();
  must(pnpm, ['install', '--frozen-lockfile', '--reporter=append-only'], { env });
  must(pnpm, ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], { env });
  return env;
}

function requireRoot(what) {
  if (process.getuid?.() !== 0) {
    log(`${what} needs root (it creates network namespaces and starts daemons in sandboxes); run it as root`);
    process.exit(1);
  }
}

function summarize(file) {
  if (!existsSync(file)) return undefined;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  return {
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + report.numTodoTests,
    suitesFailed: report.numFailedTestSuites,
  };
}

switch (job) {
  case 'demo': {
    requireRoot('the demo');
    ensureDebianPackages(BUILD);
    const env = installAndBuild(ensurePnpm());
    process.exit(run(process.execPath, [join(root, 'apps/cli/dist/bin.js'), 'demo', ...rest], { env }));
    break;
  }
  case 'test': {
    requireRoot('the test suite');
    ensureDebianPackages({ ...BUILD, ...TEST });
    const pnpm = ensurePnpm();
    const env = installAndBuild(pnpm);
    // Static checks first: formatting, types, lint rules (STYLE.md), packaging (publint).
    if (run(pnpm, ['exec', 'prettier', '--check', '--log-level=warn', '.'], { env }) !== 0) {
      log('files are not formatted (see above); run `pnpm format`');
      console.log('0 passed, 1 failed');
      process.exit(1);
    }
    const checks = run(
      pnpm,
      ['exec', 'turbo', 'run', 'typecheck', 'lint', 'publint', '--output-logs=errors-only'],
      { env },
    );
    if (checks !== 0) {
      log('typecheck, lint or publint failed (see above)');
      console.log('0 passed, 1 failed');
      process.exit(checks);
    }
    const results = join(root, '.vitest-results.json');
    const code = run(
      pnpm,
      [
        'exec',
        'vitest',
        'run',
        '--reporter=default',
        '--reporter=json',
        `--outputFile.json=${results}`,
        ...rest,
      ],
      { env },
    );
    const summary = summarize(results);
    if (summary === undefined) {
      log('vitest wrote no results');
      console.log('0 passed, 1 failed');
      process.exit(code === 0 ? 1 : code);
    }
    // A file that fails to load counts as a failure even if no test in it ran.
    const failed =
      summary.failed + (summary.failed === 0 && code !== 0 ? Math.max(1, summary.suitesFailed) : 0);
    console.log(`${summary.passed} passed, ${failed} failed, ${summary.skipped} skipped`);
    process.exit(code);
    break;
  }
  case 'bench': {
    requireRoot('the benchmarks');
    ensureDebianPackages({ ...BUILD, ...BENCH });
    const env = installAndBuild(ensurePnpm());
    process.exit(run(process.execPath, [join(root, 'bench/run.mjs'), ...rest], { env }));
    break;
  }
  default:
    log(`usage: node scripts/run.mjs demo|test|bench [args]`);
    process.exit(2);
}
