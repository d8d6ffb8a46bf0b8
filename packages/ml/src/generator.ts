// A generator of realistic fleet change histories with labelled, injected anomalies, for
// evaluating anomaly scorers where no public labelled data set exists. Everything is drawn from
// the seed: the fleet (roles, hosts, sites and their time zones), the people and automation that
// change it (working hours, weekly patch days, nightly jobs, deploys in bursts, drift repairs at
// any hour, on-call nights), the values and how they drift, fleet growth — and, in the test
// weeks, anomalies of many kinds, obvious and subtle.
import type { ChangeEvent, ChangeOp, Json } from './events.js';

/** The kinds of anomaly the generator injects. */
export const ANOMALY_KINDS = [
  'new_actor',
  'unusual_hour',
  'out_of_band',
  'new_resource',
  'privilege_grant',
  'destructive_night',
  'wrong_host',
  'wrong_day',
  'burst',
] as const;

/** One injected anomaly kind. */
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/** Options of {@link generateFleetHistory}. */
export interface GeneratorOptions {
  /** Everything is drawn from it. */
  seed: number;
  /** Weeks of normal history to train on (default 6). */
  weeks?: number;
  /** Weeks of test changes after the history (default 2). */
  testWeeks?: number;
  /** Anomalies injected per kind (default 16; bursts count as instances of 10–30 changes, a third as many). */
  anomaliesPerKind?: number;
  /** Scale of the fleet: about this many hosts (default: 20–40, from the seed). */
  hosts?: number;
  /** The Monday the history starts (default 2026-01-05). */
  start?: string;
  /** Multiplies every routine's rate (default 4: about 100 changes per host and week). */
  rateScale?: number;
}

/** A generated history: train on `history`, score `test`, compare with `labels`. */
export interface GeneratedHistory {
  history: ChangeEvent[];
  test: ChangeEvent[];
  /** One per test change: injected anomaly or not. */
  labels: boolean[];
  /** One per test change: the anomaly kind, or null. */
  kinds: (AnomalyKind | null)[];
  /** What was generated, for reading the results. */
  fleet: { hosts: { name: string; role: string; offset: string }[]; actors: string[]; roles: string[] };
}

// ---------------------------------------------------------------------------------------------
// Random numbers (mulberry32), seeded.

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed ^ 0x9e3779b9) >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  normal(): number {
    const u = Math.max(1e-12, this.next());
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  poisson(lambda: number): number {
    if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * this.normal()));
    const l = Math.exp(-lambda);
    let k = 0;
    let p = 1;
    do {
      k++;
      p *= this.next();
    } while (p > l);
    return k - 1;
  }
  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(0, 15)];
    return s;
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

// ---------------------------------------------------------------------------------------------
// The fleet.

const DAY = 86_400_000;
const HOUR = 3_600_000;

type Schedule =
  | { kind: 'work' } // a person's working hours (of whoever does it)
  | { kind: 'nightly'; hour: number } // every night around this hour
  | { kind: 'weekly'; day: number; hour: number } // once a week, this day (0 = Monday) and hour
  | { kind: 'any' }; // any hour (drift repairs, orchestrators)

interface Routine {
  name: string;
  roles: string[];
  plugin: string;
  /** Resource path; `{n}` is an instance number, `{id}` a random id, `{host}` the host. */
  resource: (rng: Rng, host: Host) => string;
  op: (rng: Rng) => ChangeOp;
  /** Actor kinds: 'admin' (a person owning the role), 'any-admin', or a fixed automation name. */
  actors: [string, number][];
  schedule: Schedule;
  /** Expected occurrences per host per week. */
  rate: number;
  /** Changes per occurrence (a deploy touches several resources at once). */
  batch?: [number, number];
  value: (rng: Rng, host: Host, op: ChangeOp) => { before: Json; after: Json };
}

interface Host {
  name: string;
  role: string;
  site: Site;
  /** Per-host offsets of the numeric bands (hosts of one role are alike, not equal). */
  tune: number;
  /** From this time on (fleet growth). */
  since: number;
}

interface Site {
  name: string;
  offsetMinutes: number;
}

interface Person {
  name: string;
  roles: string[];
  offsetMinutes: number;
  /** Working hours: start and end (local). */
  start: number;
  end: number;
  /** Works Sunday–Thursday instead of Monday–Friday. */
  sundayWeek: boolean;
  /** Chance a change of theirs happens on call (a night or weekend). */
  onCall: number;
}

const PEOPLE = [
  'alice',
  'bob',
  'chen',
  'dana',
  'emeka',
  'farah',
  'goran',
  'hiro',
  'ines',
  'jonas',
  'kemal',
  'lena',
  'mateo',
  'nadia',
  'oskar',
  'priya',
];
const ROLES = ['web', 'db', 'cache', 'router', 'gpu', 'k8s', 'storage', 'ci'];
const SITES: Site[] = [
  { name: 'fra', offsetMinutes: 60 },
  { name: 'iad', offsetMinutes: -300 },
  { name: 'sin', offsetMinutes: 480 },
  { name: 'lon', offsetMinutes: 0 },
];

const num = (x: number): number => Math.round(x);
const update = (before: Json, after: Json) => ({ before, after });

function band(rng: Rng, host: Host, center: number, spread: number): number {
  return Math.max(0, num(center * (1 + 0.15 * host.tune) + spread * rng.normal() * 0.5));
}

function pkgVersion(rng: Rng): string {
  return `${rng.int(1, 9)}.${rng.int(0, 30)}.${rng.int(0, 60)}-${rng.int(1, 5)}`;
}

const PACKAGES = [
  'openssl',
  'libc6',
  'openssh-server',
  'curl',
  'systemd',
  'linux-image-amd64',
  'tzdata',
  'python3',
  'ca-certificates',
  'sudo',
];

function routines(): Routine[] {
  const all = ROLES;
  return [
    // Everywhere.
    {
      name: 'patch',
      roles: all,
      plugin: 'packages',
      resource: (rng) => `apt/${rng.pick(PACKAGES)}`,
      op: () => 'update',
      actors: [['ansible', 1]],
      schedule: { kind: 'weekly', day: -1, hour: -1 },
      rate: 1,
      batch: [2, 6],
      value: (rng) => update({ version: pkgVersion(rng) }, { version: pkgVersion(rng) }),
    },
    {
      name: 'exporter',
      roles: all,
      plugin: 'systemd',
      resource: () => 'units/node-exporter.service',
      op: () => 'update',
      actors: [['opdbusd', 1]],
      schedule: { kind: 'any' },
      rate: 0.4,
      value: () => update({ active: false, enabled: true }, { active: true, enabled: true }),
    },
    {
      name: 'ssh-key',
      roles: all,
      plugin: 'users',
      resource: (rng) => `users/${rng.pick(['deploy', 'ops', 'backup'])}/authorized_keys`,
      op: (rng) => (rng.chance(0.8) ? 'update' : 'create'),
      actors: [['any-admin', 1]],
      schedule: { kind: 'work' },
      rate: 0.15,
      value: (rng) => update(null, { keys: [`ssh-ed25519 AAAA${rng.hex(16)}`], groups: ['users'] }),
    },
    {
      name: 'ntp',
      roles: all,
      plugin: 'timedate',
      resource: () => 'ntp',
      op: () => 'update',
      actors: [['opdbusd', 1]],
      schedule: { kind: 'any' },
      rate: 0.08,
      value: () => update({ ntp: false }, { ntp: true }),
    },
    // Web.
    {
      name: 'deploy',
      roles: ['web'],
      plugin: 'files',
      resource: (rng) => `etc/app/releases/app-${rng.int(1, 4)}.conf`,
      op: (rng) => (rng.chance(0.9) ? 'update' : 'create'),
      actors: [['ci-deploy', 1]],
      schedule: { kind: 'work' },
      rate: 5,
      batch: [2, 5],
      value: (rng) => update({ sha256: rng.hex(16) }, { sha256: rng.hex(16), mode: '0644' }),
    },
    {
      name: 'nginx',
      roles: ['web'],
      plugin: 'systemd',
      resource: () => 'units/nginx.service',
      op: () => 'update',
      actors: [
        ['ci-deploy', 3],
        ['admin', 1],
      ],
      schedule: { kind: 'work' },
      rate: 3,
      value: () => update({ active: true, restarts: 0 }, { active: true, restarts: 1 }),
    },
    {
      name: 'somaxconn',
      roles: ['web', 'router'],
      plugin: 'sysctl',
      resource: () => 'net.core.somaxconn',
      op: () => 'update',
      actors: [['admin', 1]],
      schedule: { kind: 'work' },
      rate: 0.5,
      value: (rng, host) => update(null, band(rng, host, 4096, 600)),
    },
    {
      name: 'fin-timeout',
      roles: ['web', 'cache'],
      plugin: 'sysctl',
      resource: () => 'net.ipv4.tcp_fin_timeout',
      op: () => 'update',
      actors: [['admin', 1]],
      schedule: { kind: 'work' },
      rate: 0.3,
      value: (rng, host) => update(null, band(rng, host, 30, 8)),
    },
    // Databases.
    {
      name: 'db-snapshot',
      roles: ['db', 'storage'],
      plugin: 'storage',
      resource: (rng) => `snapshots/nightly-${rng.int(1, 9999)}`,
      op: (rng) => (rng.chance(0.5) ? 'create' : 'delete'),
      actors: [['backup', 1]],
      schedule: { kind: 'nightly', hour: 1 },
      rate: 7,
      batch: [2, 2],
      value: (rng) => update(null, { readOnly: true, sizeBytes: rng.int(1e9, 4e9) }),
    },
    {
      name: 'swappiness',
      roles: ['db'],
      plugin: 'sysctl',
      resource: () => 'vm.swappiness',
      op: () => 'update',
      actors: [['admin', 1]],
      schedule: { kind: 'work' },
      rate: 0.4,
      value: (rng, host) => update(null, band(rng, host, 10, 4)),
    },
    {
      name: 'postgres',
      roles: ['db'],
      plugin: 'systemd',
      resource: () => 'units/postgresql.service',
      op: () => 'update',
      actors: [
        ['admin', 1],
        ['opdbusd', 1],
      ],
      schedule: { kind: 'work' },
      rate: 1,
      value: (rng, host) =>
        update(
          { active: true },
          { active: true, memoryMax: `${band(rng, host, 48, 6)}G`, cpuWeight: band(rng, host, 200, 40) },
        ),
    },
    // Caches.
    {
      name: 'redis',
      roles: ['cache'],
      plugin: 'systemd',
      resource: () => 'units/redis.service',
      op: () => 'update',
      actors: [
        ['admin', 1],
        ['opdbusd', 2],
      ],
      schedule: { kind: 'any' },
      rate: 1.5,
      value: (rng, host) =>
        update({ active: true }, { active: true, memoryMax: `${band(rng, host, 16, 2)}G` }),
    },
    {
      name: 'overcommit',
      roles: ['cache'],
      plugin: 'sysctl',
      resource: () => 'vm.overcommit_memory',
      op: () => 'update',
      actors: [['opdbusd', 1]],
      schedule: { kind: 'any' },
      rate: 0.3,
      value: () => update('0', '1'),
    },
    // Routers.
    {
      name: 'route',
      roles: ['router'],
      plugin: 'network',
      resource: (rng) => `routes/10.${rng.int(0, 40)}.0.0-16`,
      op: (rng) => (rng.chance(0.5) ? 'create' : 'delete'),
      actors: [
        ['admin', 1],
        ['netbot', 2],
      ],
      schedule: { kind: 'work' },
      rate: 4,
      batch: [1, 3],
      value: (rng) =>
        update(null, { gateway: `10.255.0.${rng.int(1, 8)}`, metric: rng.pick([100, 200, 300]) }),
    },
    {
      name: 'ovs-port',
      roles: ['router', 'k8s'],
      plugin: 'ovs',
      resource: (rng) => `bridges/br-int/ports/vnet${rng.int(0, 300)}`,
      op: (rng) => (rng.chance(0.5) ? 'create' : 'delete'),
      actors: [['orchestrator', 1]],
      schedule: { kind: 'any' },
      rate: 10,
      value: (rng) => update(null, { tag: rng.int(100, 140), mtu: rng.pick([1500, 9000]) }),
    },
    {
      name: 'ip-forward',
      roles: ['router'],
      plugin: 'sysctl',
      resource: () => 'net.ipv4.ip_forward',
      op: () => 'update',
      actors: [['opdbusd', 1]],
      schedule: { kind: 'any' },
      rate: 0.2,
      value: () => update('0', '1'),
    },
    // GPU servers.
    {
      name: 'trainer',
      roles: ['gpu'],
      plugin: 'systemd',
      resource: (rng) => `units/trainer@${rng.int(0, 7)}.service`,
      op: (rng) => (rng.chance(0.7) ? 'update' : 'create'),
      actors: [
        ['admin', 2],
        ['mcp:ops-agent', 1],
      ],
      schedule: { kind: 'work' },
      rate: 4,
      value: (rng) =>
        update(null, { active: true, cpuAffinity: `${rng.int(0, 3) * 16}-${rng.int(0, 3) * 16 + 15}` }),
    },
    {
      name: 'hugepages',
      roles: ['gpu', 'db'],
      plugin: 'sysctl',
      resource: () => 'vm.nr_hugepages',
      op: () => 'update',
      actors: [['admin', 1]],
      schedule: { kind: 'work' },
      rate: 0.3,
      value: (rng, host) => update(null, band(rng, host, 2048, 256)),
    },
    {
      name: 'placement',
      roles: ['gpu'],
      plugin: 'numa',
      resource: (rng) => `placements/trainer@${rng.int(0, 7)}.service`,
      op: () => 'update',
      actors: [
        ['mcp:ops-agent', 1],
        ['admin', 1],
      ],
      schedule: { kind: 'work' },
      rate: 1.5,
      value: (rng) =>
        update(null, { node: rng.int(0, 3), near: `0000:${rng.pick(['3b', '5e', '86', 'af'])}:00.0` }),
    },
    // Kubernetes nodes.
    {
      name: 'pod-link',
      roles: ['k8s'],
      plugin: 'network',
      resource: (rng) => `links/cali${rng.hex(11)}`,
      op: (rng) => (rng.chance(0.5) ? 'create' : 'delete'),
      actors: [['kubelet', 1]],
      schedule: { kind: 'any' },
      rate: 25,
      value: (rng) => update(null, { kind: 'veth', mtu: 1450, up: true, peerNetns: `cni-${rng.hex(8)}` }),
    },
    {
      name: 'kubelet',
      roles: ['k8s'],
      plugin: 'systemd',
      resource: () => 'units/kubelet.service',
      op: () => 'update',
      actors: [
        ['admin', 1],
        ['ansible', 1],
      ],
      schedule: { kind: 'work' },
      rate: 0.6,
      value: (rng) =>
        update({ active: true }, { active: true, version: `1.${rng.int(28, 31)}.${rng.int(0, 9)}` }),
    },
    // Storage.
    {
      name: 'scrub',
      roles: ['storage'],
      plugin: 'systemd',
      resource: () => 'timers/btrfs-scrub.timer',
      op: () => 'update',
      actors: [['ansible', 1]],
      schedule: { kind: 'weekly', day: 6, hour: 3 },
      rate: 1,
      value: () => update({ active: true }, { active: true, lastTrigger: 'weekly' }),
    },
    {
      name: 'dirty-ratio',
      roles: ['storage', 'db'],
      plugin: 'sysctl',
      resource: () => 'vm.dirty_ratio',
      op: () => 'update',
      actors: [['admin', 1]],
      schedule: { kind: 'work' },
      rate: 0.3,
      value: (rng, host) => update(null, band(rng, host, 20, 5)),
    },
    // CI runners.
    {
      name: 'runner',
      roles: ['ci'],
      plugin: 'containers',
      resource: (rng) => `machines/job-${rng.hex(10)}`,
      op: (rng) => (rng.chance(0.5) ? 'create' : 'delete'),
      actors: [['ci-runner', 1]],
      schedule: { kind: 'work' },
      rate: 30,
      value: (rng) =>
        update(null, { image: rng.pick(['debian-12', 'ubuntu-24.04', 'alpine-3.20']), memoryMax: '4G' }),
    },
    {
      name: 'runner-cache',
      roles: ['ci'],
      plugin: 'storage',
      resource: () => 'subvolumes/cache',
      op: () => 'update',
      actors: [['ci-runner', 1]],
      schedule: { kind: 'nightly', hour: 4 },
      rate: 5,
      value: (rng) => update(null, { quotaBytes: rng.pick([50e9, 100e9]) }),
    },
  ];
}

// ---------------------------------------------------------------------------------------------

function iso(time: number, offsetMinutes: number): string {
  const local = new Date(time + offsetMinutes * 60_000).toISOString().slice(0, 19);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** An absolute time at a local day (days since start) and hour. */
function atLocal(start: number, dayIndex: number, hour: number, offsetMinutes: number): number {
  return start + dayIndex * DAY + hour * HOUR - offsetMinutes * 60_000;
}

interface Fleet {
  hosts: Host[];
  people: Person[];
  routines: Routine[];
  patchDay: Map<string, { day: number; hour: number }>;
  roles: string[];
}

function buildFleet(rng: Rng, options: GeneratorOptions, start: number, weeks: number): Fleet {
  const roles = rng.shuffle([...ROLES]).slice(0, rng.int(5, 7));
  if (!roles.includes('web')) roles[0] = 'web';
  const target = options.hosts ?? rng.int(20, 40);
  const sites = rng.shuffle([...SITES]).slice(0, rng.int(1, 3));
  const naming = rng.int(0, 2);
  const hosts: Host[] = [];
  const perRole = new Map<string, number>();
  for (let i = 0; i < target; i++) {
    const role = i < roles.length ? roles[i]! : rng.pick(roles);
    const n = (perRole.get(role) ?? 0) + 1;
    perRole.set(role, n);
    const site = rng.pick(sites);
    const name =
      naming === 0
        ? `${role}-${String(n).padStart(2, '0')}`
        : naming === 1
          ? `${site.name}${rng.int(1, 3)}-${role}${n}`
          : `${role}${n}.${site.name}.example.net`;
    // A few hosts join during the history or the test weeks (the fleet grows).
    const late = i >= roles.length && rng.chance(0.08);
    hosts.push({
      name,
      role,
      site,
      tune: rng.normal(),
      since: late ? start + rng.int(1, weeks * 7 + 6) * DAY : start,
    });
  }
  const people: Person[] = [];
  const names = rng.shuffle([...PEOPLE]).slice(0, rng.int(4, 7));
  for (const [i, name] of names.entries()) {
    const site = rng.pick(sites);
    const owned = [roles[i % roles.length]!, ...(rng.chance(0.5) ? [rng.pick(roles)] : [])];
    const startHour = rng.int(7, 10);
    people.push({
      name,
      roles: [...new Set(owned)],
      offsetMinutes: site.offsetMinutes,
      start: startHour,
      end: startHour + rng.int(8, 10),
      sundayWeek: rng.chance(0.1),
      onCall: rng.next() * 0.03,
    });
  }
  // Every role has at least one owner.
  for (const role of roles)
    if (!people.some((p) => p.roles.includes(role))) rng.pick(people).roles.push(role);
  const patchDay = new Map<string, { day: number; hour: number }>();
  for (const role of roles) patchDay.set(role, { day: rng.int(0, 4), hour: rng.int(1, 4) });
  const all = routines().filter((r) => r.roles.some((role) => roles.includes(role)));
  // Not every fleet runs every routine, and rates differ.
  const chosen = all.filter((r) => r.name === 'patch' || r.name === 'deploy' || rng.chance(0.85));
  const scale = options.rateScale ?? 4;
  for (const r of chosen) if (r.schedule.kind !== 'weekly') r.rate *= scale * (0.6 + rng.next() * 0.8);
  return { hosts, people, routines: chosen, patchDay, roles };
}

function personFor(rng: Rng, fleet: Fleet, host: Host, kind: string): Person {
  const owners = fleet.people.filter((p) => p.roles.includes(host.role));
  if (kind === 'admin' && owners.length > 0 && rng.chance(0.93)) return rng.pick(owners);
  return rng.pick(fleet.people);
}

/** A time in a person's working hours on a given day index (or on call: any hour, any day). */
function workTime(rng: Rng, person: Person, start: number, dayIndex: number): number | undefined {
  const localDay = (dayIndex + 7) % 7; // start is a Monday
  const workday = person.sundayWeek ? localDay === 6 || localDay <= 3 : localDay <= 4;
  if (rng.chance(person.onCall)) return atLocal(start, dayIndex, rng.next() * 24, person.offsetMinutes);
  if (!workday) return undefined;
  const mid = (person.start + person.end) / 2;
  const half = (person.end - person.start) / 2;
  let hour = mid + half * 0.6 * rng.normal();
  hour = Math.min(person.end + 1.5, Math.max(person.start - 1, hour));
  return atLocal(start, dayIndex, hour, person.offsetMinutes);
}

interface Draft {
  time: number;
  host: Host;
  actor: string;
  plugin: string;
  resource: string;
  op: ChangeOp;
  before: Json;
  after: Json;
  kind: AnomalyKind | null;
  offset?: number;
}

function emit(d: Draft): ChangeEvent {
  return {
    at: iso(d.time, d.offset ?? d.host.site.offsetMinutes),
    host: d.host.name,
    actor: d.actor,
    plugin: d.plugin,
    resource: d.resource,
    op: d.op,
    before: d.op === 'create' ? null : d.before,
    after: d.op === 'delete' ? null : d.after,
  };
}

function occurrence(
  rng: Rng,
  fleet: Fleet,
  r: Routine,
  host: Host,
  start: number,
  dayIndex: number,
): Draft[] {
  const [actorKind] = pickWeighted(rng, r.actors);
  let time: number | undefined;
  let actor = actorKind;
  const tz = host.site.offsetMinutes;
  if (actorKind === 'admin' || actorKind === 'any-admin') {
    const person = personFor(rng, fleet, host, actorKind);
    actor = person.name;
    time = workTime(rng, person, start, dayIndex);
  } else {
    switch (r.schedule.kind) {
      case 'work': {
        const localDay = dayIndex % 7;
        if (localDay > 4 && !rng.chance(0.05)) return [];
        time = atLocal(start, dayIndex, 9 + rng.next() * 9, tz);
        break;
      }
      case 'nightly':
        time = atLocal(start, dayIndex, r.schedule.hour + rng.next() * 1.5, tz);
        break;
      case 'weekly': {
        const plan =
          r.schedule.day < 0
            ? fleet.patchDay.get(host.role)!
            : { day: r.schedule.day, hour: r.schedule.hour };
        if (dayIndex % 7 !== plan.day) return [];
        time = atLocal(start, dayIndex, plan.hour + rng.next() * 1.5, tz);
        break;
      }
      case 'any':
        time = atLocal(start, dayIndex, rng.next() * 24, tz);
        break;
    }
  }
  if (time === undefined || time < host.since) return [];
  const [lo, hi] = r.batch ?? [1, 1];
  const n = rng.int(lo, hi);
  const out: Draft[] = [];
  for (let i = 0; i < n; i++) {
    const op = r.op(rng);
    const { before, after } = r.value(rng, host, op);
    out.push({
      time: time + i * rng.int(1, 20) * 1000,
      host,
      actor,
      plugin: r.plugin,
      resource: r.resource(rng, host),
      op,
      before,
      after,
      kind: null,
    });
  }
  return out;
}

function pickWeighted<T>(rng: Rng, items: readonly [T, number][]): [T, number] {
  const total = items.reduce((a, [, w]) => a + w, 0);
  let x = rng.next() * total;
  for (const item of items) {
    x -= item[1];
    if (x <= 0) return item;
  }
  return items[items.length - 1]!;
}

/** Normal changes of every host for days [from, to). */
function normalDays(rng: Rng, fleet: Fleet, start: number, from: number, to: number): Draft[] {
  const out: Draft[] = [];
  for (let day = from; day < to; day++) {
    for (const host of fleet.hosts) {
      for (const r of fleet.routines) {
        if (!r.roles.includes(host.role)) continue;
        // Weekly routines happen once on their day; the rest spread their weekly rate over 7 days.
        const lambda = r.schedule.kind === 'weekly' ? r.rate : r.rate / 7;
        const k =
          r.schedule.kind === 'weekly' ? (rng.chance(Math.min(1, lambda)) ? 1 : 0) : rng.poisson(lambda);
        for (let i = 0; i < k; i++) out.push(...occurrence(rng, fleet, r, host, start, day));
      }
    }
  }
  return out;
}

/** Routine drafts that may be reused for subtle anomalies: what a host normally sees. */
function routineOf(rng: Rng, fleet: Fleet, host: Host, filter: (r: Routine) => boolean): Routine | undefined {
  // Weighted by rate, as normal traffic is: the base of an anomaly is a routine change.
  const options = fleet.routines.filter((r) => r.roles.includes(host.role) && filter(r));
  return options.length === 0
    ? undefined
    : pickWeighted(
        rng,
        options.map((r) => [r, r.rate] as [Routine, number]),
      )[0];
}

function injectAnomalies(
  rng: Rng,
  fleet: Fleet,
  start: number,
  from: number,
  to: number,
  perKind: number,
): Draft[] {
  const out: Draft[] = [];
  const days = to - from;
  const hostsAt = (time: number) => fleet.hosts.filter((h) => h.since <= time);
  const randomDay = () => from + rng.int(0, days - 1);
  const weekday = () => {
    for (;;) {
      const d = randomDay();
      if (d % 7 <= 4) return d;
    }
  };
  const usual = (host: Host, person?: Person): Draft | undefined => {
    // A routine change of this host, at a normal time, by its normal actor.
    for (let tries = 0; tries < 50; tries++) {
      const r = routineOf(rng, fleet, host, () => true);
      if (r === undefined) return undefined;
      const drafts = occurrence(rng, fleet, r, host, start, weekday());
      const d = drafts[0];
      if (d === undefined) continue;
      if (person !== undefined && d.actor !== person.name) continue;
      return d;
    }
    return undefined;
  };
  const humanRoutine = (host: Host): Draft | undefined => {
    for (let tries = 0; tries < 80; tries++) {
      const d = usual(host);
      if (d !== undefined && fleet.people.some((p) => p.name === d.actor)) return d;
    }
    return undefined;
  };
  for (const kind of ANOMALY_KINDS) {
    const count = kind === 'burst' ? Math.max(2, Math.round(perKind / 3)) : perKind;
    let made = 0;
    for (let attempt = 0; made < count && attempt < count * 50; attempt++) {
      const host = rng.pick(hostsAt(start + from * DAY));
      const base = usual(host);
      if (base === undefined) continue;
      switch (kind) {
        case 'new_actor': {
          const name = rng.pick([
            'svc-tmp',
            'root',
            'jenkins-old',
            `user${rng.int(100, 999)}`,
            'contractor',
            `mcp:unknown-${rng.hex(4)}`,
          ]);
          out.push({ ...base, actor: name, kind });
          break;
        }
        case 'unusual_hour': {
          const d = humanRoutine(host);
          if (d === undefined) continue;
          const person = fleet.people.find((p) => p.name === d.actor)!;
          const day = weekday();
          const hour = (person.end + 3 + rng.next() * (24 - (person.end - person.start) - 5)) % 24;
          out.push({ ...d, time: atLocal(start, day, hour, person.offsetMinutes), kind });
          break;
        }
        case 'out_of_band': {
          let d: Draft | undefined;
          for (let t = 0; t < 40 && d === undefined; t++) {
            const candidate = usual(host);
            if (candidate !== undefined && typeof candidate.after === 'number') d = candidate;
          }
          if (d === undefined || typeof d.after !== 'number') continue;
          const factor = rng.chance(0.5) ? rng.int(6, 20) : 1 / rng.int(6, 20);
          out.push({ ...d, after: Math.max(0, Math.round(d.after * factor)), kind });
          break;
        }
        case 'new_resource': {
          const r = rng.pick<[string, string, Json]>([
            ['kernel', 'modules/nf_conntrack_ftp', { loaded: true }],
            ['sshd', 'config/PermitRootLogin', 'yes'],
            [
              'systemd',
              `units/${rng.pick(['xmrig', 'kworkerd', 'sysupdate'])}.service`,
              { active: true, enabled: true },
            ],
            [
              'firewall',
              `rules/allow-${rng.int(1000, 65000)}`,
              { action: 'accept', port: rng.int(1000, 65000) },
            ],
            ['network', `links/tun${rng.int(0, 9)}`, { kind: 'tun', up: true }],
            ['files', 'etc/ld.so.preload', { sha256: rng.hex(16) }],
          ]);
          out.push({
            ...base,
            plugin: r[0],
            resource: r[1],
            op: 'create',
            before: null,
            after: r[2],
            actor: base.actor,
            kind,
          });
          break;
        }
        case 'privilege_grant': {
          const d = humanRoutine(host) ?? base;
          const user = rng.pick(['deploy', 'ops', 'backup', 'www-data']);
          const variant = rng.int(0, 2);
          if (variant === 0)
            out.push({
              ...d,
              plugin: 'users',
              resource: `users/${user}/authorized_keys`,
              op: 'update',
              before: null,
              after: {
                keys: [`ssh-ed25519 AAAA${rng.hex(16)}`],
                groups: ['users', rng.pick(['sudo', 'wheel', 'docker', 'disk'])],
              },
              kind,
            });
          else if (variant === 1)
            out.push({
              ...d,
              plugin: 'files',
              resource: `etc/sudoers.d/90-${user}`,
              op: 'create',
              before: null,
              after: { content: `${user} ALL=(ALL) NOPASSWD: ALL`, mode: '0440' },
              kind,
            });
          else
            out.push({
              ...d,
              plugin: 'users',
              resource: 'users/root/authorized_keys',
              op: 'update',
              before: null,
              after: { keys: [`ssh-rsa AAAA${rng.hex(16)}`] },
              kind,
            });
          break;
        }
        case 'destructive_night': {
          let d: Draft | undefined;
          for (let t = 0; t < 40 && d === undefined; t++) {
            const candidate = usual(host);
            if (candidate !== undefined && candidate.op === 'update') d = candidate;
          }
          if (d === undefined) continue;
          const hour = rng.next() * 4.5;
          out.push({
            ...d,
            op: 'delete',
            before: d.after,
            after: null,
            time: atLocal(start, randomDay(), hour, host.site.offsetMinutes),
            kind,
          });
          break;
        }
        case 'wrong_host': {
          // A routine of another role, by its usual actor at a usual time, on a host that never sees it.
          const others = fleet.hosts.filter((h) => h.role !== host.role && h.since <= start + from * DAY);
          if (others.length === 0) continue;
          const source = rng.pick(others);
          const r = routineOf(rng, fleet, source, (x) => !x.roles.includes(host.role));
          if (r === undefined) continue;
          const drafts = occurrence(rng, fleet, r, source, start, weekday());
          const d = drafts[0];
          if (d === undefined) continue;
          out.push({ ...d, host, offset: source.site.offsetMinutes, kind });
          break;
        }
        case 'wrong_day': {
          // A weekly job at its usual hour, on another day of the week.
          const r = routineOf(rng, fleet, host, (x) => x.schedule.kind === 'weekly');
          if (r === undefined) continue;
          const plan =
            r.schedule.kind === 'weekly' && r.schedule.day >= 0
              ? { day: r.schedule.day, hour: r.schedule.hour }
              : fleet.patchDay.get(host.role)!;
          const week = Math.floor(randomDay() / 7);
          const shift = rng.int(1, 6);
          const day = week * 7 + ((plan.day + shift) % 7);
          if (day < from || day >= to) continue;
          const drafts = occurrence(rng, fleet, r, host, start, week * 7 + plan.day);
          const d = drafts[0];
          if (d === undefined) continue;
          out.push({ ...d, time: d.time + shift * DAY - (plan.day + shift >= 7 ? 7 * DAY : 0), kind });
          break;
        }
        case 'burst': {
          // Many individually routine changes on one host within a few minutes.
          const n = rng.int(10, 30);
          const t0 = base.time;
          for (let i = 0; i < n; i++) {
            const d = usual(host) ?? base;
            out.push({ ...d, time: t0 + rng.int(0, 240) * 1000, kind });
          }
          break;
        }
      }
      made++;
    }
  }
  return out;
}

/**
 * Generate a fleet's change history (normal weeks) and test weeks with injected, labelled
 * anomalies. Deterministic for a seed.
 */
export function generateFleetHistory(options: GeneratorOptions): GeneratedHistory {
  const rng = new Rng(options.seed);
  const weeks = options.weeks ?? 6;
  const testWeeks = options.testWeeks ?? 2;
  const start = Date.parse(options.start ?? '2026-01-05T00:00:00Z');
  const fleet = buildFleet(rng, options, start, weeks);
  const testEnd = (weeks + testWeeks) * 7;
  const cut = start + weeks * 7 * DAY;
  const end = start + testEnd * DAY;
  // Drafts are placed by each host's and person's clock: split by absolute time.
  const normal = normalDays(rng, fleet, start, 0, testEnd).filter((d) => d.time < end);
  const history = normal.filter((d) => d.time < cut).sort((a, b) => a.time - b.time);
  const anomalies = injectAnomalies(rng, fleet, start, weeks * 7, testEnd, options.anomaliesPerKind ?? 16);
  const test = [...normal, ...anomalies]
    .filter((d) => d.time >= cut && d.time < end)
    .sort((a, b) => a.time - b.time);
  const actors = new Set<string>();
  for (const d of history) actors.add(d.actor);
  return {
    history: history.map(emit),
    test: test.map(emit),
    labels: test.map((d) => d.kind !== null),
    kinds: test.map((d) => d.kind),
    fleet: {
      hosts: fleet.hosts.map((h) => ({
        name: h.name,
        role: h.role,
        offset: iso(start, h.site.offsetMinutes).slice(19),
      })),
      actors: [...actors].sort(),
      roles: fleet.roles,
    },
  };
}

/** JSONL text of change events (one per line). */
export function toJsonl(events: readonly ChangeEvent[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n') + (events.length > 0 ? '\n' : '');
}
