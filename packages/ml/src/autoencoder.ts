import { loadBackend, type BackendName } from './backend.js';

/** Autoencoder training options. */
export interface AutoencoderOptions {
  /** Width of the hidden layers (default 64). */
  hidden?: number;
  /** Width of the bottleneck (default 16). */
  bottleneck?: number;
  /** Passes over the training vectors (default 8). */
  epochs?: number;
  /** At most this many vectors are trained on, an even sample of the history (default 20 000). */
  maxSamples?: number;
  /** Learning rate of Adam (default 0.002). */
  learningRate?: number;
  /** Start the backend probe here (default: probe from tfjs-node-gpu down). */
  backend?: BackendName;
  /** Seed of the weight initialisers and the sample order (default 1). */
  seed?: number;
  /** Called after each epoch. */
  onEpoch?: (epoch: number, epochs: number, loss: number) => void;
}

/** One dense layer's weights (row-major `in × out`) and biases. */
export interface DenseWeights {
  inputs: number;
  outputs: number;
  kernel: Float32Array;
  bias: Float32Array;
  relu: boolean;
}

/** What a trained autoencoder is: its layers and the backend it was trained on. */
export interface AutoencoderWeights {
  layers: DenseWeights[];
  backend: BackendName;
  loss: number;
  trainedOn: number;
}

function shuffled(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Train a small dense autoencoder (dim → hidden → bottleneck → hidden → dim, MSE) on vectors
 * with TensorFlow.js. Scoring does not need TensorFlow.js: {@link reconstructionError} runs the
 * weights in plain JavaScript (about 50 000 multiply-adds per vector).
 */
export async function trainAutoencoder(
  vectors: readonly Float32Array[],
  options: AutoencoderOptions = {},
): Promise<AutoencoderWeights> {
  const backend = await loadBackend(options.backend);
  const { tf } = backend;
  const dim = vectors[0]?.length ?? 0;
  const hidden = options.hidden ?? 64;
  const bottleneck = options.bottleneck ?? 16;
  const epochs = options.epochs ?? 8;
  const seed = options.seed ?? 1;
  const maxSamples = options.maxSamples ?? 20_000;
  const step = Math.max(1, vectors.length / maxSamples);
  const picked: Float32Array[] = [];
  for (let i = 0; i < vectors.length && picked.length < maxSamples; i += step)
    picked.push(vectors[Math.floor(i)]!);
  const order = shuffled(picked.length, seed);
  const flat = new Float32Array(picked.length * dim);
  order.forEach((k, row) => flat.set(picked[k]!, row * dim));

  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 7919 + s });
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [dim], units: hidden, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.dense({ units: bottleneck, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.dense({ units: hidden, activation: 'relu', kernelInitializer: init(3) }),
      tf.layers.dense({ units: dim, activation: 'linear', kernelInitializer: init(4) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(options.learningRate ?? 0.002), loss: 'meanSquaredError' });
  const x = tf.tensor2d(flat, [picked.length, dim]);
  let loss = Number.NaN;
  try {
    const history = await model.fit(x, x, {
      epochs,
      batchSize: 128,
      shuffle: false,
      verbose: 0,
      callbacks: {
        onEpochEnd: (epoch, logs) => {
          loss = Number(logs?.loss ?? Number.NaN);
          options.onEpoch?.(epoch + 1, epochs, loss);
        },
      },
    });
    const last = history.history.loss?.[epochs - 1];
    if (typeof last === 'number') loss = last;
    const layers: DenseWeights[] = [];
    for (const [i, layer] of model.layers.entries()) {
      const [kernel, bias] = layer.getWeights();
      const shape = kernel!.shape;
      layers.push({
        inputs: shape[0],
        outputs: shape[1]!,
        kernel: new Float32Array(await kernel!.data()),
        bias: new Float32Array(await bias!.data()),
        relu: i < model.layers.length - 1,
      });
    }
    return { layers, backend: backend.name, loss, trainedOn: picked.length };
  } finally {
    x.dispose();
    model.dispose();
  }
}

/** Mean squared reconstruction error of one vector, computed in plain JavaScript. */
export function reconstructionError(weights: AutoencoderWeights, vector: Float32Array): number {
  let input: Float32Array = vector;
  for (const layer of weights.layers) {
    const out = new Float32Array(layer.outputs);
    out.set(layer.bias);
    const { kernel, outputs } = layer;
    for (let i = 0; i < layer.inputs; i++) {
      const x = input[i]!;
      if (x === 0) continue;
      const row = i * outputs;
      for (let j = 0; j < outputs; j++) out[j]! += x * kernel[row + j]!;
    }
    if (layer.relu) for (let j = 0; j < outputs; j++) if (out[j]! < 0) out[j] = 0;
    input = out;
  }
  let sum = 0;
  for (let i = 0; i < vector.length; i++) {
    const d = vector[i]! - input[i]!;
    sum += d * d;
  }
  return sum / vector.length;
}

/** Serialise weights as JSON with base64 float32 arrays. */
export function autoencoderToJSON(weights: AutoencoderWeights): unknown {
  return {
    ...weights,
    layers: weights.layers.map((l) => ({
      inputs: l.inputs,
      outputs: l.outputs,
      relu: l.relu,
      kernel: Buffer.from(l.kernel.buffer, l.kernel.byteOffset, l.kernel.byteLength).toString('base64'),
      bias: Buffer.from(l.bias.buffer, l.bias.byteOffset, l.bias.byteLength).toString('base64'),
    })),
  };
}

function floats(base64: string): Float32Array {
  const buf = Buffer.from(base64, 'base64');
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

/** Read weights written by {@link autoencoderToJSON}. */
export function autoencoderFromJSON(json: {
  layers: { inputs: number; outputs: number; relu: boolean; kernel: string; bias: string }[];
  backend: BackendName;
  loss: number;
  trainedOn: number;
}): AutoencoderWeights {
  return {
    backend: json.backend,
    loss: json.loss,
    trainedOn: json.trainedOn,
    layers: json.layers.map((l) => ({
      inputs: l.inputs,
      outputs: l.outputs,
      relu: l.relu,
      kernel: floats(l.kernel),
      bias: floats(l.bias),
    })),
  };
}
