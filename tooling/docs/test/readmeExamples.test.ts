// Runs the examples in package READMEs, so that "a README with a runnable example" stays true.
// Each example is the first ```ts block of the README; it is transpiled and run with Node from
// this package's directory (which depends on every published package).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const here = fileURLToPath(new URL('../', import.meta.url));
const isRoot = process.getuid?.() === 0;

/** READMEs whose first ts block runs as is (`root`: needs root, e.g. creates namespaces). */
export const runnableReadmes: { readme: string; root: boolean; expect: RegExp; timeoutMs?: number }[] = [
  { readme: 'packages/core/README.md', root: false, expect: /committed[\s\S]*OPDBUS_ERR_APPLY_FAILED/ },
  { readme: 'packages/sandbox/README.md', root: true, expect: /unix:path=/ },
  {
    readme: 'packages/ledger/README.md',
    root: false,
    expect:
      /^example\.com\/audit\n4\n[A-Za-z0-9+/]{43}=\n\n— example\.com\/audit \S+\n\nincluded: true\nbundle: \[ 3 \]\nlog verifies: true/,
  },
  {
    readme: 'packages/ovsdb/README.md',
    root: false,
    expect: /br0 10[\s\S]*Port\.tag: 5000 is greater than 4095/,
  },
  {
    readme: 'packages/plugins-ovs/README.md',
    root: true,
    expect: /create port vlan10[\s\S]*committed\np1\nvlan10/,
  },
  {
    readme: 'packages/numa/README.md',
    root: false,
    expect:
      /^Machine: 32 CPUs online \(0-31\), 4 NUMA nodes[\s\S]*db\.service[\s\S]*CPUAffinity: '0-1,16-17'[\s\S]*trainer\.service[\s\S]*node 1: GPU 0000:3b:00\.0 \(card0\) is on node 1/,
  },
  {
    readme: 'packages/plugins-numa/README.md',
    root: false,
    expect:
      /"db\.service":\{"properties":\{"CPUAffinity":\[[\d,]+\],"NUMAPolicy":"bind","NUMAMask":\[1\]\}\}[\s\S]*node 1/,
  },
  {
    readme: 'packages/ml/README.md',
    root: false,
    expect:
      /^routine: [\d.]+ false\nodd: 1\.000 true\n - new actor: mallory never changed anything[\s\S]* nearest: \S+ \S+\nfalse\nmonday\n$/,
  },
  {
    readme: 'packages/netlink/README.md',
    root: true,
    expect:
      /^lo - up\nbr0 bridge up\nveth0p veth down\nveth0 veth up\n10\.0\.0\.0\/24 connected\n10\.9\.0\.0\/16 10\.0\.0\.254\nEEXIST\n$/,
  },
  {
    readme: 'packages/nftables/README.md',
    root: true,
    expect:
      /^6 messages committed\ntcp dport 22 ct state new counter accept comment "ssh"\nip saddr 10\.0\.0\.0\/8 tcp dport \{ 80, 443 \} accept\nOPDBUS_ERR_NFT_GENERATION\n$/,
  },
  {
    readme: 'packages/compliance/README.md',
    root: true,
    expect:
      /^committed\n164\.312\(b\) pass ledger\.attribution:pass ledger\.change-records:pass ledger\.integrity:pass\nverified: true 5 files\n$/,
  },
  {
    readme: 'packages/plugins-firewall/README.md',
    root: true,
    expect:
      /^create table inet filter\ncreate chain inet filter input \(filter hook input priority 0 policy drop, 3 rule\(s\)\)\ncommitted\nupdate chain inet filter input: rules ~ssh\n0\n$/,
  },
  {
    readme: 'packages/plugins-network/README.md',
    root: true,
    expect:
      /^create link br0 \(bridge, up\)\ncreate link vx7 \(vxlan, id 7, master br0, up\)\nadd address 10\.7\.0\.1\/24 to br0\ncommitted\n0\n$/,
  },
  {
    readme: 'packages/plugins-sysctl/README.md',
    root: true,
    expect: /set net\.ipv4\.ip_forward[\s\S]*committed/,
  },
  {
    readme: 'packages/dbus/README.md',
    root: false,
    expect: /org\.freedesktop\.DBus[\s\S]*dBus\.ts[\s\S]*owner: undefined/,
  },
  {
    readme: 'packages/plugins-dbus/README.md',
    root: false,
    expect:
      /org\.freedesktop\.DBus: set org\.freedesktop\.DBus\.Features on \/org\/freedesktop\/DBus: \[.*\] → \["Nothing"\]/,
  },
  {
    readme: 'packages/plugins-wireguard/README.md',
    root: true,
    expect: /^create interface\ncreate peer\ncommitted\n\{"stored":"demo"\}\ntrue\n0\n$/,
  },
  {
    readme: 'packages/mesh/README.md',
    root: false,
    expect:
      /^joined h2 at 10\.99\.0\.2\nh1 10\.99\.0\.1\/24 peers: 10\.99\.0\.2\/32\nh2 10\.99\.0\.2\/24 peers: 10\.99\.0\.1\/32, 10\.200\.1\.0\/24\n\{"routes":\[\{"to":"10\.200\.1\.0\/24","via":"10\.99\.0\.1"\}\]\}\n$/,
  },
  {
    readme: 'apps/mcp/README.md',
    root: false,
    expect: /^OPDBUS_ERR_MCP_DENIED: The policy does not allow this apply[^\n]*\n0 mcp\.call apply\n$/,
  },
  {
    readme: 'packages/runtime/README.md',
    root: true,
    expect: /^committed\n\/\S*\/opdbus-runtime-\w+\/ledger\n$/,
  },
  // These boot a container: the first one on a machine may build the cached image (about a minute).
  {
    readme: 'packages/plugins-containers/README.md',
    root: true,
    expect: /^create machine hello from \/srv\/tiny \(running\)\ncommitted\nhello\n0\n$/,
    timeoutMs: 600_000,
  },
  {
    readme: 'packages/plugins-systemd/README.md',
    root: true,
    expect: /create unit hello\.service[\s\S]*committed\nactive/,
    timeoutMs: 600_000,
  },
  {
    readme: 'packages/plugins-hostname/README.md',
    root: true,
    expect: /committed[\s\S]*pretty: 'Example Host'/,
    timeoutMs: 600_000,
  },
  {
    readme: 'packages/plugins-timedate/README.md',
    root: true,
    expect: /America\/New_York[\s\S]*committed/,
    timeoutMs: 600_000,
  },
  { readme: 'packages/plugins-sessions/README.md', root: true, expect: /seat0/, timeoutMs: 600_000 },
  { readme: 'apps/dashboard/README.md', root: false, expect: /^assets index\.html\napp\.css app\.js\n$/ },
  {
    readme: 'packages/plugins-users/README.md',
    root: true,
    expect:
      /^committed\nalice:x:2100:2100::\/home\/alice:\/bin\/bash\nrolled-back\nroot:x:0:0:root:\/root:\/bin\/bash\n# a comment that stays\n\n$/,
  },
  {
    readme: 'packages/plugins-ssh/README.md',
    root: true,
    expect: /^committed\nno-pty\nPasswordAuthentication no\n$/,
  },
  {
    readme: 'packages/plugins-packages/README.md',
    root: true,
    expect: /^committed\nhello-opdbus\t1\.0\n$/,
    timeoutMs: 600_000,
  },
  {
    readme: 'packages/plugins-dns/README.md',
    root: true,
    expect: /^committed\n.*lan0\): 192\.0\.2\.53\n$/,
    timeoutMs: 600_000,
  },
  {
    readme: 'packages/plugins-pci/README.md',
    root: false,
    expect:
      /^\d+ PCI functions\n[0-9a-f]{4}:[\s\S]*vendor: '0x[0-9a-f]{4}'[\s\S]*\nOPDBUS_ERR_PCI_UNKNOWN_DRIVER\n$/,
  },
  {
    readme: 'apps/daemon/README.md',
    root: true,
    expect: /^corrected network:link\/br-demo\nbr-demo is up again\n$/,
  },
];

function firstTsBlock(markdown: string): string {
  const match = /```ts\n([\s\S]*?)```/.exec(markdown);
  if (match === null) throw new Error('no ```ts block');
  return match[1]!;
}

describe('README examples run', () => {
  for (const { readme, root: needsRoot, expect: pattern, timeoutMs = 60_000 } of runnableReadmes) {
    it.skipIf(needsRoot && !isRoot)(readme, { timeout: timeoutMs + 5_000 }, async () => {
      const source = firstTsBlock(readFileSync(`${root}${readme}`, 'utf8'));
      const js = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      const file = `${here}.readme-example-${readme.replace(/[^a-z]/gi, '-')}.mjs`;
      writeFileSync(file, js);
      // The example's temporary files (tmpdir()) go to a directory of its own, removed afterwards.
      const tmp = mkdtempSync(join(tmpdir(), 'opdbus-readme-'));
      try {
        const output = await new Promise<string>((resolve, reject) => {
          execFile(
            process.execPath,
            [file],
            { cwd: here, timeout: timeoutMs, env: { ...process.env, TMPDIR: tmp } },
            (error, stdout, stderr) => {
              if (error)
                reject(new Error(`${readme} example failed: ${error.message}\n${stdout}\n${stderr}`));
              else resolve(stdout);
            },
          );
        });
        expect(output).toMatch(pattern);
      } finally {
        rmSync(file, { force: true });
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});
