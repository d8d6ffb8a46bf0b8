import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OpdbusError } from '@opdbus/core';
import type * as TF from '@tensorflow/tfjs';

/** The TensorFlow.js backends, in the order they are probed. */
export const BACKENDS = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as const;

/** A TensorFlow.js backend name (`cpu` is tfjs' pure-JavaScript backend). */
export type BackendName = (typeof BACKENDS)[number];

/** The TensorFlow.js namespace and the backend it runs on. */
export interface Backend {
  name: BackendName;
  tf: typeof TF;
  /** What each backend tried before it said (why it was not used). */
  tried: { name: BackendName; error: string }[];
}

const ownRequire = createRequire(import.meta.url);

/**
 * Resolve an optional package from this package, then from the working directory (an
 * application that installs `@tensorflow/tfjs-node` beside `@opdbus/ml`).
 */
function resolveOptional(specifier: string): string | undefined {
  for (const req of [ownRequire, createRequire(join(process.cwd(), 'package.json'))]) {
    try {
      return req.resolve(specifier);
    } catch {
      // not installed there; try the next place
    }
  }
  return undefined;
}

let cached: Promise<Backend> | undefined;

/**
 * Choose the TensorFlow.js backend by probing, once per process: `@tensorflow/tfjs-node-gpu`
 * where it is installed (it loads CUDA's libraries or fails), then `@tensorflow/tfjs-node`, then
 * `@tensorflow/tfjs-backend-wasm`, then tfjs' pure-JavaScript `cpu` backend. `prefer` starts the
 * probe at another backend (e.g. `cpu` for reproducible training everywhere).
 */
export function loadBackend(prefer?: BackendName): Promise<Backend> {
  if (prefer !== undefined) return probe(BACKENDS.slice(BACKENDS.indexOf(prefer)));
  cached ??= probe(BACKENDS);
  return cached;
}

async function probe(order: readonly BackendName[]): Promise<Backend> {
  const tried: { name: BackendName; error: string }[] = [];
  for (const name of order) {
    try {
      if (name === 'tfjs-node-gpu' || name === 'tfjs-node') {
        const path = resolveOptional(`@tensorflow/${name}`);
        if (path === undefined) {
          tried.push({ name, error: 'not installed' });
          continue;
        }
        const tf = (await import(path)) as typeof TF;
        await tf.ready();
        if (tf.getBackend() !== 'tensorflow')
          throw new Error(`backend is ${tf.getBackend()}, not tensorflow`);
        return { name, tf, tried };
      }
      const tf = await import('@tensorflow/tfjs');
      if (name === 'wasm') {
        await import('@tensorflow/tfjs-backend-wasm');
        if (!(await tf.setBackend('wasm'))) throw new Error('setBackend("wasm") returned false');
      } else if (!(await tf.setBackend('cpu'))) throw new Error('setBackend("cpu") returned false');
      await tf.ready();
      return { name, tf, tried };
    } catch (err) {
      tried.push({ name, error: (err as Error).message.split('\n')[0] ?? String(err) });
    }
  }
  throw new OpdbusError(
    'OPDBUS_ERR_ML_BACKEND',
    `No TensorFlow.js backend could start: ${tried.map((t) => `${t.name}: ${t.error}`).join('; ')}.`,
    { data: { tried } },
  );
}
