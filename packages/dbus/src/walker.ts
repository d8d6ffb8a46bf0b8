import type { DbusConnection } from './connection.js';
import { STANDARD_INTERFACES, childPaths, type InterfaceInfo } from './introspection.js';

/** One object of a service with its interfaces. */
export interface ObjectInfo {
  path: string;
  /** The object's interfaces (the standard org.freedesktop.DBus.* ones included). */
  interfaces: InterfaceInfo[];
}

/** Options of {@link walkObjectTree}. */
export interface WalkOptions {
  /** Where to start (default `/`). */
  root?: string;
  /** Stop after this many objects (default 10 000). */
  maxObjects?: number;
  /** Introspection calls in flight at once (default 16). */
  concurrency?: number;
  /** Whether to descend into a path (default: everything). */
  descend?: (path: string) => boolean;
}

/**
 * Discover a service's object tree: introspect `root`, then every child node, breadth first
 * with bounded concurrency. Returns every object that has at least one interface beyond the
 * standard org.freedesktop.DBus.* ones, sorted by path. Objects that vanish while walking
 * (UnknownObject) are skipped.
 */
export async function walkObjectTree(
  connection: DbusConnection,
  destination: string,
  options: WalkOptions = {},
): Promise<ObjectInfo[]> {
  const maxObjects = options.maxObjects ?? 10_000;
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const queue: string[] = [options.root ?? '/'];
  const seen = new Set<string>(queue);
  const found: ObjectInfo[] = [];
  let visited = 0;
  const worker = async (): Promise<void> => {
    for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
      if (visited++ >= maxObjects) return;
      let node;
      try {
        node = await connection.introspect(destination, path);
      } catch (err) {
        const name = (err as { data?: { dbusError?: unknown } }).data?.dbusError;
        if (
          name === 'org.freedesktop.DBus.Error.UnknownObject' ||
          name === 'org.freedesktop.DBus.Error.UnknownMethod'
        )
          continue;
        throw err;
      }
      if (node.interfaces.some((i) => !STANDARD_INTERFACES.has(i.name)))
        found.push({ path, interfaces: node.interfaces });
      for (const child of childPaths(path, node)) {
        if (seen.has(child) || (options.descend !== undefined && !options.descend(child))) continue;
        seen.add(child);
        queue.push(child);
      }
    }
  };
  // Workers pick paths as earlier introspections add them; start more as the queue fills.
  const running = new Set<Promise<void>>();
  while (queue.length > 0 || running.size > 0) {
    while (queue.length > 0 && running.size < concurrency) {
      const task: Promise<void> = worker().finally(() => running.delete(task));
      running.add(task);
    }
    await Promise.race(running);
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
