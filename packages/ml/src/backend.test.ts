import { describe, expect, it } from 'vitest';
import { reconstructionError, trainAutoencoder } from './autoencoder.js';
import { autoencoderFromJSON, autoencoderToJSON } from './autoencoder.js';
import { BACKENDS, loadBackend } from './backend.js';
import { normalize } from './embedder.js';

describe('TensorFlow.js backend', () => {
  it('probes down to one that runs and says what it skipped', async () => {
    const backend = await loadBackend();
    expect(BACKENDS).toContain(backend.name);
    // Everything above the chosen one was tried and said why not.
    expect(backend.tried.map((t) => t.name)).toEqual(BACKENDS.slice(0, BACKENDS.indexOf(backend.name)));
    expect(backend.tf.getBackend()).toBe(
      backend.name === 'tfjs-node' || backend.name === 'tfjs-node-gpu' ? 'tensorflow' : backend.name,
    );
  });

  it('starts at the backend asked for', async () => {
    expect((await loadBackend('cpu')).name).toBe('cpu');
  });

  it('falls back to the wasm backend where tfjs-node is not installed, and it computes', async () => {
    // CI cannot download libtensorflow: the wasm backend (a plain dependency) must run there.
    const backend = await loadBackend('wasm');
    expect(backend.name).toBe('wasm');
    expect(backend.tf.getBackend()).toBe('wasm');
    const product = backend.tf.matMul(backend.tf.tensor2d([[1, 2]]), backend.tf.tensor2d([[3], [4]]));
    expect(Array.from(await product.data())).toEqual([11]);
  });
});

describe('autoencoder', () => {
  it.each(['cpu', 'wasm'] as const)(
    'trained on %s, reconstructs what it was trained on better than what it was not, in plain JavaScript',
    async (name) => {
      // Vectors on a 4-dimensional subspace of 64 dimensions, and vectors off it.
      let s = 1;
      const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
      const basis = Array.from({ length: 4 }, () => Float32Array.from({ length: 64 }, rand));
      const on = () => {
        const v = new Float32Array(64);
        for (const b of basis) {
          const c = rand();
          for (let i = 0; i < 64; i++) v[i]! += c * b[i]!;
        }
        return normalize(v);
      };
      const train = Array.from({ length: 600 }, on);
      const weights = await trainAutoencoder(train, {
        epochs: 30,
        hidden: 16,
        bottleneck: 4,
        backend: name,
        learningRate: 0.01,
      });
      expect(weights.backend).toBe(name);
      const onErr =
        Array.from({ length: 50 }, () => reconstructionError(weights, on())).reduce((a, b) => a + b) / 50;
      const offErr =
        Array.from({ length: 50 }, () =>
          reconstructionError(weights, normalize(Float32Array.from({ length: 64 }, rand))),
        ).reduce((a, b) => a + b) / 50;
      expect(offErr).toBeGreaterThan(onErr * 1.5);
      const copy = autoencoderFromJSON(
        JSON.parse(JSON.stringify(autoencoderToJSON(weights))) as Parameters<typeof autoencoderFromJSON>[0],
      );
      const v = on();
      expect(reconstructionError(copy, v)).toBe(reconstructionError(weights, v));
    },
  );
});
