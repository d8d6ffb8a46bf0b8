/**
 * Test helpers for suites that need real components: a suite runs when its component is here
 * and is skipped (with the reason in its name) when it is not — unless the component is
 * required, in which case the missing component is a failing test that says why.
 *
 * `OPDBUS_REQUIRE` names what is required: `all`, or a comma-separated list of component names
 * (`root,netns,dbus,ovsdb,vswitchd,btrfs,container,lstopo,…`). CI sets `OPDBUS_REQUIRE=all`, so a
 * machine that lacks something the suite needs fails instead of quietly skipping; a developer's
 * laptop without it skips.
 *
 * Kernel features the machine cannot have (a module that is not in the kernel) are not
 * components: tests skip them with `context.skip(reason)` whatever `OPDBUS_REQUIRE` says.
 *
 * ```ts
 * import { probeSandbox } from '@opdbus/sandbox';
 * import { describeIf } from '@opdbus/sandbox/testing';
 * const probe = probeSandbox();
 * describeIf(probe.ovsdb, 'against ovsdb-server', () => { ... });
 * ```
 *
 * @packageDocumentation
 */
import { describe, it } from 'vitest';
import type { Requirement } from './probe.js';

export { requirement, type Requirement } from './probe.js';

/** What `OPDBUS_REQUIRE` asks for: `all`, or the set of named components. */
export function requiredComponents(value = process.env.OPDBUS_REQUIRE): 'all' | ReadonlySet<string> {
  const names = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.includes('all')) return 'all';
  return new Set(names);
}

/** Whether a missing `component` must fail the tests that need it (see `OPDBUS_REQUIRE`). */
export function isRequired(component: string, value = process.env.OPDBUS_REQUIRE): boolean {
  const required = requiredComponents(value);
  return required === 'all' || required.has(component);
}

type NeedArg = Requirement | readonly Requirement[];

function firstMissing(need: NeedArg): Requirement | undefined {
  const list: readonly Requirement[] = Array.isArray(need) ? need : [need as Requirement];
  return list.find((r) => !r.available);
}

function missingMessage(r: Requirement): string {
  const reason = r.available ? '' : r.reason;
  return `${r.component} is required (OPDBUS_REQUIRE=${process.env.OPDBUS_REQUIRE ?? ''}) but missing: ${reason}`;
}

/**
 * `describe` when every requirement holds. Otherwise: a skipped suite whose name carries the
 * reason, or, when the missing component is required, a suite with one failing test that says
 * what is missing.
 */
export function describeIf(need: NeedArg, name: string, fn: () => void): void {
  const missing = firstMissing(need);
  if (missing === undefined || missing.available) {
    describe(name, fn);
    return;
  }
  if (isRequired(missing.component)) {
    describe(name, () => {
      it(`needs ${missing.component}`, () => {
        throw new Error(missingMessage(missing));
      });
    });
    return;
  }
  describe.skip(`${name} [skipped: ${missing.reason}]`, fn);
}

/** `it` with the same rule as {@link describeIf}. */
export function itIf(need: NeedArg, name: string, fn: () => unknown, timeout?: number): void {
  const missing = firstMissing(need);
  if (missing === undefined || missing.available) {
    it(name, fn, timeout);
    return;
  }
  if (isRequired(missing.component)) {
    it(name, () => {
      throw new Error(missingMessage(missing));
    });
    return;
  }
  it.skip(`${name} [skipped: ${missing.reason}]`, fn);
}

/**
 * The reason to skip a suite, or `false` to run it: for options such as the conformance
 * suite's `skip`. Throws when the missing component is required, so the suite fails loudly.
 */
export function skipReason(need: NeedArg): string | false {
  const missing = firstMissing(need);
  if (missing === undefined || missing.available) return false;
  if (isRequired(missing.component)) return `REQUIRED: ${missingMessage(missing)}`;
  return missing.reason;
}
