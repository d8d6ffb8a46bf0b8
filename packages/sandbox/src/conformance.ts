/**
 * The plugin conformance suite: one set of checks every op-dbus plugin passes, against a real
 * environment the plugin author provides (a sandbox namespace, bus, OVSDB …). It registers
 * vitest suites, so import it from a test file:
 *
 * ```ts
 * import { describePluginConformance } from '@opdbus/sandbox/conformance';
 * describePluginConformance(myPlugin, async () => ({ target: {...}, desired: {...}, drift: async () => {...}, teardown: async () => {...} }));
 * ```
 *
 * @packageDocumentation
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Engine,
  OpdbusError,
  PluginRegistry,
  makeChange,
  parseStateDocument,
  resourceKey,
  stringifyStateDocument,
  type NetnsRunner,
  type Plugin,
  type PluginContext,
  type StateDocument,
  type TargetSpec,
  type WatchEvent,
} from '@opdbus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Requirement } from './probe.js';
import { describeIf } from './testing.js';

/** What a plugin author provides: a live environment and states to drive the plugin through. */
export interface ConformanceEnv<D> {
  /** Where the plugin acts (a sandbox namespace, a private bus address, an OVSDB socket …). */
  target: TargetSpec;
  /** Needed when `target.netns` is set: pass `openNetns` from @opdbus/netlink. */
  openNetns?: (spec: string) => NetnsRunner;
  /** A desired section that differs from the environment's initial state (its apply has changes). */
  desired: D;
  /** A desired section whose apply fails at a later change after earlier ones succeeded (to test rollback). */
  failing?: D;
  /** Change, out of band (not through the plugin), a resource `desired` names, after `desired` is applied. */
  drift(): Promise<void>;
  /** Remove the environment. */
  teardown(): Promise<void>;
}

/** Options of {@link describePluginConformance}. */
export interface ConformanceOptions {
  /**
   * What the suite needs (e.g. `probeSandbox().netns`): when one is missing the suite is skipped
   * with the reason in its name, or fails when `OPDBUS_REQUIRE` requires it (see
   * `@opdbus/sandbox/testing`).
   */
  requires?: Requirement | readonly Requirement[];
  /** Skip the suite, with this reason in its name. */
  skip?: string | false;
  /** How long to wait for a watch event (default 10 s). */
  watchTimeoutMs?: number;
  /** Check that the full query, written back as a document, diffs clean (default true). */
  queryRoundTrip?: boolean;
  /** How long `setup` may take (default: the runner's hook timeout), e.g. to build a container image once. */
  setupTimeoutMs?: number;
}

/**
 * Register the conformance suite for `plugin`: probe → query (schema-valid, normalised) → diff
 * (pure, a fixpoint on observed state) → apply → verify → idempotence → rollback → failing apply
 * rolled back → checkpoint/restore round-trip → watch sees out-of-band drift → query round-trip.
 */
// A plugin's checkpoint and change value types (T, V) do not matter to the suite, so that
// `describePluginConformance<Section>(plugin, ...)` takes a plugin of any.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function describePluginConformance<D, T = any, V = any>(
  plugin: Plugin<D, T, V>,
  setup: () => Promise<ConformanceEnv<D>>,
  options: ConformanceOptions = {},
): void {
  const title = `plugin conformance: ${plugin.name}`;
  if (options.requires !== undefined) {
    const missing = ([] as Requirement[]).concat(options.requires).find((r) => !r.available);
    if (missing !== undefined) {
      describeIf(missing, title, () => undefined);
      return;
    }
  }
  if (options.skip) {
    describe.skip(`${title} [skipped: ${options.skip}]`, () => undefined);
    return;
  }
  describe(title, () => {
    let env: ConformanceEnv<D>;
    let stateDir: string;
    let registry: PluginRegistry;
    const engine = (): Engine =>
      new Engine({
        registry,
        stateDir,
        target: env.target,
        ...(env.openNetns ? { openNetns: env.openNetns } : {}),
        verify: { attempts: 8, initialDelayMs: 25 },
      });
    const doc = (section: D): StateDocument =>
      parseStateDocument(JSON.stringify({ version: 1, plugins: { [plugin.name]: section } }), {
        source: `${plugin.name}-conformance`,
        registry,
      });
    const ctx = (): PluginContext => engine().context(plugin.name);
    let initial: D;

    beforeAll(async () => {
      registry = new PluginRegistry([plugin]);
      stateDir = await mkdtemp(join(tmpdir(), `opdbus-conformance-${plugin.name}-`));
      env = await setup();
    }, options.setupTimeoutMs);
    afterAll(async () => {
      await env?.teardown();
      await rm(stateDir, { recursive: true, force: true });
    });

    it('probe: available in the environment', async () => {
      expect(await plugin.probe(ctx())).toMatchObject({ available: true });
    });

    it('query: the observed state validates against the plugin schema', async () => {
      const observed = await plugin.query(ctx());
      const parsed = plugin.schema.safeParse(observed);
      expect(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 5))).toBe(
        true,
      );
      const scoped = await plugin.query(ctx(), { scope: env.desired });
      expect(plugin.schema.safeParse(scoped).success).toBe(true);
      initial = scoped;
    });

    it('diff: pure, deterministic, and empty on the observed state itself', async () => {
      const observed = await plugin.query(ctx(), { scope: env.desired });
      const a = plugin.diff(env.desired, observed);
      const b = plugin.diff(env.desired, observed);
      expect(a.length).toBeGreaterThan(0);
      expect(b).toEqual(a);
      expect(plugin.diff(observed, observed)).toEqual([]);
      // The changes have unique resource keys per op and well-formed dependencies.
      const changes = a.map((spec) => makeChange(plugin.name, spec));
      expect(new Set(changes.map((c) => c.id)).size).toBe(changes.length);
      for (const c of changes) for (const dep of c.dependsOn) expect(dep).toMatch(/^[a-z][a-z0-9-]*:/);
    });

    it('apply: one transaction that verifies and commits; then nothing is left to do', async () => {
      const e = engine();
      const result = await e.apply(doc(env.desired));
      expect(result.status).toBe('committed');
      expect((await e.plan(doc(env.desired))).plan.changes).toEqual([]);
      expect((await e.apply(doc(env.desired))).status).toBe('no-changes');
    });

    it('rollback: restores the state before the apply, verified', async () => {
      const e = engine();
      const record = await e.rollback();
      expect(record.status).toBe('rolled-back');
      const now = await plugin.query(ctx(), { scope: env.desired });
      expect(plugin.diff(initial, now)).toEqual([]);
    });

    it('a failing apply is rolled back to the state before it', async (context) => {
      if (env.failing === undefined) context.skip();
      const failing = env.failing as D;
      const before = await plugin.query(ctx(), { scope: failing });
      const err = await engine()
        .apply(doc(failing))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpdbusError);
      expect((err as OpdbusError).code).toBe('OPDBUS_ERR_APPLY_FAILED');
      expect(plugin.diff(before, await plugin.query(ctx(), { scope: failing }))).toEqual([]);
    });

    it('checkpoint → apply → restore round-trips at the plugin level', async () => {
      const observed = await plugin.query(ctx(), { scope: env.desired });
      const changes = plugin.diff(env.desired, observed).map((spec) => makeChange(plugin.name, spec));
      const { createPlan } = await import('@opdbus/core');
      const ordered = createPlan(changes).changes;
      const token = await plugin.checkpoint(ctx(), ordered);
      // The token survives the journal (JSON).
      const stored = JSON.parse(JSON.stringify(token)) as typeof token;
      for (const change of ordered) await plugin.apply(change, ctx());
      expect(
        plugin
          .diff(env.desired, await plugin.query(ctx(), { scope: env.desired }))
          .filter((c) =>
            ordered.some(
              (o) => resourceKey(o) === resourceKey({ plugin: plugin.name, resource: c.resource }),
            ),
          ),
      ).toEqual([]);
      await plugin.restore(stored, ctx());
      expect(plugin.diff(observed, await plugin.query(ctx(), { scope: env.desired }))).toEqual([]);
    });

    it('watch: reports an out-of-band change, and the next plan corrects it', async (context) => {
      if (plugin.watch === undefined) context.skip();
      const e = engine();
      await e.apply(doc(env.desired));
      const events: WatchEvent[] = [];
      let notify: (() => void) | undefined;
      const seen = new Promise<void>((resolve) => (notify = resolve));
      const unsubscribe = await plugin.watch!(ctx(), (event) => {
        events.push(event);
        notify?.();
      });
      try {
        await env.drift();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          seen,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no watch event within ${options.watchTimeoutMs ?? 10_000} ms`)),
              options.watchTimeoutMs ?? 10_000,
            );
          }),
        ]).finally(() => clearTimeout(timer));
      } finally {
        await unsubscribe();
      }
      expect(events[0]?.plugin).toBe(plugin.name);
      const drift = await e.plan(doc(env.desired));
      expect(drift.plan.changes.length).toBeGreaterThan(0);
      expect((await e.apply(doc(env.desired))).status).toBe('committed');
      await e.rollback();
    });

    it('query round-trip: the full observed state, as a document, diffs clean', async (context) => {
      if (options.queryRoundTrip === false) context.skip();
      const observed = await plugin.query(ctx());
      const text = stringifyStateDocument({ [plugin.name]: observed });
      const reparsed = parseStateDocument(text, { source: 'query-output.yaml', registry });
      expect((await engine().plan(reparsed)).plan.changes).toEqual([]);
    });
  });
}
